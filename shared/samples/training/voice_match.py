"""The embedded trainer, and what it honestly is: a voice match, not a cloned voice.

It cannot make eSpeak sound like a person; it picks, among the voices eSpeak has, the one
that sounds most like the samples, and tunes it:

1. **The voice table.** Every eSpeak voice variant of the samples' language (the
   language voice alone and with each of the ~100 variants in ``voices/!v``) reads
   ``REFERENCE_TEXT``; the table holds each one's speaker embedding, median pitch and
   syllable rate. It is built once per language, engine and encoder (15-35 s on two
   busy cores) and kept in the models bucket (``voice-match/{key}.json``) and in memory.
2. **Candidates.** The ``CANDIDATES`` variants whose embeddings are closest (cosine) to
   the samples' mean embedding.
3. **Prosody.** For each candidate the pitch and speed multipliers are fitted to the
   samples' measured median F0 and syllable rate (``shared.audio.prosody``): start from the
   ratios of target to the variant's own figures, then measure what eSpeak actually made
   and correct twice (eSpeak's pitch control is not linear in Hz).
4. **Choice.** Each fitted candidate reads the reference text again; the one whose
   embedding is closest to the samples' wins.

The model is that voice id with its pitch and speed (``model.json``), plus a preview; its
quality components come from ``shared.samples.training.evaluation``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.audio.prosody import measure_prosody
from shared.audio.speaker_encoder import WEIGHTS_SHA256, NoSpeechError, SpeakerEncoder
from shared.blobs.base import ObjectAlreadyExistsError, ObjectStorage
from shared.errors import NotFoundError
from shared.providers.espeak import EspeakProvider
from shared.samples.training.artifacts import MODEL_FILE, PREVIEW_FILE, TrainedVoice
from shared.samples.training.evaluation import (
    EVALUATION_RATE,
    cosine,
    evaluate,
    render,
)
from shared.samples.training.trainer import TrainingFailedError, TrainingInput, TrainingOutcome

logger = logging.getLogger(__name__)

TRAINER = "voice-match"
# About seven seconds: a four-second text ranked the variants visibly worse.
REFERENCE_TEXT = (
    "Would you like to hear a short story? It was a quiet morning by the harbour, "
    "and the fishing boats were already far out at sea."
)
CANDIDATES = 5
FIT_ROUNDS = 2
FIT_RANGE = (0.5, 2.0)
TABLE_VERSION = 1
TABLE_PREFIX = "voice-match"

_tables: dict[str, list[VoiceEntry]] = {}
_tables_lock = threading.Lock()


@dataclass(frozen=True)
class VoiceEntry:
    """One eSpeak voice as it sounds at its own pitch and speed."""

    voice_id: str
    embedding: npt.NDArray[np.float64]
    f0_hz: float | None
    syllables_per_second: float | None

    def to_json(self) -> dict[str, Any]:
        """Return the entry as JSON data."""
        return {
            "voiceId": self.voice_id,
            "embedding": [round(float(v), 7) for v in self.embedding],
            "f0Hz": self.f0_hz,
            "syllablesPerSecond": self.syllables_per_second,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VoiceEntry:
        """Return the entry stored as ``data``."""
        return cls(
            voice_id=str(data["voiceId"]),
            embedding=np.asarray(data["embedding"], dtype=np.float64),
            f0_hz=data.get("f0Hz"),
            syllables_per_second=data.get("syllablesPerSecond"),
        )


@dataclass(frozen=True)
class FittedVoice:
    """A candidate voice with its fitted prosody and how close it came."""

    voice: TrainedVoice
    cosine: float
    table_cosine: float
    f0_hz: float | None
    syllables_per_second: float | None


def table_key(base_voice: str, variants: list[str]) -> str:
    """Return the cache key of a voice table: what makes its figures what they are."""
    try:
        engine = metadata.version("espeakng-loader")
    except metadata.PackageNotFoundError:
        engine = "unknown"
    material = json.dumps(
        [TABLE_VERSION, engine, WEIGHTS_SHA256, REFERENCE_TEXT, base_voice, variants]
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:20]
    return f"{base_voice.lower()}-{digest}"


class VoiceMatchTrainer:
    """Fits an eSpeak voice, pitch and speed to a user's samples."""

    name = TRAINER

    def __init__(
        self,
        espeak: EspeakProvider,
        encoder: SpeakerEncoder,
        *,
        blobs: ObjectStorage,
        bucket: str,
    ) -> None:
        self._espeak = espeak
        self._encoder = encoder
        self._blobs = blobs
        self._bucket = bucket

    def train(self, job: TrainingInput) -> TrainingOutcome:
        """Return the best-matching eSpeak voice with fitted prosody, and its quality.

        Raises TrainingFailedError when eSpeak speaks no language like the samples'.
        """
        base = self._espeak.default_voice(job.language)
        if base is None:
            raise TrainingFailedError(f"eSpeak has no voice for the language {job.language}")
        target = job.mean_embedding()
        table = self.voice_table(base)
        ranked = sorted(table, key=lambda e: cosine(e.embedding, target), reverse=True)
        target_f0, target_rate = job.target_f0(), job.target_rate()
        fitted = [
            self._fit(entry, target, job.language, target_f0, target_rate)
            for entry in ranked[:CANDIDATES]
        ]
        best = max(fitted, key=lambda f: f.cosine)
        evaluation = evaluate(self._espeak, best.voice, target, self._encoder, engine="espeak")
        metrics = {
            **evaluation.metrics,
            "matchCosine": round(best.cosine, 4),
            "targetF0Hz": _rounded(target_f0),
            "achievedF0Hz": _rounded(best.f0_hz),
            "targetSyllablesPerSecond": _rounded(target_rate),
            "achievedSyllablesPerSecond": _rounded(best.syllables_per_second),
            "candidates": [
                {
                    "voiceId": f.voice.voice_id,
                    "tableCosine": round(f.table_cosine, 4),
                    "fittedCosine": round(f.cosine, 4),
                    "pitch": f.voice.pitch,
                    "speed": f.voice.speed,
                }
                for f in fitted
            ],
            "voicesCompared": len(table),
            "samples": len(job.samples),
            "sampleSeconds": round(sum(s.sample.duration or 0 for s in job.samples), 2),
        }
        model = {
            "engine": "espeak",
            "trainer": TRAINER,
            **best.voice.to_api(),
            "embeddingModel": "resemblyzer-0.1.4",
            "referenceText": REFERENCE_TEXT,
            "metrics": metrics,
        }
        files = {
            MODEL_FILE: (json.dumps(model, indent=2).encode(), "application/json"),
            PREVIEW_FILE: (evaluation.preview_wav, "audio/wav"),
        }
        return TrainingOutcome(
            provider="espeak",
            trainer=TRAINER,
            voice=best.voice,
            components=evaluation.components,
            metrics=metrics,
            sample_rate=22_050,
            files=files,
        )

    # -- the voice table ---------------------------------------------------------------

    def voice_table(self, base_voice: str) -> list[VoiceEntry]:
        """Return the table of ``base_voice`` and its variants: memory, bucket, or built."""
        variants = self._espeak.variant_names()
        key = table_key(base_voice, variants)
        with _tables_lock:
            table = _tables.get(key)
            if table is not None:
                return table
            table = self._stored_table(key) or self._build_table(key, base_voice, variants)
            _tables[key] = table
            return table

    def store_table(self, base_voice: str) -> str:
        """Make sure the table of ``base_voice`` is in this trainer's bucket; return its name.

        Building it (or taking it from memory) ahead of the first training spares that
        training the wait; any instance using the same bucket then reads it.
        """
        variants = self._espeak.variant_names()
        key = table_key(base_voice, variants)
        table = self.voice_table(base_voice)
        name = self._object_name(key)
        with contextlib.suppress(ObjectAlreadyExistsError):
            self._blobs.put(
                self._bucket,
                name,
                _table_document(key, base_voice, table),
                content_type="application/json",
                if_generation_match=0,
            )
        return name

    def _object_name(self, key: str) -> str:
        return f"{TABLE_PREFIX}/{key}.json"

    def _stored_table(self, key: str) -> list[VoiceEntry] | None:
        try:
            data = json.loads(self._blobs.get(self._bucket, self._object_name(key)))
            return [VoiceEntry.from_json(entry) for entry in data["entries"]]
        except NotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            logger.warning("The stored voice table %s is unreadable; building it again", key)
            return None

    def _build_table(self, key: str, base_voice: str, variants: list[str]) -> list[VoiceEntry]:
        logger.info("Building the voice-match table of %s (%d variants)", base_voice, len(variants))
        entries = []
        for voice_id in [base_voice, *(f"{base_voice}+{v}" for v in variants)]:
            entry = self._measure(voice_id)
            if entry is not None:
                entries.append(entry)
        # Another instance may have stored the same table meanwhile: keep theirs.
        with contextlib.suppress(ObjectAlreadyExistsError):
            self._blobs.put(
                self._bucket,
                self._object_name(key),
                _table_document(key, base_voice, entries),
                content_type="application/json",
                if_generation_match=0,
            )
        return entries

    def _measure(self, voice_id: str) -> VoiceEntry | None:
        voice = TrainedVoice(voice_id=voice_id)
        pcm = render(self._espeak, voice, REFERENCE_TEXT)
        try:
            embedding = self._encoder.embed(pcm, EVALUATION_RATE)
        except NoSpeechError:
            logger.info("eSpeak voice %s made no speech; left out of the table", voice_id)
            return None
        prosody = measure_prosody(pcm, EVALUATION_RATE)
        return VoiceEntry(
            voice_id=voice_id,
            embedding=embedding.astype(np.float64),
            f0_hz=prosody.f0_median_hz,
            syllables_per_second=prosody.syllables_per_second or None,
        )

    # -- fitting -----------------------------------------------------------------------

    def _fit(
        self,
        entry: VoiceEntry,
        target: npt.NDArray[np.float64],
        language: str,
        target_f0: float | None,
        target_rate: float | None,
    ) -> FittedVoice:
        pitch = _ratio(target_f0, entry.f0_hz)
        speed = _ratio(target_rate, entry.syllables_per_second)
        f0, rate = entry.f0_hz, entry.syllables_per_second
        pcm = None
        for _ in range(FIT_ROUNDS):
            voice = TrainedVoice(voice_id=entry.voice_id, pitch=pitch, speed=speed)
            pcm = render(self._espeak, voice, REFERENCE_TEXT)
            measured = measure_prosody(pcm, EVALUATION_RATE)
            f0, rate = measured.f0_median_hz, measured.syllables_per_second or None
            # Multiplicative corrections: eSpeak's response is monotonic, not linear.
            pitch = _clamp(pitch * _ratio(target_f0, f0))
            speed = _clamp(speed * _ratio(target_rate, rate))
        voice = TrainedVoice(
            voice_id=entry.voice_id,
            language=language,
            pitch=round(pitch, 3),
            speed=round(speed, 3),
        )
        pcm = render(self._espeak, voice, REFERENCE_TEXT)
        measured = measure_prosody(pcm, EVALUATION_RATE)
        try:
            fitted_cosine = cosine(self._encoder.embed(pcm, EVALUATION_RATE), target)
        except NoSpeechError:
            fitted_cosine = -1.0
        return FittedVoice(
            voice=voice,
            cosine=fitted_cosine,
            table_cosine=cosine(entry.embedding, target),
            f0_hz=measured.f0_median_hz,
            syllables_per_second=measured.syllables_per_second or None,
        )


def _table_document(key: str, base_voice: str, entries: list[VoiceEntry]) -> bytes:
    document = {
        "key": key,
        "baseVoice": base_voice,
        "referenceText": REFERENCE_TEXT,
        "entries": [entry.to_json() for entry in entries],
    }
    return json.dumps(document).encode()


def _ratio(target: float | None, actual: float | None) -> float:
    if not target or not actual:
        return 1.0
    return _clamp(target / actual)


def _clamp(value: float) -> float:
    return min(max(value, FIT_RANGE[0]), FIT_RANGE[1])


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
