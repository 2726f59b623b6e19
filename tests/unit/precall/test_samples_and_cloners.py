"""Sample locations and their allow-list, the sample checks, the pitch-match cloner, timing."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.precall.analytics import timing
from shared.precall.cloners import CloneFailedError, CloneRequest
from shared.precall.cloners.pitch_match import EspeakPitchCloner
from shared.precall.errors import (
    SampleLocationNotAllowedError,
    SampleNotAudioError,
    SampleUnusableError,
)
from shared.precall.samples import check_allowed, check_sample, parse_location
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from tests.functions.precall_support import espeak_wav, silence_wav

SETTINGS = Settings(
    _env_file=None, precall_sample_buckets="s3://rec/{account}/, gs://shared-bucket"
)


@pytest.mark.parametrize(
    "url",
    [
        "gs://voice-samples/precall/acme/a.wav",
        "gs://voice-samples/samples/acme/s1",
        "s3://rec/acme/calls/a.wav",
        "gs://shared-bucket/anything/a.wav",
    ],
)
def test_allowed_locations(url):
    assert check_allowed(SETTINGS, "acme", url).url == url


@pytest.mark.parametrize(
    "url",
    [
        "gs://voice-samples/precall/globex/a.wav",
        "gs://voice-samples/precall/acme",
        "gs://voice-samples/models/acme/a.wav",
        "s3://rec/globex/a.wav",
        "s3://rec/acmex/a.wav",
        "s3://other/acme/a.wav",
        "gs://voice-samples/precall/acme/../globex/a.wav",
        "gs://voice-samples/precall/acme//a.wav",
        "file:///etc/passwd",
        "https://voice-samples/precall/acme/a.wav",
        "voice-samples/precall/acme/a.wav",
    ],
)
def test_refused_locations(url):
    with pytest.raises(SampleLocationNotAllowedError):
        check_allowed(SETTINGS, "acme", url)


def test_an_account_id_cannot_widen_its_own_prefix():
    with pytest.raises(SampleLocationNotAllowedError):
        check_allowed(SETTINGS, "acme/..", "gs://voice-samples/precall/acme/../x/a.wav")


def test_parse_location():
    location = parse_location("s3://bucket/a/b.wav")
    assert (location.scheme, location.bucket, location.name) == ("s3", "bucket", "a/b.wav")


def test_sample_checks():
    good = check_sample(espeak_wav(), SETTINGS)
    assert good.format == "wav"
    assert good.duration_seconds > 2
    assert good.content_type == "audio/wav"
    with pytest.raises(SampleNotAudioError):
        check_sample(b"{}" * 100, SETTINGS)
    with pytest.raises(SampleUnusableError, match="at least 2 s"):
        check_sample(espeak_wav(text="Hi."), SETTINGS)
    with pytest.raises(SampleUnusableError, match="no speech"):
        check_sample(silence_wav(3.0), SETTINGS)
    with pytest.raises(SampleUnusableError, match="at most 5 s"):
        check_sample(espeak_wav(), Settings(_env_file=None, precall_sample_max_seconds=5))


@pytest.fixture(scope="module")
def cloner():
    return EspeakPitchCloner(ProviderRegistry.of([EspeakProvider(variant_languages=["en-us"])]))


def clone(cloner, voice):
    audio = espeak_wav(voice)
    return cloner.clone(CloneRequest("x", audio, "x.wav", "audio/wav"))


def test_pitch_match_answers_a_high_voice_with_a_high_voice_and_a_low_one_low(cloner):
    high, low = clone(cloner, "en-US+f2"), clone(cloner, "en-US+m1")
    assert "+f" in high.provider_voice_id
    assert "+m" in low.provider_voice_id
    assert high.provider == "espeak"
    assert high.cloned_voice_id.startswith("pm-")
    assert high.cloned_voice_id != clone(cloner, "en-US+f2").cloned_voice_id
    # The sample is one of the candidates: its own voice is the closest in pitch.
    assert 0.9 < clone(cloner, "en-US+f3").pitch < 1.1


def test_pitch_match_refuses_what_has_no_pitch(cloner):
    with pytest.raises(CloneFailedError, match="No voiced speech"):
        cloner.clone(CloneRequest("x", silence_wav(3.0), "x.wav", "audio/wav"))
    with pytest.raises(CloneFailedError, match="cannot be decoded"):
        cloner.clone(CloneRequest("x", b"nope" * 50, "x.wav", "audio/wav"))


def test_timing_mean_and_nearest_rank_p95():
    assert timing([]).mean_ms is None
    figures = timing([float(n) for n in range(1, 101)])
    assert (figures.count, figures.mean_ms, figures.p95_ms) == (100, 50.5, 95.0)
