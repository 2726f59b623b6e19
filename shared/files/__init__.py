"""Audio files: stored synthesis results, their downloads, expiry and the audio cache."""

from __future__ import annotations

from shared.capability import Capability, Ports
from shared.files.deps import AudioDeps


def _build(ports: Ports) -> AudioDeps:
    return AudioDeps(ports.store, ports.blobs, ports.settings)


def _purge(deps: AudioDeps, user_id: str) -> int:
    from shared.files.storage import purge_audio_files  # noqa: PLC0415 - off cold starts

    return purge_audio_files(deps, user_id)


CAPABILITY: Capability[AudioDeps] = Capability(
    name="files", build=_build, tasks_module="shared.files.tasks", purges={"audio_files": _purge}
)
