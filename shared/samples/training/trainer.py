"""What every trainer is given and returns, and how it says that training failed.

A trainer gets the model to train, the user's ready samples with their speaker
embeddings and measured prosody (``VoiceTarget``: the voice to match, the samples' mean
embedding, median pitch and articulation rate), and a way to read their audio; it returns
the voice it
made (a provider voice, its language, pitch and speed), the seed's four quality
components, its metrics and the files to store beside ``metadata.json``. It raises
``TrainingFailedError`` for what retrying cannot cure (the reason is shown to the user),
anything else for what it may.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.lazy import lazy_module
from shared.samples.model import SampleProsody, VoiceSample
from shared.samples.training.artifacts import QualityComponentsReport, TrainedVoice
from shared.voice_models.model import VoiceModel

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")


class TrainingFailedError(Exception):
    """Training cannot succeed with these samples or this provider; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VoiceTarget:
    """The voice a trainer (or a pre-call voice match) aims at, measured from recordings.

    ``embedding`` is the unit mean of their speaker embeddings; ``f0_hz`` their median
    pitch, the recordings' medians weighted by voiced time; ``syllables_per_second`` their
    articulation rate (syllable nuclei per second of speaking). Either figure is None when
    the recordings hold too little voiced speech to measure it.
    """

    embedding: npt.NDArray[np.float64]
    f0_hz: float | None
    syllables_per_second: float | None
    language: str

    @classmethod
    def of(
        cls,
        embeddings: Sequence[npt.NDArray[np.floating]],
        prosodies: Sequence[SampleProsody | None],
        language: str,
    ) -> VoiceTarget:
        """Return the target of recordings with these embeddings and (stored) prosody."""
        mean = np.mean(embeddings, axis=0)
        embedding = np.asarray(mean / np.linalg.norm(mean), dtype=np.float64)
        measured = [p for p in prosodies if p is not None]
        pairs = [(p.f0_median_hz, p.voiced_seconds) for p in measured if p.f0_median_hz]
        weight = sum(w for _, w in pairs)
        f0 = float(sum(f0 * w for f0, w in pairs if f0) / weight) if weight > 0 else None
        syllables = sum(p.syllables for p in measured)
        seconds = sum(p.speaking_seconds for p in measured)
        rate = syllables / seconds if seconds > 0 and syllables > 0 else None
        return cls(embedding, f0, rate, language)


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

    def target(self) -> VoiceTarget:
        """Return the voice to match: the samples' mean embedding, pitch and rate."""
        return VoiceTarget.of(
            [s.embedding for s in self.samples],
            [s.sample.prosody for s in self.samples],
            self.language,
        )

    def mean_embedding(self) -> npt.NDArray[np.float64]:
        """Return the unit mean of the samples' embeddings: the voice to match."""
        return self.target().embedding


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
