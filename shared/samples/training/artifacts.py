"""What a trainer writes, and where: the contract between trainers and completion.

Every trainer, embedded or external (an XTTS job, say), writes a model's files under
``models/{userId}/{modelId}/`` in the models bucket and, last, ``metadata.json``:

```json
{"status": "completed", "provider": "espeak", "trainer": "voice-match",
 "voice": {"voiceId": "en-US+f3", "language": "en-US", "pitch": 1.08, "speed": 0.94},
 "qualityComponents": {"similarity": 0.93, "naturalness": 0.3, "clarity": 0.95,
                       "consistency": 0.97},
 "metrics": {...}, "files": ["model.json", "preview.wav"], "sampleRate": 22050}
```

or ``{"status": "failed", "reason": "..."}``. Its arrival is the storage event the
``training-completed`` function acts on, so nothing may follow it. ``read_metadata``
parses it and raises ``TrainingArtifactError`` for anything else: the completion logs that
and fails the model rather than retrying a file that will never parse.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from shared.model import DomainModel, UnitScore

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.json"
PREVIEW_FILE = "preview.wav"
MODELS_PREFIX = "models"
MAX_METADATA_BYTES = 256 * 1024
_METADATA_NAME = re.compile(r"^models/([^/]+)/([^/]+)/metadata\.json$")


class TrainingArtifactError(Exception):
    """A ``metadata.json`` that cannot be read: not JSON, or not the documented shape."""


def model_folder(user_id: str, model_id: str) -> str:
    """Return the prefix of a model's files: ``models/{userId}/{modelId}/``."""
    return f"{MODELS_PREFIX}/{user_id}/{model_id}/"


def parse_metadata_name(name: str) -> tuple[str, str] | None:
    """Return (user id, model id) of a ``metadata.json`` object name, or None."""
    match = _METADATA_NAME.match(name)
    return (match.group(1), match.group(2)) if match else None


class TrainedVoice(DomainModel):
    """How a trained model speaks: the provider's voice, language and prosody multipliers."""

    voice_id: Annotated[str, Field(min_length=1, max_length=255)]
    language: str | None = None
    pitch: Annotated[float, Field(ge=0.5, le=2.0)] = 1.0
    speed: Annotated[float, Field(ge=0.25, le=4.0)] = 1.0


class QualityComponentsReport(DomainModel):
    """The seed's four quality components of a trained model, each 0..1."""

    similarity: UnitScore
    naturalness: UnitScore
    clarity: UnitScore
    consistency: UnitScore


class TrainingMetadata(DomainModel):
    """The parsed ``metadata.json``."""

    status: Literal["completed", "failed"]
    reason: Annotated[str, Field(max_length=2000)] | None = None
    provider: str | None = None
    trainer: str | None = None
    voice: TrainedVoice | None = None
    quality_components: QualityComponentsReport | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    files: list[str] = Field(default_factory=list)
    sample_rate: Annotated[int, Field(ge=8000, le=192_000)] | None = None

    def check_complete(self) -> None:
        """Raise TrainingArtifactError when a completed training lacks its voice or quality."""
        if self.status == "completed" and (self.voice is None or self.quality_components is None):
            raise TrainingArtifactError("a completed training names its voice and quality")


def read_metadata(data: bytes) -> TrainingMetadata:
    """Return the parsed ``metadata.json``; raise TrainingArtifactError when unreadable."""
    if len(data) > MAX_METADATA_BYTES:
        raise TrainingArtifactError(f"metadata.json exceeds {MAX_METADATA_BYTES} bytes")
    try:
        document = json.loads(data, parse_constant=_refuse_constant)
        metadata = TrainingMetadata.model_validate(document)
    except (ValueError, UnicodeDecodeError, RecursionError, ValidationError) as exc:
        raise TrainingArtifactError(f"metadata.json is not readable: {exc}") from exc
    metadata.check_complete()
    return metadata


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def write_metadata(metadata: TrainingMetadata) -> bytes:
    """Return ``metadata`` as the bytes of ``metadata.json``."""
    return json.dumps(metadata.to_api(), indent=2, sort_keys=True).encode()
