"""Measured pitch and speaking rate: exact on synthetic tones, proportional on eSpeak speech."""

from __future__ import annotations

import numpy as np
import pytest

from shared.audio.prosody import measure_prosody
from tests.support.speech import speak

RATE = 22_050


def harmonic_tone(f0: float, seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return sum((0.3 / k) * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 12)).astype(np.float32)


def bursts(count: int, on: float, off: float, rate: int = 16_000) -> np.ndarray:
    """Return ``count`` vowel-like bursts (a 150 Hz tone under a Hann envelope) with gaps."""
    tone = harmonic_tone(150.0, on, rate) * np.hanning(int(on * rate)).astype(np.float32)
    gap = np.zeros(int(off * rate), dtype=np.float32)
    return np.concatenate([np.concatenate([tone, gap]) for _ in range(count)])


@pytest.mark.parametrize("f0", [85.0, 150.0, 220.0, 400.0])
def test_the_pitch_of_a_steady_tone_is_measured_exactly(f0):
    prosody = measure_prosody(harmonic_tone(f0, 1.0), 16_000)

    assert prosody.f0_median_hz == pytest.approx(f0, rel=0.01)
    assert prosody.voiced_seconds > 0.9


@pytest.mark.parametrize(("count", "on", "off"), [(8, 0.12, 0.08), (15, 0.09, 0.06)])
def test_each_burst_of_a_pulsed_tone_is_one_syllable(count, on, off):
    prosody = measure_prosody(bursts(count, on, off), 16_000)

    assert prosody.syllables == count
    assert prosody.syllables_per_second == pytest.approx(count / prosody.speaking_seconds, rel=1e-9)


@pytest.fixture(scope="module")
def by_pitch() -> dict[float, object]:
    return {
        pitch: measure_prosody(speak(pitch=pitch), RATE) for pitch in (0.5, 0.71, 1.0, 1.41, 2.0)
    }


@pytest.fixture(scope="module")
def by_speed() -> dict[float, object]:
    return {speed: measure_prosody(speak(speed=speed), RATE) for speed in (0.6, 0.8, 1.0, 1.3, 1.6)}


def test_a_higher_espeak_pitch_measures_proportionally_higher(by_pitch):
    f0 = {pitch: prosody.f0_median_hz for pitch, prosody in by_pitch.items()}

    assert list(f0.values()) == sorted(f0.values())
    assert 80 < f0[1.0] < 130  # eSpeak's default male voice
    # The provider maps pitch 2.0 and 0.5 to eSpeak's extremes, about x1.65 and x0.66.
    assert 1.4 < f0[2.0] / f0[1.0] < 2.1
    assert 0.5 < f0[0.5] / f0[1.0] < 0.8


def test_pitch_leaves_the_speaking_rate_alone(by_pitch):
    rates = [prosody.syllables_per_second for prosody in by_pitch.values()]

    # eSpeak's renderings vary a little from call to call (its voice has random jitter).
    assert max(rates) / min(rates) < 1.25


def test_a_faster_espeak_rate_measures_proportionally_faster(by_speed):
    rate = {speed: prosody.syllables_per_second for speed, prosody in by_speed.items()}

    assert list(rate.values()) == sorted(rate.values())
    assert 1.25 < rate[1.6] / rate[1.0] < 1.9
    assert 0.45 < rate[0.6] / rate[1.0] < 0.75
    # The same text: about the same count of syllables whatever the rate.
    counts = [prosody.syllables for prosody in by_speed.values()]
    assert max(counts) / min(counts) < 1.2


def test_the_syllable_count_is_near_the_text_s(by_speed):
    # The rainbow passage has 49 syllables; the method counts some extra nuclei.
    assert 0.9 * 49 < by_speed[1.0].syllables < 1.4 * 49
    assert 4.0 < by_speed[1.0].syllables_per_second < 10.0


def test_rate_leaves_the_pitch_alone(by_speed):
    pitches = [prosody.f0_median_hz for prosody in by_speed.values()]

    assert max(pitches) / min(pitches) < 1.05


def test_a_female_variant_measures_about_twice_the_default_pitch():
    male = measure_prosody(speak(), RATE)
    female = measure_prosody(speak(voice="en-US+f3"), RATE)

    assert female.f0_median_hz > 1.7 * male.f0_median_hz


def test_whispered_speech_has_no_pitch_but_a_rate():
    prosody = measure_prosody(speak(voice="en-US+whisper"), RATE)

    assert prosody.f0_median_hz is None
    assert prosody.voiced_seconds == 0
    assert prosody.syllables_per_second > 4


def test_silence_has_no_pitch_and_no_syllables():
    prosody = measure_prosody(np.zeros(3 * 16_000, dtype=np.float32), 16_000)

    assert prosody.f0_median_hz is None
    assert prosody.syllables == 0
    assert prosody.speaking_seconds == 0.0
    assert prosody.syllables_per_second == 0.0


def test_input_that_cannot_be_measured_is_refused():
    with pytest.raises(ValueError, match="one channel"):
        measure_prosody(np.zeros((100, 2), dtype=np.float32), 16_000)
    with pytest.raises(ValueError, match="sample_rate"):
        measure_prosody(np.zeros(100, dtype=np.float32), 0)
