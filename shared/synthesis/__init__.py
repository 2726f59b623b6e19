"""Text to speech: synthesis with cache and timestamps, long-text jobs, dialogue, usage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.capability import Capability, Ports

if TYPE_CHECKING:
    from shared.synthesis.deps import SynthesisDeps


def _build(ports: Ports) -> SynthesisDeps:
    from shared.synthesis.deps import SynthesisDeps  # noqa: PLC0415 - off cold starts

    return SynthesisDeps.from_ports(ports)


CAPABILITY: Capability[SynthesisDeps] = Capability(
    name="synthesis", build=_build, tasks_module="shared.synthesis.tasks"
)
