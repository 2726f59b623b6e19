"""16-bit mono PCM, the one audio shape providers hand back.

Every provider's audio becomes little-endian signed 16-bit mono samples at the sample rate
the caller asked for: ``decode_audio`` reads WAV (or any format soundfile reads) to PCM,
``resample`` changes the rate with soxr, ``scale_volume`` applies a loudness factor with
clipping, ``frame_swings`` measures each frame's peak-to-peak swing. Encoding to mp3/ogg
and analysis belong to the synthesis layer.

``frame_swings`` runs on every synthesis (word timestamps are fitted to the sound), so it
uses the standard library's ``audioop`` (C, no numpy): a cold instance's first speech does
not import numpy for it (``bench.cold_start``'s module count for it fell from 685 to 606),
at some cost on a warm one (``bench.synthesis`` prints the fit's share of a miss).
``audioop`` is deprecated since Python 3.11 and gone from 3.13, where the ``audioop-lts``
package (requirements.txt) provides it.
"""

from __future__ import annotations

import io
import sys
import warnings
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


with warnings.catch_warnings():  # deprecated in the standard library, kept by audioop-lts
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

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


def frame_swings(pcm: bytes, frame: int) -> list[int]:
    """Return the peak-to-peak swing of each whole ``frame``-sample frame of ``pcm``.

    A trailing part frame is left out. The same figures as numpy's ``max - min`` over each
    frame.
    """
    if sys.byteorder == "big":  # audioop reads samples in the machine's byte order
        pcm = audioop.byteswap(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH], SAMPLE_WIDTH)
    step = frame * SAMPLE_WIDTH
    swings = []
    for start in range(0, len(pcm) // step * step, step):
        low, high = audioop.minmax(pcm[start : start + step], SAMPLE_WIDTH)
        swings.append(high - low)
    return swings


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
