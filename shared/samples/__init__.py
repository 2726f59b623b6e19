"""Voice samples: uploads, analysis, speaker embeddings, similarity, and voice training."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.capability import Capability, Ports

if TYPE_CHECKING:
    from shared.samples.deps import SampleDeps


def _build(ports: Ports) -> SampleDeps:
    from shared.samples.deps import SampleDeps  # noqa: PLC0415 - off cold starts

    return SampleDeps.from_ports(ports)


def _purge(deps: SampleDeps, user_id: str) -> int:
    from shared.samples.library import purge_samples  # noqa: PLC0415 - see _build

    return purge_samples(deps, user_id)


CAPABILITY: Capability[SampleDeps] = Capability(
    name="samples",
    build=_build,
    tasks_module="shared.samples.tasks",
    purges={"voice_samples": _purge},
)
