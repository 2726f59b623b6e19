"""How good a voice sample is for cloning: a 0-10 score from four measured components.

The signal is cut into 20 ms frames and each frame's power measured (``frame_levels``).

- **Noise floor** ``N``: the mean power of the quietest 10 % of frames.
- **Speech frames**: frames at least 6 dB above the noise floor, no more than 40 dB under
  the loudest frames (the 95th percentile of power) and above -70 dBFS.
- **Signal-to-noise ratio** ``snr_db`` = 10·log10((S - N) / N), with ``S`` the mean
  power of the speech frames (speech plus noise, so ``N`` is taken off), clamped to
  0..60 dB (a digitally silent floor reads as 60).
- **Clipping ratio** ``clipping_ratio``: the share of samples at the signal's peak
  magnitude (within two 16-bit steps of it): waveform tops flattened by an overloaded
  recorder or gain stage pile up there, at whatever level the file was saved, while an
  unclipped recording reaches its peak in a handful of samples.
- **Silence ratio** ``silence_ratio``: the share of frames that are not speech frames.
- **Bandwidth** ``bandwidth_hz``: the highest frequency at which the long-term average
  spectrum of the speech frames (1/6-octave smoothed) is within 50 dB of its maximum:
  telephone audio stops near 3.4 kHz, wideband at 7-8 kHz, full-band audio above.

Each component maps linearly to 0..1 between an unusable and a good value:

===============  =====================  ===============
component        0 (unusable) at        1 (good) from
===============  =====================  ===============
SNR              10 dB                  40 dB
clipping ratio   2 % (log scale)        0.01 %
silence ratio    95 %                   40 %
bandwidth        3 kHz                  8 kHz
===============  =====================  ===============

and the score is ten times their weighted geometric mean,
``score = 10 · snr^0.35 · clipping^0.2 · silence^0.15 · bandwidth^0.3``, so one unusable
component makes the sample unusable whatever the others say, and each halving of a
component costs a fixed share of the score. A sample with no speech frames scores 0.
``usable`` is true for a score of at least ``MIN_USABLE_SCORE``; ``problems`` names the
components scoring under 0.5 (or ``no_speech``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float32]
else:
    np = lazy_module("numpy")


MIN_USABLE_SCORE = 3.0

_FRAME_SECONDS = 0.020
_NOISE_QUANTILE = 0.10
_SPEECH_ABOVE_NOISE_DB = 6.0
_SPEECH_RANGE_DB = 40.0
_SPEECH_MIN_DBFS = -70.0
_LOUD_QUANTILE = 0.95
_MAX_SNR_DB = 60.0
_FLOOR_POWER = 1e-12  # -120 dBFS: digital silence
_PEAK_TOLERANCE = 2.0 / 32768
_BANDWIDTH_RANGE_DB = 50.0
_SMOOTHING_OCTAVES = 1.0 / 6
_SPECTRUM_BATCH = 256
_WEIGHTS = {"snr": 0.35, "clipping": 0.2, "silence": 0.15, "bandwidth": 0.3}


@dataclass(frozen=True)
class QualityReport:
    """The measurements, each component's 0..1 score, and the 0-10 score."""

    snr_db: float
    clipping_ratio: float
    silence_ratio: float
    bandwidth_hz: float
    components: dict[str, float]
    score: float
    problems: tuple[str, ...]

    @property
    def usable(self) -> bool:
        """Return whether the sample is good enough to train a voice from."""
        return self.score >= MIN_USABLE_SCORE


def assess_quality(samples: Floats, sample_rate: int) -> QualityReport:
    """Return the quality report of mono ``samples`` (floats in -1..1) at ``sample_rate``.

    Raises:
        ValueError: ``samples`` is not 1-D or shorter than one frame, or the rate is not
            positive.
    """
    if samples.ndim != 1:
        raise ValueError("samples must be one channel (a 1-D array)")
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    frame = max(1, round(_FRAME_SECONDS * sample_rate))
    if len(samples) < frame:
        raise ValueError("samples are shorter than one 20 ms frame")
    signal = samples.astype(np.float32, copy=False)
    powers = frame_powers(signal, frame)
    noise = _noise_power(powers)
    speech = _speech_frames(powers, noise)
    clipping = clipping_ratio(signal)
    if not speech.any():
        components = {"snr": 0.0, "clipping": _clipping_score(clipping), "silence": 0.0}
        components["bandwidth"] = 0.0
        return QualityReport(0.0, clipping, 1.0, 0.0, components, 0.0, ("no_speech",))
    speech_power = float(powers[speech].mean())
    snr = 10 * math.log10(max(speech_power - noise, _FLOOR_POWER) / noise)
    snr = min(max(snr, 0.0), _MAX_SNR_DB)
    silence = 1.0 - float(speech.mean())
    bandwidth = effective_bandwidth(signal, sample_rate, np.repeat(speech, frame))
    components = {
        "snr": _ramp(snr, 10.0, 40.0),
        "clipping": _clipping_score(clipping),
        "silence": _ramp(silence, 0.95, 0.40),
        "bandwidth": _ramp(bandwidth, 3000.0, 8000.0),
    }
    score = 10.0 * math.prod(value ** _WEIGHTS[name] for name, value in components.items())
    problems = tuple(name for name, value in components.items() if value < 0.5)
    return QualityReport(
        snr_db=round(snr, 2),
        clipping_ratio=clipping,
        silence_ratio=round(silence, 4),
        bandwidth_hz=round(bandwidth, 1),
        components={name: round(value, 4) for name, value in components.items()},
        score=round(score, 2),
        problems=problems,
    )


