"""What every trainer is given and returns, and how it says that training failed.

A trainer gets the model to train, the user's ready samples with their speaker
embeddings and measured prosody, and a way to read their audio; it returns the voice it
made (a provider voice, its language, pitch and speed), the seed's four quality
components, its metrics and the files to store beside ``metadata.json``. It raises
``TrainingFailedError`` for what retrying cannot cure (the reason is shown to the user),
anything else for what it may.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from shared.samples.model import VoiceSample
from shared.samples.training.artifacts import QualityComponentsReport, TrainedVoice
from shared.voice_models.model import VoiceModel


class TrainingFailedError(Exception):
    """Training cannot succeed with these samples or this provider; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TrainingSample:
    """One sample to train from, with its stored speaker embedding."""

    sample: VoiceSample
    embedding: npt.NDArray[np.float64]


@dataclass
class TrainingInput:
    """A training job: the model, its samples, and access to their audio and scratch files."""

    model: VoiceModel
    samples: list[TrainingSample]
    language: str
    read_audio: Callable[[VoiceSample], bytes]
    # Small files a trainer keeps between attempts (e.g. a provider-side voice it already
    # created), stored under the model's folder: ``recall(name)`` / ``remember(name, data)``.
    recall: Callable[[str], bytes | None]
    remember: Callable[[str, bytes], None]

    def mean_embedding(self) -> npt.NDArray[np.float64]:
        """Return the unit mean of the samples' embeddings: the voice to match."""
        mean = np.mean([s.embedding for s in self.samples], axis=0)
        return np.asarray(mean / np.linalg.norm(mean), dtype=np.float64)

    def target_f0(self) -> float | None:
        """Return the samples' median pitch (Hz), their medians weighted by voiced time."""
        pairs = [
            (s.sample.prosody.f0_median_hz, s.sample.prosody.voiced_seconds)
            for s in self.samples
            if s.sample.prosody is not None and s.sample.prosody.f0_median_hz
        ]
        weight = sum(w for _, w in pairs)
        if not pairs or weight <= 0:
            return None
        return float(sum(f0 * w for f0, w in pairs if f0) / weight)

    def target_rate(self) -> float | None:
        """Return the samples' articulation rate: syllable nuclei per second of speaking."""
        syllables = sum(s.sample.prosody.syllables for s in self.samples if s.sample.prosody)
        seconds = sum(s.sample.prosody.speaking_seconds for s in self.samples if s.sample.prosody)
        return syllables / seconds if seconds > 0 and syllables > 0 else None


@dataclass
class TrainingOutcome:
    """A trained voice, how good it is, and the files to store."""

    provider: str
    trainer: str
    voice: TrainedVoice
    components: QualityComponentsReport
    metrics: dict[str, Any]
    sample_rate: int
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)


class Trainer(Protocol):
    """Turns samples into a voice."""

    name: str

    def train(self, job: TrainingInput) -> TrainingOutcome:
        """Return the trained voice; raise TrainingFailedError for permanent failures."""
        ...
