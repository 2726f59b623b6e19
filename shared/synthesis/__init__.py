"""Text to speech: synthesis with cache and timestamps, long-text jobs, dialogue, usage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.capability import Capability, Ports

if TYPE_CHECKING:
    from shared.synthesis.deps import SynthesisDeps


def _build(ports: Ports) -> SynthesisDeps:
    from shared.synthesis.deps import SynthesisDeps  # noqa: PLC0415 - off cold starts

    return SynthesisDeps.from_ports(ports)


def _purge(deps: SynthesisDeps, user_id: str) -> int:
    from shared.synthesis.purge import purge_synthesis  # noqa: PLC0415 - see _build

    return purge_synthesis(deps, user_id)


CAPABILITY: Capability[SynthesisDeps] = Capability(
    name="synthesis",
    build=_build,
    tasks_module="shared.synthesis.tasks",
    purges={"synthesis_jobs": _purge},
)
