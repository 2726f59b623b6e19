"""eSpeak NG through ctypes: the voice list, word timings, audio settings, concurrency."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from shared.audio.pcm import to_samples
from shared.providers import espeak as espeak_module
from shared.providers.base import AudioSettings, ErrorCategory, ProviderError, SynthesisRequest
from shared.providers.espeak import EspeakProvider
from shared.providers.voices import AgeGroup, Gender


@pytest.fixture(scope="module")
def espeak() -> EspeakProvider:
    return EspeakProvider(variant_languages=["en-us", "fr"])


@pytest.fixture(scope="module")
def voices(espeak):
    return {voice.voice_id: voice for voice in espeak.list_voices()}


def say(espeak, text="Hello brave new world.", voice="en-US", **settings):
    return espeak.synthesize(
        SynthesisRequest(text=text, voice_id=voice, settings=AudioSettings(**settings))
    )


def test_every_language_is_a_voice_with_a_bcp47_tag(voices):
    languages = [v for v in voices.values() if "+" not in v.voice_id]
    assert len(languages) > 100
    assert voices["en-US"].language == "en-US"
    assert voices["en-US"].display_name == "English (America)"
    assert voices["cmn"].language == "cmn"
    assert all(v.provider == "espeak" and v.id == f"espeak:{v.voice_id}" for v in voices.values())


def test_variants_take_gender_and_age_from_their_files(voices):
    assert voices["en-US+grandma"].gender is Gender.FEMALE
    assert voices["en-US+grandma"].age_group is AgeGroup.SENIOR
    assert voices["en-US+Denis"].gender is Gender.MALE
    assert voices["en-US+Denis"].age_group is AgeGroup.ADULT
    # The klatt variant's file names no gender or age: the catalog does not guess.
    assert voices["en-US+klatt"].gender is None
    assert voices["en-US+klatt"].age_group is None


def test_variants_only_for_configured_languages(voices):
    assert "fr+f1" in voices
    assert "de+f1" not in voices
    assert "de" in voices


def test_word_timings_follow_the_text(espeak):
    text = "Hello brave new world, naïve café."
    result = say(espeak, text)
    words = [w.text for w in result.words]
    assert words == ["Hello", "brave", "new", "world", "naïve", "café"]
    for word in result.words:
        assert text[word.char_start : word.char_end] == word.text
        assert 0 <= word.start_seconds < word.end_seconds <= result.duration_seconds + 0.01
    starts = [w.start_seconds for w in result.words]
    assert starts == sorted(starts)
    assert result.sample_rate == 22_050
    assert 1.0 < result.duration_seconds < 4.0


def test_speed_pitch_volume_and_sample_rate(espeak):
    normal = say(espeak)
    fast = say(espeak, speed=2.0)
    quiet = say(espeak, volume=0.3)
    assert fast.duration_seconds < normal.duration_seconds * 0.7
    loud_rms = np.sqrt(np.mean(to_samples(normal.pcm).astype(float) ** 2))
    quiet_rms = np.sqrt(np.mean(to_samples(quiet.pcm).astype(float) ** 2))
    assert quiet_rms < loud_rms * 0.5
    resampled = say(espeak, sample_rate=16_000)
    assert resampled.sample_rate == 16_000
    assert resampled.duration_seconds == pytest.approx(normal.duration_seconds, rel=0.02)
    high = say(espeak, pitch=2.0)
    assert high.pcm != normal.pcm
    assert not normal.unapplied


def test_ssml_input(espeak):
    result = espeak.synthesize(
        SynthesisRequest(
            text='<speak>Good <prosody rate="slow">morning</prosody> everyone</speak>',
            voice_id="en-US",
            ssml=True,
        )
    )
    assert [w.text for w in result.words] == ["Good", "morning", "everyone"]


def test_unknown_voice_is_a_permanent_error(espeak):
    with pytest.raises(ProviderError) as caught:
        say(espeak, voice="xx-nope")
    assert caught.value.category is ErrorCategory.PERMANENT


def test_unlisted_variant_of_a_known_language_still_speaks(espeak):
    assert say(espeak, voice="de+f2").duration_seconds > 0.5


def test_a_variant_espeak_has_no_file_for_is_a_permanent_error(espeak):
    with pytest.raises(ProviderError) as caught:
        say(espeak, voice="de+no-such-variant")
    assert caught.value.category is ErrorCategory.PERMANENT


def test_speaking_a_variant_reads_no_variant_file(monkeypatch):
    # A cold instance's first speech checks the variant's name; parsing every variant's
    # file is for the voice list only.
    def unexpected(path):
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(espeak_module, "read_variant", unexpected)
    fresh = EspeakProvider(variant_languages=[])
    assert say(fresh, voice="en-US+f3").duration_seconds > 0.5
    with pytest.raises(ProviderError):
        say(fresh, voice="en-US+no-such-variant")


def test_a_first_speech_does_not_list_the_installed_languages(monkeypatch):
    # Listing them makes eSpeak read every voice file (2.5-3.4 ms of a cold instance's first
    # speech): a voice's file is found by its name in the data folder instead, and the
    # capabilities name no languages (the catalog's sync lists them, as for every provider).
    listed = []
    real = espeak_module._Engine.languages

    def counted(engine):
        listed.append(engine)
        return real(engine)

    monkeypatch.setattr(espeak_module._Engine, "languages", counted)
    fresh = EspeakProvider(variant_languages=[])
    assert fresh.capabilities.languages == ()
    assert say(fresh, voice="en-US").duration_seconds > 0.5
    assert say(fresh, voice="vi-VN-x-south+f3").duration_seconds > 0.5
    assert listed == []
    assert fresh.default_voice("fr") is not None
    assert fresh.default_voice("de") is not None
    assert len(listed) == 1  # listed once, when a language's default voice is asked for


def test_every_installed_voice_is_found_by_its_file_name():
    # The data folder's files, as eSpeak lists them: each catalog voice id names its file.
    fresh = EspeakProvider(variant_languages=[])
    with espeak_module._ENGINE_LOCK:
        listed = espeak_module._engine_locked().languages()
    assert len(listed) > 100
    for language in listed:
        assert fresh._espeak_name(language.voice_id) == language.identifier
    with pytest.raises(ProviderError):
        fresh._espeak_name("no-such-language")
    with pytest.raises(ProviderError):
        fresh._espeak_name("!v/f3")


def test_concurrent_calls_are_serialised_and_correct(espeak):
    texts = [f"Sentence number {i} is spoken here." for i in range(8)]
    results: dict[int, object] = {}

    def run(i: int) -> None:
        results[i] = say(espeak, texts[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, text in enumerate(texts):
        result = results[i]
        assert [w.text for w in result.words][:3] == ["Sentence", "number", str(i)]
        assert result.words[-1].char_end <= len(text)


def test_capabilities(espeak):
    caps = espeak.capabilities
    assert caps.ssml
    assert caps.timing == "word"
    assert not caps.multi_speaker
    assert {"speed", "pitch", "volume"} <= caps.native_controls
    assert "en-US" in {voice.language for voice in espeak.list_voices()}  # listed by the sync


def test_the_default_catalog_is_base_voices_plus_variants_of_five_major_languages():
    voices = EspeakProvider().list_voices()
    bases = [v for v in voices if "+" not in v.voice_id]
    variants = [v for v in voices if "+" in v.voice_id]
    assert {v.language for v in variants} == {"en-US", "en-GB", "es", "fr-FR", "de"}
    assert len(voices) < 1000
    assert len(bases) > 100
    everything = EspeakProvider(variant_languages=["*"]).list_voices()
    assert len(everything) > 10 * len(voices)
