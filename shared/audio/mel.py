"""Mel power spectrograms with librosa's defaults, in numpy.

``mel_filterbank`` builds librosa's default filterbank (``htk=False``, ``norm="slaney"``):
triangles on the slaney mel scale, linear below 1 kHz and logarithmic above, each scaled
to equal area. ``mel_spectrogram`` applies it to the power spectrum of centred,
zero-padded frames, which is what ``librosa.feature.melspectrogram`` computes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float32]
else:
    np = lazy_module("numpy")


def mel_spectrogram(
    wav: Floats, window: npt.NDArray[np.float64], filters: npt.NDArray[np.float32], hop: int
) -> Floats:
    """Return the mel power spectrogram of ``wav`` as (frames, bands) float32.

    ``window`` (its length is the FFT size) is applied to frames centred every ``hop``
    samples, with half a window of zeros at each end, like librosa's ``melspectrogram``
    with ``center=True, pad_mode="constant"``; ``filters`` is (bins, bands).
    """
    size = len(window)
    padded = np.pad(wav, size // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop]
    spectrum = np.fft.rfft(frames * window, axis=1).astype(np.complex64)
    power = np.abs(spectrum) ** 2
    return (power @ filters).astype(np.float32)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> npt.NDArray[np.float32]:
    """Return librosa's default mel filterbank (slaney scale and norm), shape (mels, bins).

    Triangles between ``n_mels + 2`` points evenly spaced on the slaney mel scale from 0 Hz
    to Nyquist, each scaled by 2 / its width in Hz (equal area).
    """
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, np.newaxis] - bins[np.newaxis, :]
    filters = np.zeros((n_mels, len(bins)), dtype=np.float32)
    for band in range(n_mels):
        lower = -ramps[band] / widths[band]
        upper = ramps[band + 2] / widths[band + 1]
        filters[band] = np.maximum(0.0, np.minimum(lower, upper))
    filters *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, np.newaxis]
    return filters


# The slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz >= _MIN_LOG_HZ:
        return _MIN_LOG_MEL + math.log(hz / _MIN_LOG_HZ) / _LOG_STEP
    return hz / _F_SP


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = _F_SP * mels
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mels - _MIN_LOG_MEL))
    return np.where(mels >= _MIN_LOG_MEL, logarithmic, linear)
