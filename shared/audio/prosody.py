"""A speaker's pitch and speaking rate, measured: what the voice-match trainer fits eSpeak to.

The audio is analysed in frames every 10 ms: pitch at 16 kHz, loudness in the band under
1 kHz (resampled to 2 kHz), where vowels carry their energy and hissing consonants do not.

**Pitch** is YIN (de Cheveigné and Kawahara, 2002): per frame, the cumulative mean
normalised difference function over lags for 60-500 Hz, integrated over 25 ms; the first
lag whose value dips under 0.15 (then followed down to its local minimum and refined by a
parabola) gives the period. Frames with no such dip, or quieter than the speech threshold
below, are unvoiced. ``f0_median_hz`` is the median over voiced frames, with the 10th and
90th percentiles for the range.

**Speaking rate** follows de Jong and Wempe's syllable-nuclei method (2009): the low-band
intensity contour (40 ms Hann windows, in dB) has its local peaks above the speech
threshold (25 dB under its 99th percentile, and above -70 dBFS) counted as syllable
nuclei when the contour dips at least 3 dB between one peak and the next. Their method
also asks for a voiced peak; on eSpeak's voices that check dropped a third of the nuclei
in fast or breathy speech and made counts depend on pitch, while the low band already
keeps consonant noise out, so it is left out. The nuclei per second of speaking time
(frames above the threshold: pauses do not count) is ``syllables_per_second``, an
articulation rate. On eSpeak's speech it counts about a quarter more nuclei than a
dictionary has syllables, fairly evenly across voices and rates; the trainer compares
rates measured the same way, so what matters is that the measure moves in proportion to
the speaking rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import soxr  # type: ignore[import-untyped]  # no type hints shipped

    Floats = npt.NDArray[np.float64]
else:
    np = lazy_module("numpy")
    soxr = lazy_module("soxr")


ANALYSIS_RATE = 16_000
_HOP = 160  # 10 ms
_F0_MIN, _F0_MAX = 60.0, 500.0
_YIN_WINDOW = 400  # 25 ms integration window
_YIN_THRESHOLD = 0.15
_YIN_BATCH = 2048  # frames per FFT batch: bounded memory for long samples
_LOW_BAND_RATE = 2_000  # its Nyquist: the 1 kHz band of the intensity contour
_LOW_BAND_HOP = 20  # 10 ms
_INTENSITY_WINDOW = 80  # 40 ms
_SPEECH_RANGE_DB = 25.0
_SPEECH_QUANTILE = 0.99
_MIN_DIP_DB = 3.0
_SILENCE_DB = -70.0  # never speech, however quiet the loudest frames are
_FLOOR_POWER = 1e-12


@dataclass(frozen=True)
class Prosody:
    """Measured pitch (Hz; None without voiced frames) and speaking rate."""

    f0_median_hz: float | None
    f0_p10_hz: float | None
    f0_p90_hz: float | None
    voiced_seconds: float
    syllables: int
    speaking_seconds: float
    syllables_per_second: float


def measure_prosody(samples: npt.NDArray[np.floating], sample_rate: int) -> Prosody:
    """Return the pitch and speaking rate of mono ``samples`` (floats in -1..1).

    Raises:
        ValueError: ``samples`` is not 1-D, or ``sample_rate`` is not positive.
    """
    if samples.ndim != 1:
        raise ValueError("samples must be one channel (a 1-D array)")
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    signal = _resampled(samples, sample_rate, ANALYSIS_RATE)
    intensity = intensity_db(_resampled(samples, sample_rate, _LOW_BAND_RATE))
    frames = min(len(intensity), len(signal) // _HOP + 1)
    intensity = intensity[:frames]
    speech = intensity > _speech_threshold(intensity)
    f0 = yin_f0(signal, speech)
    voiced = f0[np.isfinite(f0)]
    nuclei = syllable_nuclei(intensity, speech)
    speaking_seconds = float(np.count_nonzero(speech)) * _HOP / ANALYSIS_RATE
    pitch = [float(np.percentile(voiced, q)) if len(voiced) else None for q in (50, 10, 90)]
    return Prosody(
        f0_median_hz=pitch[0],
        f0_p10_hz=pitch[1],
        f0_p90_hz=pitch[2],
        voiced_seconds=len(voiced) * _HOP / ANALYSIS_RATE,
        syllables=len(nuclei),
        speaking_seconds=speaking_seconds,
        syllables_per_second=len(nuclei) / speaking_seconds if speaking_seconds else 0.0,
    )


def _resampled(samples: npt.NDArray[np.floating], rate: int, to_rate: int) -> Floats:
    signal = np.asarray(samples, dtype=np.float64)
    if rate == to_rate:
        return signal
    return np.asarray(soxr.resample(signal, rate, to_rate), dtype=np.float64)


def intensity_db(low_band: Floats) -> Floats:
    """Return the level (dB) of a 40 ms Hann window centred on every 10 ms step.

    ``low_band`` is the signal at 2 kHz.
    """
    padded = np.pad(low_band, _INTENSITY_WINDOW // 2)
    window = np.hanning(_INTENSITY_WINDOW)
    window /= window.sum()
    count = len(low_band) // _LOW_BAND_HOP + 1
    power = np.convolve(padded**2, window, mode="valid")[::_LOW_BAND_HOP][:count]
    return np.asarray(10 * np.log10(np.maximum(power, _FLOOR_POWER)), dtype=np.float64)


def _speech_threshold(intensity: Floats) -> float:
    return max(float(np.quantile(intensity, _SPEECH_QUANTILE)) - _SPEECH_RANGE_DB, _SILENCE_DB)


def yin_f0(signal: Floats, wanted: npt.NDArray[np.bool_]) -> Floats:
    """Return the YIN pitch (Hz) of the frames centred every 10 ms; NaN if unvoiced.

    Only the frames marked in ``wanted`` are analysed (the others are NaN).
    """
    min_lag = math.floor(ANALYSIS_RATE / _F0_MAX)
    max_lag = math.ceil(ANALYSIS_RATE / _F0_MIN)
    span = _YIN_WINDOW + max_lag
    padded = np.pad(signal, (span // 2, span))
    frames = np.nonzero(wanted)[0]
    f0 = np.full(len(wanted), np.nan)
    size = 1 << math.ceil(math.log2(span + _YIN_WINDOW))
    for first in range(0, len(frames), _YIN_BATCH):
        batch = frames[first : first + _YIN_BATCH]
        chunk = padded[batch[:, np.newaxis] * _HOP + np.arange(span)]
        f0[batch] = _periods(_difference(chunk, max_lag, size), min_lag, max_lag)
    return f0


def _difference(chunk: Floats, max_lag: int, size: int) -> Floats:
    """Return YIN's d(tau) for lags 0..max_lag of each row: E(0) + E(tau) - 2 r(tau)."""
    head = chunk[:, :_YIN_WINDOW]
    correlation = np.fft.irfft(np.fft.rfft(chunk, size) * np.conj(np.fft.rfft(head, size)), size)[
        :, : max_lag + 1
    ]
    energy = np.cumsum(np.pad(chunk**2, ((0, 0), (1, 0))), axis=1)
    lags = np.arange(max_lag + 1)
    shifted = energy[:, lags + _YIN_WINDOW] - energy[:, lags]
    return np.maximum(shifted[:, :1] + shifted - 2 * correlation, 0.0)


