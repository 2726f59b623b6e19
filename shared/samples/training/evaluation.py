"""The seed's four quality components of a trained voice, measured where they can be.

The voice reads ``TEST_SENTENCES`` through its provider (16 kHz), and:

- **similarity**: the cosine between the speaker embedding of what it said (the unit mean
  over the sentences) and the samples' mean embedding, mapped linearly from 0.5 (0) to
  0.95 (1). With resemblyzer's d-vectors, recordings of one speaker score about 0.8 and
  above; different speakers, 0.7 and below.
- **clarity**: the mean quality score of the sentences (``shared.audio.quality``: SNR,
  clipping, silence, bandwidth), divided by 10.
- **consistency**: the mean cosine between the sentences' embeddings, two by two, mapped
  like similarity: one voice across different texts.
- **naturalness** is *not measured*: no naturalness predictor ships offline. It is the
  engine's fixed rating (``ENGINE_NATURALNESS``: eSpeak's formant synthesis 0.3, neural
  engines 0.9), and the metrics say so.

A sentence whose audio holds no speech the encoder can find counts 0 towards similarity
and consistency.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile  # type: ignore[import-untyped]  # no type hints shipped

from shared.audio.pcm import resample
from shared.audio.quality import assess_quality
from shared.audio.speaker_encoder import NoSpeechError, SpeakerEncoder
from shared.providers.base import AudioSettings, SynthesisRequest, TTSProvider
from shared.samples.training.artifacts import QualityComponentsReport, TrainedVoice

EVALUATION_RATE = 16_000
TEST_SENTENCES = (
    "The rainbow is a division of white light into many beautiful colors.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "When the sunlight strikes raindrops in the air, they act as a prism.",
)
SIMILARITY_RANGE = (0.5, 0.95)
ENGINE_NATURALNESS = {"espeak": 0.3, "elevenlabs": 0.9}
DEFAULT_NATURALNESS = 0.5

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Evaluation:
    """The four components, the metrics behind them, and the first sentence's audio."""

    components: QualityComponentsReport
    metrics: dict[str, Any]
    preview_wav: bytes


def render(
    provider: TTSProvider,
    voice: TrainedVoice,
    text: str,
    *,
    sample_rate: int = EVALUATION_RATE,
) -> Floats:
    """Return ``text`` spoken by ``voice`` as mono float32 at ``sample_rate``.

    Raises ProviderError when the provider fails.
    """
    request = SynthesisRequest(
        text=text,
        voice_id=voice.voice_id,
        language=voice.language,
        settings=AudioSettings(sample_rate=sample_rate, pitch=voice.pitch, speed=voice.speed),
        want_timings=False,
    )
    result = provider.synthesize(request)
    converted = resample(result.pcm, result.sample_rate, sample_rate)
    return np.frombuffer(converted, dtype="<i2").astype(np.float32) / 32768.0


def unit_scale(cosine: float) -> float:
    """Return a cosine mapped onto 0..1 over ``SIMILARITY_RANGE``."""
    low, high = SIMILARITY_RANGE
    return round(min(max((cosine - low) / (high - low), 0.0), 1.0), 4)


def cosine(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> float:
    """Return the cosine between two vectors."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def evaluate(
    provider: TTSProvider,
    voice: TrainedVoice,
    target: npt.NDArray[np.float64],
    encoder: SpeakerEncoder,
    *,
    engine: str,
) -> Evaluation:
    """Return the quality components of ``voice`` against the samples' mean ``target``.

    Raises ProviderError when the provider fails.
    """
    audio = [render(provider, voice, text) for text in TEST_SENTENCES]
    clarity = [assess_quality(pcm, EVALUATION_RATE).score / 10.0 for pcm in audio]
    embeddings: list[npt.NDArray[np.float32] | None] = []
    for pcm in audio:
        try:
            embeddings.append(encoder.embed(pcm, EVALUATION_RATE))
        except NoSpeechError:
            embeddings.append(None)
    found = [e for e in embeddings if e is not None]
    similarity_cosine = cosine(np.mean(found, axis=0), target) if found else 0.0
    pairs = [
        cosine(a, b) if a is not None and b is not None else 0.0
        for a, b in itertools.combinations(embeddings, 2)
    ]
    consistency_cosine = float(np.mean(pairs)) if pairs else 0.0
    naturalness = ENGINE_NATURALNESS.get(engine, DEFAULT_NATURALNESS)
    components = QualityComponentsReport(
        similarity=unit_scale(similarity_cosine),
        naturalness=naturalness,
        clarity=round(min(max(float(np.mean(clarity)), 0.0), 1.0), 4),
        consistency=unit_scale(consistency_cosine),
    )
    metrics = {
        "similarityCosine": round(similarity_cosine, 4),
        "consistencyCosine": round(consistency_cosine, 4),
        "clarityScores": [round(c * 10, 2) for c in clarity],
        "naturalnessMeasured": False,
        "naturalnessSource": f"fixed rating of the {engine} engine (not measured)",
        "testSentences": len(TEST_SENTENCES),
    }
    return Evaluation(components, metrics, wav_bytes(audio[0], EVALUATION_RATE))


def wav_bytes(pcm: Floats, sample_rate: int) -> bytes:
    """Return ``pcm`` as a 16-bit WAV file."""
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
