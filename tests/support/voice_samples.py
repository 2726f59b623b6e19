"""Voice samples the tests generate: eSpeak speaking, in every accepted container format.

``speech(voice, text)`` is real speech from eSpeak NG (16-bit mono); ``encode`` writes it
as wav, flac, ogg (Vorbis) or mp3; ``noisy``, ``clipped`` and ``silence`` make the inputs a
quality score must judge. Different eSpeak voices stand in for different speakers: the
speaker encoder separates them well (AUC 0.925 on eSpeak voices).
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import soundfile  # type: ignore[import-untyped]  # no type hints shipped

from shared.audio.speaker_encoder import default_encoder
from shared.blobs.local import LocalObjectStorage
from shared.config import Settings
from shared.providers.base import AudioSettings, SynthesisRequest
from shared.providers.espeak import EspeakProvider
from shared.samples.training.voice_match import VoiceMatchTrainer

RATE = 22_050
TEXTS = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us. A large size in stockings is hard to sell.",
)
_ENGINE: list[EspeakProvider] = []
_LOCK = threading.Lock()


def engine() -> EspeakProvider:
    """Return one eSpeak provider for the test session."""
    with _LOCK:
        if not _ENGINE:
            _ENGINE.append(EspeakProvider(variant_languages=[]))
        return _ENGINE[0]


def speech(voice: str, text: str, *, rate: int = RATE, pitch: float = 1.0) -> np.ndarray:
    """Return eSpeak's ``voice`` saying ``text`` as float32 samples at ``rate``."""
    request = SynthesisRequest(
        text=text,
        voice_id=voice,
        settings=AudioSettings(sample_rate=rate, pitch=pitch),
        want_timings=False,
    )
    pcm = engine().synthesize(request).pcm
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def encode(samples: np.ndarray, fmt: str = "wav", *, rate: int = RATE, channels: int = 1) -> bytes:
    """Return ``samples`` as a file of ``fmt`` (wav, flac, ogg, mp3)."""
    data: Any = samples if channels == 1 else np.stack([samples] * channels, axis=1)
    buffer = io.BytesIO()
    if fmt == "wav":
        soundfile.write(buffer, data, rate, format="WAV", subtype="PCM_16")
    elif fmt == "flac":
        soundfile.write(buffer, data, rate, format="FLAC", subtype="PCM_16")
    elif fmt == "ogg":
        soundfile.write(buffer, data, rate, format="OGG", subtype="VORBIS")
    elif fmt == "mp3":
        soundfile.write(buffer, data, rate, format="MP3", subtype="MPEG_LAYER_III")
    else:
        raise ValueError(fmt)
    return buffer.getvalue()


def sample_file(voice: str, index: int = 0, fmt: str = "wav", **kwargs: Any) -> bytes:
    """Return a file of ``voice`` saying the ``index``-th test text (4-6 s of speech)."""
    return encode(speech(voice, TEXTS[index % len(TEXTS)], **kwargs), fmt)


def noisy(samples: np.ndarray, snr_db: float, seed: int = 7) -> np.ndarray:
    """Return ``samples`` with white noise at ``snr_db`` below their power."""
    rng = np.random.default_rng(seed)
    power = float(np.mean(samples**2))
    noise = rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples))
    return np.clip(samples + noise, -1, 1).astype(np.float32)


def clipped(samples: np.ndarray, gain: float = 8.0) -> np.ndarray:
    """Return ``samples`` amplified ``gain`` times and clipped at full scale."""
    return np.clip(samples * gain, -1.0, 1.0).astype(np.float32)


def silence(seconds: float, *, rate: int = RATE) -> np.ndarray:
    """Return ``seconds`` of faint noise (no speech at all)."""
    rng = np.random.default_rng(3)
    return (rng.normal(0, 1e-4, int(seconds * rate))).astype(np.float32)


def warm_voice_table(settings: Settings, language: str = "en-US") -> None:
    """Build (or take from this process's memory) the voice-match table of ``language`` and
    put it in the storage of ``settings``, as an operator warms it: a gateway using that
    data directory then trains without building it again (15-60 s on two cores)."""
    storage = LocalObjectStorage(
        settings.blobs_path,
        signing_key=b"w" * 32,
        public_base_url=settings.public_base_url,
        max_upload_bytes=settings.max_upload_bytes,
    )
    try:
        trainer = VoiceMatchTrainer(
            EspeakProvider(variant_languages=[]),
            default_encoder(),
            blobs=storage,
            bucket=settings.models_bucket,
        )
        trainer.store_table(language)
    finally:
        storage.close()