def _periods(difference: Floats, min_lag: int, max_lag: int) -> Floats:
    """Return each row's pitch (Hz) from its difference function; NaN where none dips."""
    rows = np.arange(len(difference))
    lags = np.arange(difference.shape[1])
    running = np.cumsum(difference[:, 1:], axis=1)
    normalised = np.ones_like(difference)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised[:, 1:] = difference[:, 1:] * lags[1:] / running
    normalised[~np.isfinite(normalised)] = 1.0
    searched = normalised[:, min_lag:max_lag]
    below = searched < _YIN_THRESHOLD
    dipped = below.any(axis=1)
    first = np.argmax(below, axis=1)
    # From the first lag under the threshold, walk down to where the curve turns up.
    turns = np.diff(searched, axis=1) >= 0
    turns[:, -1] = True  # stop at the last lag searched
    turns &= np.arange(turns.shape[1]) >= first[:, np.newaxis]
    lag = min_lag + np.argmax(turns, axis=1)
    # The parabola through each minimum and its neighbours (lag > min_lag - 1 >= 1).
    before, here, after = (normalised[rows, lag + shift] for shift in (-1, 0, 1))
    curvature = before - 2 * here + after
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(curvature > 0, 0.5 * (before - after) / curvature, 0.0)
    period = lag + np.clip(shift, -1.0, 1.0)
    return np.where(dipped, ANALYSIS_RATE / period, np.nan)


def syllable_nuclei(intensity: Floats, speech: npt.NDArray[np.bool_]) -> list[int]:
    """Return the frames of the syllable nuclei: speech peaks with a 3 dB dip after them."""
    inner = intensity[1:-1]
    is_peak = (inner > intensity[:-2]) & (inner >= intensity[2:]) & speech[1:-1]
    peaks = list(np.nonzero(is_peak)[0] + 1)
    nuclei: list[int] = []
    for index, peak in enumerate(peaks):
        end = peaks[index + 1] if index + 1 < len(peaks) else len(intensity)
        if intensity[peak] - float(intensity[peak:end].min()) >= _MIN_DIP_DB:
            nuclei.append(int(peak))
    return nuclei