def _ramp(value: float, zero_at: float, one_at: float) -> float:
    return min(max((value - zero_at) / (one_at - zero_at), 0.0), 1.0)


def _clipping_score(ratio: float) -> float:
    if ratio <= 0:
        return 1.0
    return _ramp(math.log10(ratio), math.log10(0.02), math.log10(0.0001))


def frame_powers(signal: Floats, frame: int) -> npt.NDArray[np.float64]:
    """Return the mean power of each whole frame of ``frame`` samples, floored at -120 dBFS."""
    usable = len(signal) - len(signal) % frame
    frames = signal[:usable].reshape(-1, frame)
    powers = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / frame
    return np.asarray(np.maximum(powers, _FLOOR_POWER), dtype=np.float64)


def _noise_power(powers: npt.NDArray[np.float64]) -> float:
    quietest = max(1, int(len(powers) * _NOISE_QUANTILE))
    return float(np.sort(powers)[:quietest].mean())


def _speech_frames(powers: npt.NDArray[np.float64], noise: float) -> npt.NDArray[np.bool_]:
    loud = float(np.quantile(powers, _LOUD_QUANTILE))
    threshold = max(
        noise * 10 ** (_SPEECH_ABOVE_NOISE_DB / 10),
        loud * 10 ** (-_SPEECH_RANGE_DB / 10),
        10 ** (_SPEECH_MIN_DBFS / 10),
    )
    return powers > threshold


def clipping_ratio(signal: Floats) -> float:
    """Return the share of samples at the peak magnitude (0 for near-silent signals)."""
    magnitude = np.abs(signal)
    peak = float(magnitude.max())
    if peak < 0.01:
        return 0.0  # near-silent: no meaningful peak to be flattened at
    return float(np.count_nonzero(magnitude >= peak - _PEAK_TOLERANCE)) / len(signal)


def effective_bandwidth(signal: Floats, sample_rate: int, speech: npt.NDArray[np.bool_]) -> float:
    """Return the highest frequency (Hz) the speech reaches within 50 dB of its spectral peak.

    ``speech`` marks the samples to look at (shorter than ``signal`` by under a frame).
    """
    size = 1 << max(8, math.ceil(math.log2(0.032 * sample_rate)))  # >= 32 ms windows
    hop = size // 2
    voiced = signal[: len(speech)][speech]
    if len(voiced) < size:
        voiced = np.pad(voiced, (0, size - len(voiced)))
    frames = np.lib.stride_tricks.sliding_window_view(voiced, size)[::hop]
    window = np.hanning(size)
    spectrum = np.zeros(size // 2 + 1)
    for start in range(0, len(frames), _SPECTRUM_BATCH):  # bounded memory for long files
        batch = np.fft.rfft(frames[start : start + _SPECTRUM_BATCH] * window, axis=1)
        spectrum += np.sum(batch.real**2 + batch.imag**2, axis=0)
    frequencies = np.fft.rfftfreq(size, 1.0 / sample_rate).astype(np.float64)
    smoothed = _smooth_octaves(spectrum, frequencies)
    levels = 10 * np.log10(np.maximum(smoothed, _FLOOR_POWER))
    reached = np.nonzero(levels >= levels.max() - _BANDWIDTH_RANGE_DB)[0]
    return float(frequencies[reached[-1]])


def _smooth_octaves(
    spectrum: npt.NDArray[np.float64], frequencies: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Return ``spectrum`` averaged over a 1/6-octave band around each frequency."""
    cumulative = np.concatenate([[0.0], np.cumsum(spectrum)])
    half = 2 ** (_SMOOTHING_OCTAVES / 2)
    step = frequencies[1]
    # At least the neighbouring bins, where an octave band is narrower than a bin.
    low = np.searchsorted(frequencies, np.minimum(frequencies / half, frequencies - step))
    high = np.searchsorted(frequencies, np.maximum(frequencies * half, frequencies + step), "right")
    return np.asarray((cumulative[high] - cumulative[low]) / (high - low), dtype=np.float64)
