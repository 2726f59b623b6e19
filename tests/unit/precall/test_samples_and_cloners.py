"""Sample locations and their allow-list, the sample checks, the voice-match cloner, timing."""

from __future__ import annotations

import numpy as np
import pytest

from shared.config import Settings
from shared.precall.analytics import timing
from shared.precall.cloners import CloneFailedError, CloneRequest
from shared.precall.cloners.voice_match import VoiceMatchCloner
from shared.precall.errors import (
    SampleLocationNotAllowedError,
    SampleNotAudioError,
    SampleUnusableError,
)
from shared.precall.samples import check_allowed, check_sample, parse_location
from shared.samples.cloning import recording_target
from tests.functions.precall_support import espeak_wav, silence_wav
from tests.support.voice_match import warm_voice_match_table

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
def matcher():
    return warm_voice_match_table()


@pytest.fixture(scope="module")
def cloner(matcher):
    return VoiceMatchCloner(matcher, SETTINGS)


def request(audio: bytes, **fields) -> CloneRequest:
    return CloneRequest("x", audio, "x.wav", "audio/wav", **fields)


class KeepsItsMatches:
    """The real matcher, keeping what each ``match`` returned (the cloner takes any matcher)."""

    def __init__(self, matcher):
        self._matcher = matcher
        self.matches = []

    def match(self, target):
        self.matches.append(self._matcher.match(target))
        return self.matches[-1]


# Named variants, none of eSpeak's numbered m1-m8 / f1-f5: a match by pitch alone among
# those (the cloner this one replaced) cannot answer with them.
@pytest.mark.parametrize("voice", ["en-US+belinda", "en-US+Andy"])
def test_the_clone_is_the_voice_match_of_the_sample(matcher, voice):
    audio = espeak_wav(voice)
    kept = KeepsItsMatches(matcher)
    cloner = VoiceMatchCloner(kept, SETTINGS)
    clone = cloner.clone(request(audio))
    assert (clone.provider, clone.provider_voice_id, clone.language) == ("espeak", voice, "en-US")
    assert clone.cloned_voice_id.startswith("vm-")
    # Exactly the voice, pitch and speed the matcher fitted to the recording's target.
    [match] = kept.matches
    measured = recording_target(audio, SETTINGS, "en-US")
    assert np.array_equal(match.target.embedding, measured.embedding)
    assert (match.target.f0_hz, match.target.syllables_per_second) == (
        measured.f0_hz,
        measured.syllables_per_second,
    )
    fitted = match.voice
    assert (clone.provider_voice_id, clone.language) == (fitted.voice_id, fitted.language)
    assert (clone.pitch, clone.speed) == (fitted.pitch, fitted.speed)
    # A retry of the same recording is another clone of the same voice. Its pitch and speed
    # are fitted again from fresh eSpeak renders, and those differ slightly with what the
    # engine rendered before (its generator keeps state between utterances: a syllable
    # more or less in a fit's measurement moved the speed by 10 % in one CI run), so only
    # the voice is compared here.
    again = cloner.clone(request(audio))
    assert again.cloned_voice_id != clone.cloned_voice_id
    assert again.provider_voice_id == clone.provider_voice_id


def test_the_fitted_pitch_follows_the_callers(cloner):
    low = cloner.clone(request(espeak_wav("en-US+belinda", pitch=0.8)))
    high = cloner.clone(request(espeak_wav("en-US+belinda", pitch=1.3)))
    assert low.provider_voice_id == high.provider_voice_id == "en-US+belinda"
    assert low.pitch < 0.9
    assert high.pitch > 1.2


def test_a_stored_samples_target_stands_for_the_recording(cloner):
    # A sample of the samples capability brings the embedding its processing stored: the
    # cloner matches that, not the bytes (here deliberately another voice's).
    stored = recording_target(espeak_wav("en-US+belinda"), SETTINGS, "en-US")
    clone = cloner.clone(request(espeak_wav("en-US+Andy"), target=stored))
    assert clone.provider_voice_id == "en-US+belinda"


def test_the_voice_match_refuses_what_it_cannot_match(cloner):
    with pytest.raises(CloneFailedError, match="No speech") as silent:
        cloner.clone(request(silence_wav(3.0)))
    with pytest.raises(CloneFailedError, match="cannot be decoded") as garbage:
        cloner.clone(request(b"nope" * 50))
    with pytest.raises(CloneFailedError, match="no voice for the language") as klingon:
        cloner.clone(request(espeak_wav(), language="tlh"))
    assert not any(e.value.retryable for e in (silent, garbage, klingon))


def test_timing_mean_and_nearest_rank_p95():
    assert timing([]).mean_ms is None
    figures = timing([float(n) for n in range(1, 101)])
    assert (figures.count, figures.mean_ms, figures.p95_ms) == (100, 50.5, 95.0)
