"""Stitching pieces: no click at a boundary, exact offsets, pauses, matched loudness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.audio.pcm import to_samples
from shared.audio.stitch import (
    DEFAULT_CROSSFADE_MS,
    Stitcher,
    match_loudness,
    speech_level_dbfs,
    stitch,
)

RATE = 22_050
AMPLITUDE = 0.5 * 32767


def sine(seconds: float, hz: float = 440.0, phase: float = 0.0, amplitude: float = AMPLITUDE):
    t = np.arange(round(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * hz * t + phase) * amplitude).astype("<i2").tobytes()


def largest_step(pcm: bytes) -> float:
    return float(np.max(np.abs(np.diff(to_samples(pcm).astype(np.float64)))))


# The steepest step a 440 Hz sine of this amplitude takes between two samples.
NATURAL_STEP = AMPLITUDE * 2 * math.pi * 440 / RATE


@pytest.mark.parametrize("phase", [math.pi / 2, 3 * math.pi / 2])
def test_abutting_pieces_join_without_a_click(phase):
    # 0.25 s of 440 Hz ends on a zero crossing; the next piece starts at a peak.
    first, second = sine(0.25), sine(0.25, phase=phase)
    naive = first + second

    joined = stitch([first, second], RATE)

    assert largest_step(naive) > 3 * NATURAL_STEP  # without care this boundary clicks
    assert largest_step(joined.pcm) <= 1.5 * NATURAL_STEP


def test_pauses_are_silence_and_the_edges_fade_instead_of_clicking():
    first, second = sine(0.2501), sine(0.25, phase=math.pi / 2)  # both edges mid-wave

    joined = stitch([first, second], RATE, pause_ms=200)

    samples = to_samples(joined.pcm)
    gap_start = len(first) // 2
    gap = samples[gap_start : gap_start + round(0.2 * RATE)]
    assert not gap.any()
    assert len(samples) == len(first) // 2 + round(0.2 * RATE) + len(second) // 2
    assert largest_step(joined.pcm) <= 1.5 * NATURAL_STEP


def test_offsets_say_exactly_where_each_piece_starts():
    # Each piece carries a click 0.1 s in; it must be found at its piece's offset + 0.1 s.
    pieces = []
    for _ in range(3):
        samples = np.zeros(round(0.5 * RATE), dtype="<i2")
        samples[round(0.1 * RATE)] = 30_000
        pieces.append(samples.tobytes())

    for pauses in (0, [150, 40]):
        joined = stitch(pieces, RATE, pause_ms=pauses)
        samples = to_samples(joined.pcm)
        clicks = np.flatnonzero(samples > 20_000) / RATE
        assert clicks == pytest.approx([offset + 0.1 for offset in joined.offsets], abs=0.5 / RATE)
        assert joined.offsets[0] == 0.0
        assert joined.duration_seconds == pytest.approx(len(samples) / RATE)


def test_crossfade_shortens_the_result_by_the_overlap_only():
    pieces = [sine(0.3), sine(0.3), sine(0.3)]

    joined = stitch(pieces, RATE, crossfade_ms=10)

    overlap = round(0.010 * RATE)
    assert len(joined.pcm) // 2 == 3 * round(0.3 * RATE) - 2 * overlap
    assert joined.offsets[1] == pytest.approx((round(0.3 * RATE) - overlap) / RATE)


def test_tiny_pieces_still_join():
    joined = stitch([b"\x01\x00", sine(0.1), b""], RATE)

    assert len(joined.offsets) == 3
    assert joined.duration_seconds == pytest.approx(1 / RATE + 0.1, abs=2 / RATE)


@pytest.mark.parametrize(
    ("pieces", "pauses", "message"),
    [
        ([], 0, "no audio pieces"),
        ([b"\x00\x00", b"\x00\x00"], [1, 2], "expected 1 pauses"),
        ([b"\x00\x00", b"\x00\x00"], -5, "not negative"),
    ],
)
def test_bad_stitch_requests_are_refused(pieces, pauses, message):
    with pytest.raises(ValueError, match=message):
        stitch(pieces, RATE, pause_ms=pauses)


def speech_like(level: float, seconds: float, silent_fraction: float) -> bytes:
    # Bursts of a 200 Hz tone separated by pauses, like words.
    samples = np.frombuffer(sine(seconds, hz=200, amplitude=level * 32767), dtype="<i2").copy()
    period = round(0.4 * RATE)
    for start in range(0, len(samples), period):
        samples[start + round(period * (1 - silent_fraction)) : start + period] = 0
    return samples.tobytes()


def test_loudness_matching_brings_voices_within_one_db():
    quiet = speech_like(0.03, 2.0, silent_fraction=0.6)
    loud = speech_like(0.6, 1.0, silent_fraction=0.1)
    middle = speech_like(0.2, 1.5, silent_fraction=0.3)

    matched = match_loudness([quiet, loud, middle], RATE)

    levels = [speech_level_dbfs(piece, RATE) for piece in matched]
    assert max(levels) - min(levels) < 1.0
    assert all(np.max(np.abs(to_samples(piece))) < 32767 for piece in matched)


def test_the_limiter_keeps_peaks_under_the_ceiling_without_breaking_the_match():
    body = np.frombuffer(speech_like(0.05, 1.0, silent_fraction=0.2), dtype="<i2").copy()
    body[RATE // 3 : RATE // 3 + 40] = 30_000  # one loud spike
    other = speech_like(0.4, 1.0, silent_fraction=0.2)

    matched = match_loudness([body.tobytes(), other], RATE, target_dbfs=-12.0, peak_dbfs=-1.0)

    ceiling = 10 ** (-1 / 20) * 32767
    assert all(np.max(np.abs(to_samples(piece))) <= ceiling + 1 for piece in matched)
    levels = [speech_level_dbfs(piece, RATE) for piece in matched]
    assert levels == pytest.approx([-12.0, -12.0], abs=1.0)


def test_silence_stays_silent():
    quiet = bytes(RATE * 2)

    matched = match_loudness([quiet, speech_like(0.2, 1.0, 0.2)], RATE)

    assert matched[0] == quiet
    assert speech_level_dbfs(quiet, RATE) == -math.inf


@pytest.mark.parametrize(
    "seconds",
    [
        [0.5, 0.7, 0.03, 1.0],
        [0.0001, 0.5],  # a piece shorter than the crossfade: the overlap shrinks
        [0.5, 0.0, 0.0001, 0.004, 0.5],  # empty and tiny pieces between long ones
        [0.9],
    ],
)
def test_the_stitcher_gives_stitchs_samples_and_offsets_a_piece_at_a_time(seconds):
    rng = np.random.default_rng(len(seconds))
    pieces = [
        (rng.standard_normal(round(s * RATE)) * 12_000).clip(-32768, 32767).astype("<i2").tobytes()
        for s in seconds
    ]
    whole = stitch(pieces, RATE)

    stitcher = Stitcher(RATE)
    parts = [stitcher.add(piece) for piece in pieces]
    parts.append(stitcher.finish())

    assert b"".join(parts) == whole.pcm
    assert stitcher.offsets == whole.offsets
    assert stitcher.duration_seconds == whole.duration_seconds
    # Each call hands on all but the last crossfade's worth of the result so far.
    held = round(DEFAULT_CROSSFADE_MS * RATE / 1000) * 2
    assert len(b"".join(parts[:-1])) >= len(whole.pcm) - held
    with pytest.raises(ValueError, match="finished"):
        stitcher.add(pieces[0])


def test_a_stitcher_given_nothing_refuses_to_finish():
    with pytest.raises(ValueError, match="no audio pieces"):
        Stitcher(RATE).finish()
