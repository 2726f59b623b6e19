"""Measures of synthesized speech the provider tests assert on (this module has no tests).

Loudness (RMS), where the audio is silent (10 ms frames far below the loudest), and the
voice's pitch (median fundamental frequency of the loud frames, by autocorrelation).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shared.audio.pcm import to_samples

FRAME_SECONDS = 0.01


def rms(pcm: bytes) -> float:
    """Return the root mean square of the samples (full scale 32768)."""
    samples = to_samples(pcm).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def frame_levels(pcm: bytes, rate: int) -> npt.NDArray[np.float64]:
    """Return each 10 ms frame's level in dB below full scale."""
    samples = to_samples(pcm).astype(np.float64) / 32768
    size = int(rate * FRAME_SECONDS)
    count = len(samples) // size
    frames = samples[: count * size].reshape(count, size)
    levels: npt.NDArray[np.float64] = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9)
    return levels


def silences(
    pcm: bytes, rate: int, *, below_peak_db: float = 40, min_seconds: float = 0.12
) -> list[tuple[float, float]]:
    """Return ``(start, end)`` seconds of the runs of frames ``below_peak_db`` under the
    loudest frame, at least ``min_seconds`` long, leading and trailing ones included."""
    levels = frame_levels(pcm, rate)
    quiet = levels < levels.max() - below_peak_db
    runs: list[tuple[float, float]] = []
    index = 0
    while index < len(quiet):
        if not quiet[index]:
            index += 1
            continue
        end = index
        while end < len(quiet) and quiet[end]:
            end += 1
        if (end - index) * FRAME_SECONDS >= min_seconds:
            runs.append((index * FRAME_SECONDS, end * FRAME_SECONDS))
        index = end
    return runs


def median_pitch(pcm: bytes, rate: int) -> float:
    """Return the median fundamental frequency (Hz) of the loud 40 ms frames."""
    samples = to_samples(pcm).astype(np.float64)
    size = int(rate * 0.04)
    shortest, longest = int(rate / 400), int(rate / 60)
    peak = np.max(np.abs(samples)) or 1.0
    found: list[float] = []
    for start in range(0, len(samples) - size, size // 2):
        frame = samples[start : start + size]
        if np.sqrt(np.mean(frame**2)) < 0.1 * peak:
            continue
        frame = frame - frame.mean()
        correlation = np.correlate(frame, frame, mode="full")[size - 1 :]
        if correlation[0] <= 0:
            continue
        lag = shortest + int(np.argmax(correlation[shortest:longest]))
        if correlation[lag] / correlation[0] > 0.5:  # clearly periodic: a voiced frame
            found.append(rate / lag)
    return float(np.median(found)) if found else 0.0
