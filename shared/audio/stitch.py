"""Joining synthesized pieces into one track: no clicks, chosen pauses, even loudness.

Long texts are synthesized sentence chunk by chunk and dialogues turn by turn; ``stitch``
joins those PCM pieces (16-bit mono, one sample rate). Pieces that abut are overlapped by
a few milliseconds with an equal-power crossfade; pieces separated by a pause get a short
fade out and fade in around the silence, so no boundary jumps from a sample to zero. It
returns where each piece starts in the result, exactly, so word timestamps can be shifted.
``Stitcher`` joins abutting pieces one at a time, with the same samples and offsets as
``stitch`` (no pauses) but holding only the last crossfade's worth of the result, so a long
job's audio need never be in memory whole.
``match_loudness`` brings pieces (a dialogue's voices) to one speech level (RMS over the
frames that are not silence), with a peak limiter so the gain never makes a sample clip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from shared.audio.pcm import to_pcm, to_samples
from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]
else:
    np = lazy_module("numpy")

DEFAULT_CROSSFADE_MS = 8.0
DEFAULT_PEAK_DBFS = -1.0
MAX_GAIN_DB = 24.0  # a near-silent piece is not pumped up to speech level
_FRAME_MS = 20.0
_SILENCE_DBFS = -50.0  # frames quieter than this are pauses, left out of the speech level
_LIMITER_MS = 5.0
_LEVEL_PASSES = 4


class StitchedAudio(NamedTuple):
    """The joined PCM, its rate, and the start (seconds) of each piece within it."""

    pcm: bytes
    sample_rate: int
    offsets: tuple[float, ...]

    @property
    def duration_seconds(self) -> float:
        """Return the length of the joined audio in seconds."""
        return len(self.pcm) // 2 / self.sample_rate


def stitch(
    pieces: Sequence[bytes],
    sample_rate: int,
    *,
    pause_ms: float | Sequence[float] = 0.0,
    crossfade_ms: float = DEFAULT_CROSSFADE_MS,
) -> StitchedAudio:
    """Return ``pieces`` joined in order, with ``pause_ms`` of silence between neighbours.

    ``pause_ms`` is one pause for every gap or one per gap (``len(pieces) - 1`` values).
    Where the pause is zero the neighbours overlap by ``crossfade_ms`` (less for very short
    pieces), so the result is shorter than the pieces' sum; ``offsets`` accounts for that.

    Raises:
        ValueError: no pieces, a non-positive rate, or pauses that do not fit the gaps.
    """
    if not pieces:
        raise ValueError("nothing to stitch: no audio pieces")
    if sample_rate <= 0:
        raise ValueError("sample rate must be positive")
    pauses = _pauses(pause_ms, len(pieces) - 1)
    fade = max(0, round(crossfade_ms * sample_rate / 1000))
    signals = [to_samples(piece).astype(np.float64) for piece in pieces]
    out: Floats = signals[0].copy()
    offsets = [0]
    for signal, pause in zip(signals[1:], pauses, strict=True):
        gap = round(pause * sample_rate / 1000)
        if gap > 0:
            _fade_edge(out, fade, at_end=True)
            incoming = signal.copy()
            _fade_edge(incoming, fade, at_end=False)
            offsets.append(len(out) + gap)
            out = np.concatenate([out, np.zeros(gap), incoming])
            continue
        overlap = min(fade, len(out) // 2, len(signal) // 2)
        offsets.append(len(out) - overlap)
        out = _crossfade(out, signal, overlap)
    return StitchedAudio(
        pcm=to_pcm(np.round(out).astype(np.int64)),
        sample_rate=sample_rate,
        offsets=tuple(offset / sample_rate for offset in offsets),
    )


class Stitcher:
    """Joins abutting pieces in order, as ``stitch`` with no pauses, a piece at a time.

    ``add`` returns the PCM of the result that no later piece can change (all but the last
    crossfade's length), ``finish`` the rest; together they are ``stitch``'s PCM, sample
    for sample, and ``offsets`` its offsets. Only that held-back tail outlives a call.
    """

    def __init__(self, sample_rate: int, *, crossfade_ms: float = DEFAULT_CROSSFADE_MS) -> None:
        if sample_rate <= 0:
            raise ValueError("sample rate must be positive")
        self.sample_rate = sample_rate
        self._fade = max(0, round(crossfade_ms * sample_rate / 1000))
        self._tail: Floats | None = None  # the result's last samples, still open to a fade
        self._length = 0  # samples in the result so far, the tail included
        self._offsets: list[int] = []
        self._finished = False

    def add(self, piece: bytes) -> bytes:
        """Return the PCM that joining ``piece`` completes (16-bit little-endian).

        Raises:
            ValueError: the stitcher is finished.
        """
        if self._finished:
            raise ValueError("the stitcher is finished: add pieces before finish")
        samples = to_samples(piece)
        if self._tail is None:
            self._offsets.append(0)
            mixed: Floats = np.zeros(0)
            rest = samples
        else:
            overlap = min(self._fade, self._length // 2, len(samples) // 2)
            self._offsets.append(self._length - overlap)
            # Only the overlap is mixed in floats; the rest of the piece is its samples as
            # they are, so a long piece is never copied into a float array.
            mixed = _crossfade(self._tail, samples[:overlap].astype(np.float64), overlap)
            rest = samples[overlap:]
            self._length -= overlap
        self._length += len(samples)
        keep = min(self._fade, len(mixed) + len(rest))
        if len(rest) >= keep:
            ready = _rounded(mixed) + rest[: len(rest) - keep].astype("<i2").tobytes()
            self._tail = rest[len(rest) - keep :].astype(np.float64)
            return ready
        joined = np.concatenate([mixed, rest.astype(np.float64)])
        self._tail = joined[len(joined) - keep :]
        return _rounded(joined[: len(joined) - keep])

    def finish(self) -> bytes:
        """Return the rest of the result's PCM (the held-back tail).

        Raises:
            ValueError: no piece was added.
        """
        if self._tail is None:
            raise ValueError("nothing to stitch: no audio pieces")
        self._finished = True
        tail, self._tail = self._tail, self._tail[:0]
        return _rounded(tail)

    @property
    def offsets(self) -> tuple[float, ...]:
        """Return the start (seconds) of each piece added, within the result."""
        return tuple(offset / self.sample_rate for offset in self._offsets)

    @property
    def duration_seconds(self) -> float:
        """Return the length of the result so far in seconds."""
        return self._length / self.sample_rate


def _rounded(samples: Floats) -> bytes:
    return to_pcm(np.round(samples).astype(np.int64))


def _pauses(pause_ms: float | Sequence[float], gaps: int) -> list[float]:
    values = [float(pause_ms)] * gaps if isinstance(pause_ms, int | float) else list(pause_ms)
    if len(values) != gaps:
        raise ValueError(f"expected {gaps} pauses between the pieces, got {len(values)}")
    if any(not math.isfinite(value) or value < 0 for value in values):
        raise ValueError("pauses must be finite and not negative")
    return values


def _ramp(length: int) -> Floats:
    # Quarter sine from 0 to 1; squared sums with its mirror to 1 (equal power).
    return np.sin(0.5 * np.pi * (np.arange(length) + 0.5) / length)


def _fade_edge(signal: Floats, length: int, *, at_end: bool) -> None:
    length = min(length, len(signal))
    if length == 0:
        return
    ramp = _ramp(length)
    if at_end:
        signal[-length:] *= ramp[::-1]
    else:
        signal[:length] *= ramp


def _crossfade(head: Floats, tail: Floats, overlap: int) -> Floats:
    if overlap == 0:
        return np.concatenate([head, tail])
    fade_in = _ramp(overlap)
    fade_out = fade_in[::-1]
    mixed = head[-overlap:] * fade_out + tail[:overlap] * fade_in
    return np.concatenate([head[:-overlap], mixed, tail[overlap:]])


def speech_level_dbfs(pcm: bytes, sample_rate: int) -> float:
    """Return the RMS level (dBFS) of the non-silent 20 ms frames; -inf for silence."""
    return _speech_level(to_samples(pcm).astype(np.float64) / 32768.0, sample_rate)


def _speech_level(signal: Floats, sample_rate: int) -> float:
    frame = max(1, round(_FRAME_MS * sample_rate / 1000))
    usable = len(signal) - len(signal) % frame
    frames = signal[:usable].reshape(-1, frame) if usable else signal.reshape(1, -1)
    if frames.size == 0:
        return -math.inf
    energy = np.mean(frames**2, axis=1)
    loud = energy[energy > 10 ** (_SILENCE_DBFS / 10)]
    if loud.size == 0:
        return -math.inf
    return 10 * math.log10(float(np.mean(loud)))


def match_loudness(
    pieces: Sequence[bytes],
    sample_rate: int,
    *,
    target_dbfs: float | None = None,
    peak_dbfs: float = DEFAULT_PEAK_DBFS,
) -> list[bytes]:
    """Return ``pieces`` each scaled to one speech level, peaks limited to ``peak_dbfs``.

    The level is ``target_dbfs`` or, without it, the mean level of the pieces. Silent
    pieces are returned unchanged; no piece gains more than ``MAX_GAIN_DB``. The limiter
    lowers the gain only around peaks that would pass ``peak_dbfs``, so levels still match.

    Raises:
        ValueError: a non-positive rate or a ``peak_dbfs`` above 0.
    """
    if sample_rate <= 0:
        raise ValueError("sample rate must be positive")
    if peak_dbfs > 0:
        raise ValueError("the peak ceiling must be at or below 0 dBFS")
    signals = [to_samples(piece).astype(np.float64) / 32768.0 for piece in pieces]
    levels = [_speech_level(signal, sample_rate) for signal in signals]
    audible = [level for level in levels if math.isfinite(level)]
    if not audible:
        return list(pieces)
    target = target_dbfs if target_dbfs is not None else sum(audible) / len(audible)
    ceiling = 10 ** (peak_dbfs / 20)
    window = max(1, round(_LIMITER_MS * sample_rate / 1000))
    matched: list[bytes] = []
    for piece, signal, level in zip(pieces, signals, levels, strict=True):
        if not math.isfinite(level):
            matched.append(piece)
            continue
        gain_db = min(target - level, MAX_GAIN_DB)
        limited = _limit(signal * 10 ** (gain_db / 20), ceiling, window)
        for _ in range(_LEVEL_PASSES):
            # Limiting a loud peak lowers the level a little: measure again and make up.
            shortfall = target - _speech_level(limited, sample_rate)
            if abs(shortfall) < 0.1 or gain_db >= MAX_GAIN_DB:
                break
            gain_db = min(gain_db + shortfall, MAX_GAIN_DB)
            limited = _limit(signal * 10 ** (gain_db / 20), ceiling, window)
        matched.append(to_pcm(np.round(limited * 32767).astype(np.int64)))
    return matched


def _limit(signal: Floats, ceiling: float, window: int) -> Floats:
    peaks = np.abs(signal)
    if peaks.size == 0 or float(peaks.max()) <= ceiling:
        return signal
    wanted = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    # A moving minimum over 2w+1 then a moving mean over w+1 samples: every value averaged
    # is a minimum over a window holding the sample, so the smooth gain never exceeds the
    # gain that sample needs, and the gain changes gently (no distortion clicks).
    held = _moving_windows(wanted, 2 * window + 1).min(axis=1)
    smooth = _moving_windows(held, window + 1).mean(axis=1)
    limited: Floats = np.clip(signal * smooth, -ceiling, ceiling)
    return limited


def _moving_windows(values: Floats, width: int) -> Floats:
    # Centred windows of ``width`` samples, the edges repeated.
    half = width // 2
    padded = np.pad(values, (half, width - 1 - half), mode="edge")
    windows: Floats = np.lib.stride_tricks.sliding_window_view(padded, width)
    return windows
