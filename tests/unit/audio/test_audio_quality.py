"""The quality score: clean speech scores high; noise, clipping, silence, narrow bands lower."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soxr

from shared.audio.decoding import decode
from shared.audio.quality import MIN_USABLE_SCORE, assess_quality
from tests.support.speech import lame_mp3, speak

RATE = 22_050


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speak()


def speech_power(samples: np.ndarray) -> float:
    frames = samples[: len(samples) // 441 * 441].reshape(-1, 441).astype(np.float64)
    powers = np.mean(frames**2, axis=1)
    return float(powers[powers > powers.max() * 1e-4].mean())


def with_noise(samples: np.ndarray, snr_db: float, seed: int = 16) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, 1.0, len(samples))
    noise *= math.sqrt(speech_power(samples) / 10 ** (snr_db / 10))
    return (samples + noise).astype(np.float32)


def band_limited(samples: np.ndarray, through_rate: int) -> np.ndarray:
    narrow = soxr.resample(samples, RATE, through_rate)
    return soxr.resample(narrow, through_rate, RATE).astype(np.float32)


def test_clean_speech_scores_high_with_nothing_wrong(speech):
    report = assess_quality(speech, RATE)

    assert report.score >= 9.5
    assert report.usable
    assert report.problems == ()
    assert report.snr_db >= 50
    assert report.clipping_ratio < 1e-4
    assert report.silence_ratio < 0.3
    assert report.bandwidth_hz > 10_000


def test_the_score_is_the_documented_weighted_geometric_mean(speech):
    report = assess_quality(with_noise(speech, 20), RATE)
    weights = {"snr": 0.35, "clipping": 0.2, "silence": 0.15, "bandwidth": 0.3}

    expected = 10 * math.prod(report.components[name] ** weights[name] for name in weights)

    assert report.score == pytest.approx(expected, abs=0.01)
    assert all(0.0 <= value <= 1.0 for value in report.components.values())


def test_more_noise_means_a_lower_score_and_the_snr_is_measured(speech):
    clean = assess_quality(speech, RATE)
    reports = {snr: assess_quality(with_noise(speech, snr), RATE) for snr in (30, 20, 10, 3)}

    scores = [clean.score] + [reports[snr].score for snr in (30, 20, 10, 3)]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)
    assert reports[30].snr_db == pytest.approx(30, abs=3)
    assert reports[20].snr_db == pytest.approx(20, abs=3)
    assert "snr" in reports[20].problems
    assert reports[3].score < MIN_USABLE_SCORE
    assert not reports[3].usable


def test_clipping_is_found_and_lowers_the_score_at_any_saved_level(speech):
    clean = assess_quality(speech, RATE)
    light = assess_quality(np.clip(speech * 1.6, -1, 1), RATE)
    heavy = assess_quality(np.clip(speech * 6, -1, 1), RATE)
    heavy_attenuated = assess_quality(np.clip(speech * 6, -1, 1) * 0.4, RATE)

    assert clean.score > light.score > heavy.score
    assert 1e-4 < light.clipping_ratio < heavy.clipping_ratio
    assert heavy.clipping_ratio > 0.02
    assert "clipping" in heavy.problems
    assert not heavy.usable
    assert heavy_attenuated.clipping_ratio == pytest.approx(heavy.clipping_ratio, rel=0.05)


def test_loud_speech_that_is_not_clipped_is_not_called_clipped(speech):
    peak_normalised = speech / np.abs(speech).max()

    report = assess_quality(peak_normalised.astype(np.float32), RATE)

    assert report.clipping_ratio < 1e-4
    assert report.components["clipping"] == 1.0


@pytest.mark.parametrize(
    "silence",
    [
        np.zeros(5 * RATE, dtype=np.float32),
        np.random.default_rng(1).normal(0, 1 / 32768, 5 * RATE).astype(np.float32),  # dither
        np.random.default_rng(2).normal(0, 0.02, 5 * RATE).astype(np.float32),  # hiss only
    ],
    ids=["digital", "dither", "hiss"],
)
def test_silence_fails(silence):
    report = assess_quality(silence, RATE)

    assert report.score == 0.0
    assert not report.usable
    assert report.problems == ("no_speech",)
    assert report.silence_ratio == 1.0


def test_a_sample_that_is_mostly_silence_scores_lower(speech):
    padded = np.concatenate([np.zeros(25 * RATE, dtype=np.float32), speech])

    report = assess_quality(padded, RATE)

    assert report.silence_ratio > 0.7
    assert "silence" in report.problems
    assert report.score < assess_quality(speech, RATE).score


def test_bandwidth_is_the_upper_frequency_the_speech_reaches(speech):
    telephone = assess_quality(band_limited(speech, 8_000), RATE)
    wideband = assess_quality(band_limited(speech, 16_000), RATE)
    full = assess_quality(speech, RATE)

    assert 3_400 <= telephone.bandwidth_hz <= 4_100
    assert 7_400 <= wideband.bandwidth_hz <= 8_100
    assert full.bandwidth_hz > 10_000
    assert "bandwidth" in telephone.problems
    assert telephone.score < wideband.score <= full.score
    assert telephone.score < 7.5


def test_decoded_mp3_speech_still_scores_well(speech):
    decoded = decode(lame_mp3(speech))

    report = assess_quality(decoded.samples, decoded.sample_rate)

    assert report.score >= 8.5
    assert report.usable


def test_input_that_cannot_be_measured_is_refused(speech):
    with pytest.raises(ValueError, match="one channel"):
        assess_quality(np.stack([speech, speech], axis=1), RATE)
    with pytest.raises(ValueError, match="shorter"):
        assess_quality(speech[:100], RATE)
    with pytest.raises(ValueError, match="sample_rate"):
        assess_quality(speech, 0)
