"""The provider contract, run unchanged over each embedded provider (eSpeak NG, Piper).

What the synthesis layer relies on from any ``TTSProvider``: a valid catalog voice list and
a default voice for English; PCM at the requested rate; a timing for every written word,
in order, inside the audio, its character span naming the word; speed, pitch and volume
heard in the audio (or declared unapplied); permanent errors for unknown voices and for
input the provider refuses; correct results under concurrent calls.
"""

from __future__ import annotations

import statistics
import threading

import pytest

from shared.audio.timing import tokenize_words
from shared.providers.base import (
    AudioSettings,
    ErrorCategory,
    ProviderError,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
)
from shared.providers.espeak import EspeakProvider
from shared.providers.piper import PiperProvider
from shared.providers.piper_voices import packaged_voice
from tests.unit.providers.audio_measures import median_pitch, rms

TEXT = "The quick brown fox jumps over the lazy dog, and the patient narrator keeps reading."


@pytest.fixture(scope="module", params=["espeak", "piper"])
def provider(request: pytest.FixtureRequest) -> TTSProvider:
    espeak = EspeakProvider(variant_languages=["en-us"])
    if request.param == "espeak":
        return espeak
    return PiperProvider.from_files([packaged_voice()], fallback=espeak)


@pytest.fixture(scope="module")
def voice(provider: TTSProvider) -> str:
    found = provider.default_voice("en-US")
    assert found is not None
    return found


def say(provider: TTSProvider, voice: str, text: str = TEXT, **settings: float) -> SynthesisResult:
    return provider.synthesize(
        SynthesisRequest(text=text, voice_id=voice, settings=AudioSettings(**settings))
    )


def test_voices_are_catalog_profiles_and_english_has_a_default(
    provider: TTSProvider, voice: str
) -> None:
    voices = provider.list_voices()
    assert voices
    assert all(
        v.provider == provider.name and v.id == f"{provider.name}:{v.voice_id}" for v in voices
    )
    assert voice in {v.voice_id for v in voices}
    caps = provider.capabilities
    assert caps.timing == "word"
    if caps.languages:  # declared (else the catalog's sync lists them): they cover the voices
        assert {v.language for v in voices} <= set(caps.languages) | {"und"}
    assert provider.default_voice("xx-unknown") is None


def test_every_written_word_is_timed_in_order_inside_the_audio(
    provider: TTSProvider, voice: str
) -> None:
    result = say(provider, voice, sample_rate=16_000)
    assert result.sample_rate == 16_000
    assert 2.0 < result.duration_seconds < 8.0
    assert [w.text for w in result.words] == [t.text for t in tokenize_words(TEXT)]
    previous_end = 0.0
    for word in result.words:
        assert TEXT[word.char_start : word.char_end] == word.text
        assert previous_end - 0.01 <= word.start_seconds < word.end_seconds
        assert word.end_seconds <= result.duration_seconds + 0.01
        previous_end = word.end_seconds


def test_speed_changes_the_duration(provider: TTSProvider, voice: str) -> None:
    normal = say(provider, voice).duration_seconds
    assert say(provider, voice, speed=2.0).duration_seconds < normal * 0.75
    assert say(provider, voice, speed=0.5).duration_seconds > normal * 1.5


def test_volume_changes_the_loudness(provider: TTSProvider, voice: str) -> None:
    normal = rms(say(provider, voice).pcm)
    assert rms(say(provider, voice, volume=0.3).pcm) < normal * 0.5
    assert rms(say(provider, voice, volume=0.0).pcm) < normal * 0.01


def test_pitch_raises_the_voice_and_keeps_the_duration(provider: TTSProvider, voice: str) -> None:
    normal = say(provider, voice)
    high = say(provider, voice, pitch=1.5)
    assert not high.unapplied
    assert (
        median_pitch(high.pcm, high.sample_rate)
        > median_pitch(normal.pcm, normal.sample_rate) * 1.2
    )
    # Piper's durations are sampled (its noise_w), a few percent apart from run to run:
    # the medians of three renderings are compared.
    normal_seconds = statistics.median(say(provider, voice).duration_seconds for _ in range(3))
    high_seconds = statistics.median(
        say(provider, voice, pitch=1.5).duration_seconds for _ in range(3)
    )
    assert high_seconds == pytest.approx(normal_seconds, rel=0.15)


def test_unknown_voice_is_a_permanent_error(provider: TTSProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        say(provider, "no-such-voice")
    assert caught.value.category is ErrorCategory.PERMANENT
    assert caught.value.provider == provider.name


def test_ssml_is_refused_unless_declared(provider: TTSProvider, voice: str) -> None:
    request = SynthesisRequest(text="<speak>Hello there</speak>", voice_id=voice, ssml=True)
    if provider.capabilities.ssml:
        assert [w.text for w in provider.synthesize(request).words] == ["Hello", "there"]
        return
    with pytest.raises(ProviderError) as caught:
        provider.synthesize(request)
    assert caught.value.category is ErrorCategory.PERMANENT


def test_concurrent_calls_each_get_their_own_words(provider: TTSProvider, voice: str) -> None:
    texts = [f"Sentence number {i} is spoken here." for i in range(4)]
    results: dict[int, list[str]] = {}

    def run(index: int) -> None:
        results[index] = [w.text for w in say(provider, voice, texts[index]).words]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, text in enumerate(texts):
        assert results[index] == [t.text for t in tokenize_words(text)]
