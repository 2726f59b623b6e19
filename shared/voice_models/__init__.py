"""Per-user voice models: CRUD, activation, insights, backups, sharing and cleanup."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.capability import Capability, Ports

if TYPE_CHECKING:
    from shared.voice_models.deps import VoiceModelDeps


def _build(ports: Ports) -> VoiceModelDeps:
    from shared.voice_models.deps import VoiceModelDeps  # noqa: PLC0415 - off cold starts

    return VoiceModelDeps.from_ports(ports)


def _purge(deps: VoiceModelDeps, user_id: str) -> int:
    from shared.voice_models.purge import purge_voice_models  # noqa: PLC0415 - see _build

    return purge_voice_models(deps, user_id)


CAPABILITY: Capability[VoiceModelDeps] = Capability(
    name="voice_models",
    build=_build,
    tasks_module="shared.voice_models.tasks",
    purges={"voice_models": _purge},
)
