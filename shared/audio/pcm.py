"""16-bit mono PCM, the one audio shape providers hand back.

Every provider's audio becomes little-endian signed 16-bit mono samples at the sample rate
the caller asked for: ``decode_audio`` reads WAV (or any format soundfile reads) to PCM,
``resample`` changes the rate with soxr, ``scale_volume`` applies a loudness factor with
clipping. Encoding to mp3/ogg and analysis belong to the synthesis layer.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import soundfile  # type: ignore[import-untyped]  # no type hints shipped
    import soxr  # type: ignore[import-untyped]  # no type hints shipped
else:
    np = lazy_module("numpy")
    soundfile = lazy_module("soundfile")
    soxr = lazy_module("soxr")


SAMPLE_WIDTH = 2
_INT16_MAX = 32767
_INT16_MIN = -32768


def to_samples(pcm: bytes) -> npt.NDArray[np.int16]:
    """Return ``pcm`` (16-bit little-endian) as an int16 array; an odd last byte is dropped."""
    usable = len(pcm) - len(pcm) % SAMPLE_WIDTH
    return np.frombuffer(pcm[:usable], dtype="<i2").astype(np.int16, copy=False)


def to_pcm(samples: npt.NDArray[np.generic]) -> bytes:
    """Return float samples in -1..1, or integer samples, as 16-bit little-endian PCM."""
    if np.issubdtype(samples.dtype, np.floating):
        floats = samples.astype(np.float64)
        scaled = np.clip(np.round(floats * _INT16_MAX), _INT16_MIN, _INT16_MAX)
        return bytes(scaled.astype("<i2").tobytes())
    clipped: npt.NDArray[np.int64] = np.clip(samples.astype(np.int64), _INT16_MIN, _INT16_MAX)
    return bytes(clipped.astype("<i2").tobytes())


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Return ``pcm`` resampled from ``from_rate`` to ``to_rate`` (unchanged when equal)."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = to_samples(pcm)
    converted = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return np.asarray(converted, dtype="<i2").tobytes()


def scale_volume(pcm: bytes, factor: float) -> bytes:
    """Return ``pcm`` with every sample multiplied by ``factor``, clipped to 16 bits."""
    if factor == 1.0 or not pcm:
        return pcm
    samples = to_samples(pcm).astype(np.float64) * factor
    return np.clip(np.round(samples), _INT16_MIN, _INT16_MAX).astype("<i2").tobytes()


def decode_audio(data: bytes) -> tuple[bytes, int]:
    """Return the mono 16-bit PCM and sample rate of an encoded file (WAV, FLAC, OGG, ...).

    Raises:
        ValueError: ``data`` is not audio soundfile can read.
    """
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError("not a readable audio file") from exc
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1).astype(np.int16)
    return mono.astype("<i2").tobytes(), int(rate)


def is_wav(data: bytes) -> bool:
    """Return whether ``data`` starts with a RIFF/WAVE header."""
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"
