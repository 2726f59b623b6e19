"""Piper, the embedded neural voice: catalog entry, word timings checked against the audio,
numbers and abbreviations mapped back to the written words, sentence streaming, foreign
scripts, and what happens when Piper or its voice file is missing or broken."""

from __future__ import annotations

import logging
import shutil
import sys
import threading
from pathlib import Path

import pytest

from shared.audio.timestamps import align_words
from shared.audio.timing import tokenize_words
from shared.errors import ConfigurationError
from shared.http import status_for
from shared.providers.base import (
    AudioSettings,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    UnsupportedTextError,
)
from shared.providers.config import ProvidersConfig
from shared.providers.espeak import EspeakProvider
from shared.providers.piper import PiperProvider
from shared.providers.piper_voices import PiperVoiceFiles, load_voice, packaged_voice
from shared.providers.registry import ProviderRegistry
from shared.providers.voices import Gender
from tests.support.signed_words import SIGNED_TEXT, SIGNED_WORDS
from tests.unit.providers.audio_measures import frame_levels, silences

VOICE = "en_US-joe-medium"


@pytest.fixture(scope="module")
def espeak() -> EspeakProvider:
    return EspeakProvider(variant_languages=[])


@pytest.fixture(scope="module")
def piper(espeak: EspeakProvider) -> PiperProvider:
    return PiperProvider.from_files([packaged_voice()], fallback=espeak)


def say(provider: TTSProvider, text: str, **settings: float) -> SynthesisResult:
    return provider.synthesize(
        SynthesisRequest(text=text, voice_id=VOICE, settings=AudioSettings(**settings))
    )


def test_catalog_entry_says_language_gender_rate_and_license(piper: PiperProvider) -> None:
    [voice] = piper.list_voices()
    assert voice.id == "piper:en_US-joe-medium"
    assert voice.language == "en-US"
    assert voice.gender is Gender.MALE
    assert voice.metadata["sampleRate"] == 22_050
    license_info = voice.metadata["license"]
    assert license_info["code"] == "GPL-3.0-or-later"
    assert license_info["commercialUse"] == "may be restricted"
    assert "lessac" in license_info["note"]
    assert "neural" in voice.tags
    caps = piper.capabilities
    assert caps.languages == ("en-US",)
    assert caps.sample_rates == (22_050,)
    assert caps.streaming


def test_default_voice_follows_the_language(piper: PiperProvider) -> None:
    assert piper.default_voice("en-US") == VOICE
    assert piper.default_voice("en-GB") == VOICE  # the same language, another region
    assert piper.default_voice("fr-FR") is None


def test_words_start_and_end_where_their_audio_is(piper: PiperProvider) -> None:
    # Every pause the audio holds falls at the punctuation, between two words: the word
    # before ends where the silence starts and the word after starts where it ends.
    text = "Good morning. Thank you, sir. Seven apples, please! Bring them home."
    result = say(piper, text)
    words = result.words
    assert [w.text for w in words] == [t.text for t in tokenize_words(text)]
    inner = [
        (start, end)
        for start, end in silences(result.pcm, result.sample_rate)
        if start > 0.05 and end < result.duration_seconds - 0.05
    ]
    assert len(inner) >= 4, "a pause at each sentence end and comma"
    for start, end in inner:
        before = [w for w in words if w.end_seconds <= end]
        after = [w for w in words if w.start_seconds >= start]
        assert before, (start, end)
        assert after, (start, end)
        assert before[-1].end_seconds == pytest.approx(start, abs=0.1)
        assert after[0].start_seconds == pytest.approx(end, abs=0.1)
    levels = frame_levels(result.pcm, result.sample_rate)
    for word in words:
        spoken = levels[int(word.start_seconds * 100) : int(word.end_seconds * 100)]
        assert spoken.max() > levels.max() - 20, f"{word.text} holds speech"


def test_numbers_and_abbreviations_map_back_to_the_written_words(piper: PiperProvider) -> None:
    text = "Dr. Smith paid $42.50 for 3 books on 12/25 at 10:30 a.m. in the USA."
    result = say(piper, text)
    timed = {w.text: w for w in result.words}
    assert [w.text for w in result.words] == [t.text for t in tokenize_words(text)]
    for word in result.words:
        assert text[word.char_start : word.char_end] == word.text
    length = {name: w.end_seconds - w.start_seconds for name, w in timed.items()}
    # "$42.50" is spoken as six words, "12/25" as three, "Dr" as "doctor".
    assert length["$42.50"] > 3 * length["paid"]
    assert length["12/25"] > 2 * length["on"]
    assert length["Dr"] > length["on"]
    assert timed["$42.50"].end_seconds <= timed["for"].start_seconds


def test_signs_written_on_a_word_are_timed_with_it(piper: PiperProvider) -> None:
    text = SIGNED_TEXT
    result = say(piper, text)

    assert [(w.text, w.char_start, w.char_end) for w in result.words] == SIGNED_WORDS
    length = {w.text: w.end_seconds - w.start_seconds for w in result.words}
    # "five dollars", "fifty percent", "C plus plus": each longer than "is".
    for word in ("$5", "50%", "C++"):
        assert length[word] > 2 * length["is"], word
    words = align_words(text, result.words, result.duration_seconds)
    assert [(w.text, w.char_start) for w in words] == [(w.text, w.char_start) for w in result.words]


def test_words_the_phonemizer_joins_get_their_own_times(piper: PiperProvider) -> None:
    # eSpeak says "of the" as one phoneme word; each written word still gets its part.
    result = say(piper, "A book of the year.")
    timed = {w.text: w for w in result.words}
    assert timed["of"].end_seconds == pytest.approx(timed["the"].start_seconds, abs=0.02)
    assert timed["of"].start_seconds < timed["of"].end_seconds
    assert timed["the"].start_seconds < timed["the"].end_seconds
    assert timed["A"].end_seconds <= timed["book"].start_seconds


def test_stream_yields_each_sentence_with_its_own_words(piper: PiperProvider) -> None:
    text = "First comes this. Then that one follows. Finally the end."
    request = SynthesisRequest(
        text=text, voice_id=VOICE, settings=AudioSettings(sample_rate=16_000)
    )
    pieces = list(piper.stream(request))
    assert [[w.text for w in piece.words] for piece in pieces] == [
        ["First", "comes", "this"],
        ["Then", "that", "one", "follows"],
        ["Finally", "the", "end"],
    ]
    for piece in pieces:
        assert piece.sample_rate == 16_000
        assert piece.words[-1].end_seconds <= piece.duration_seconds + 0.01


def test_stream_pcm_yields_each_sentence_as_its_own_piece(piper: PiperProvider) -> None:
    text = "First comes this. Then that one follows. Finally the end."
    request = SynthesisRequest(
        text=text, voice_id=VOICE, settings=AudioSettings(sample_rate=16_000), want_timings=False
    )
    assert piper.streams(request)
    assert not piper.streams(request.model_copy(update={"voice_id": "en_GB-nobody"}))
    pieces = list(piper.stream_pcm(request))
    assert len(pieces) == 3
    assert all(piece and len(piece) % 2 == 0 for piece in pieces)
    # Piper samples its phoneme durations, so two renderings differ a little in length.
    whole = piper.synthesize(request).pcm
    assert sum(len(piece) for piece in pieces) == pytest.approx(len(whole), rel=0.15)


def test_foreign_script_is_spoken_by_espeak_in_place(piper: PiperProvider) -> None:
    text = "Hello Привет мир, how are you?"
    result = say(piper, text)
    assert [w.text for w in result.words] == ["Hello", "Привет", "мир", "how", "are", "you"]
    for word in result.words:
        assert text[word.char_start : word.char_end] == word.text
    starts = [w.start_seconds for w in result.words]
    assert starts == sorted(starts)


def test_script_nobody_reads_is_a_400(espeak: EspeakProvider) -> None:
    runic = "Hello ᚠᚢᚦᚨᚱᚲ friends"
    with_espeak = PiperProvider.from_files([packaged_voice()], fallback=espeak)
    with pytest.raises(UnsupportedTextError, match="Runic") as caught:
        say(with_espeak, runic)
    assert status_for(caught.value) == 400
    alone = PiperProvider.from_files([packaged_voice()], fallback=None)
    with pytest.raises(UnsupportedTextError, match="Cyrillic"):
        say(alone, "Hello Привет")


@pytest.mark.parametrize("text", ["...", "—"])
def test_text_with_nothing_to_say_is_a_short_silence(piper: PiperProvider, text: str) -> None:
    result = say(piper, text)
    assert 0.1 < result.duration_seconds < 1.0
    assert result.words == ()


def test_raw_phoneme_markup_in_the_text_is_read_as_text(piper: PiperProvider) -> None:
    # Piper reads "[[ zzz ]]" as the phonemes /zzz/ (a short buzz); the platform reads what
    # the user wrote, here three letter names, as it does without the brackets.
    bracketed = {w.text: w for w in say(piper, "Say [[ zzz ]] now.").words}
    assert list(bracketed) == ["Say", "zzz", "now"]
    assert bracketed["zzz"].end_seconds - bracketed["zzz"].start_seconds > 0.4


def test_a_voice_loads_once_per_process(tmp_path: Path) -> None:
    files = _copy_of_packaged_voice(tmp_path)
    loaded: list[object] = []

    def load() -> None:
        loaded.append(load_voice(files))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 3
    assert all(voice is loaded[0] for voice in loaded)


# -- when Piper cannot speak ------------------------------------------------------------------


def registry_with(piper_voices: list[str]) -> ProviderRegistry:
    return ProviderRegistry(ProvidersConfig(enabled=["espeak", "piper"], piper_voices=piper_voices))


def test_missing_voice_file_is_logged_once_and_espeak_becomes_the_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "nowhere" / "voice.onnx"
    registry = registry_with([str(missing)])
    assert registry.default_voice("en-US") == "espeak:en-US"
    with caplog.at_level(logging.WARNING, logger="shared.providers.registry"):
        problems = registry.check()
        with pytest.raises(ConfigurationError, match="does not exist"):
            registry.get("piper")
    assert list(problems) == ["piper"]
    assert str(missing) in problems["piper"]
    assert registry.default_voice("en-US") == "espeak:en-US"
    assert registry.default_voice("en-US", fallback="espeak:en-US+f3") == "espeak:en-US+f3"
    assert (
        registry.get("espeak")
        .synthesize(SynthesisRequest(text="Still speaking.", voice_id="en-US"))
        .duration_seconds
        > 0.3
    )
    lines = [r.getMessage() for r in caplog.records if "piper" in r.getMessage()]
    assert len(lines) <= 1  # the default_voice call before caplog may have logged it


def test_missing_voice_is_logged_with_its_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "voice.onnx"
    with caplog.at_level(logging.WARNING, logger="shared.providers.registry"):
        assert registry_with([str(missing)]).check() != {}
    [line] = [r.getMessage() for r in caplog.records]
    assert "Voice provider piper is unavailable" in line
    assert str(missing) in line


def test_corrupt_voice_file_is_a_configuration_error(tmp_path: Path) -> None:
    files = _copy_of_packaged_voice(tmp_path)
    files.model.write_bytes(b"this is not an onnx model" * 100)
    registry = registry_with([str(files.model)])
    problems = registry.check()
    assert "corrupt" in problems["piper"]
    assert registry.default_voice("en-US") == "espeak:en-US"


def test_readiness_tells_a_missing_voice_file_without_building_piper(tmp_path: Path) -> None:
    files = _copy_of_packaged_voice(tmp_path)
    files.config.unlink()
    registry = registry_with([str(files.model)])
    assert not registry.is_ready("piper")
    assert registry.default_order() == ["espeak"]
    files.model.unlink()
    assert not registry_with([str(files.model)]).is_ready("piper")


def test_readiness_does_not_load_the_voice_and_a_failed_load_makes_it_unready(
    tmp_path: Path,
) -> None:
    # A corrupt model shows only when loaded: being ready before that proves no load ran.
    files = _copy_of_packaged_voice(tmp_path)
    files.model.write_bytes(b"this is not an onnx model" * 100)
    registry = registry_with([str(files.model)])
    assert registry.is_ready("piper")
    assert registry.default_order() == ["piper", "espeak"]
    with pytest.raises(ConfigurationError, match="corrupt"):
        registry.get("piper")
    assert not registry.is_ready("piper")
    assert registry.default_order() == ["espeak"]


def test_readiness_of_a_healthy_voice_matches_its_build(tmp_path: Path) -> None:
    registry = registry_with([str(_copy_of_packaged_voice(tmp_path).model)])
    assert registry.is_ready("piper")
    assert registry.get("piper").default_voice("en-US") == VOICE
    assert registry.is_ready("piper")


def test_a_passed_readiness_check_is_not_repeated_and_a_file_gone_later_fails_the_load(
    tmp_path: Path,
) -> None:
    files = _copy_of_packaged_voice(tmp_path)
    registry = registry_with([str(files.model)])
    assert registry.is_ready("piper")
    files.config.unlink()
    # Remembered: choosing a default voice does not look at the files again...
    assert registry.default_order() == ["piper", "espeak"]
    # ...and the load, which does, fails and is remembered in turn.
    with pytest.raises(ConfigurationError, match="does not exist"):
        registry.get("piper")
    assert not registry.is_ready("piper")
    assert registry.default_order() == ["espeak"]


def test_readiness_without_piper_installed_is_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _copy_of_packaged_voice(tmp_path)
    monkeypatch.setitem(sys.modules, "piper", None)  # what Python does for a missing package
    assert not registry_with([str(files.model)]).is_ready("piper")


def test_piper_not_installed_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _copy_of_packaged_voice(tmp_path)
    monkeypatch.setitem(sys.modules, "piper", None)  # what Python does for a missing package
    with pytest.raises(ConfigurationError, match="piper-tts is not installed"):
        load_voice(files)


def test_healthy_piper_is_the_english_default_and_a_setting_turns_it_off() -> None:
    registry = ProviderRegistry(ProvidersConfig(enabled=["espeak", "piper"]))
    assert registry.check() == {}
    assert registry.default_voice("en-US") == f"piper:{VOICE}"
    assert registry.default_voice("en-US", fallback="espeak:en-US+f3") == f"piper:{VOICE}"
    assert registry.default_voice("fr-FR") == "espeak:fr"
    assert registry.default_voice("xx") is None
    espeak_first = ProviderRegistry(
        ProvidersConfig(enabled=["espeak", "piper"], default_voice_providers=["espeak"])
    )
    assert espeak_first.default_voice("en-US") == "espeak:en-US"
    assert espeak_first.default_voice("en", fallback="espeak:en-US+f3") == "espeak:en-US+f3"


def _copy_of_packaged_voice(folder: Path) -> PiperVoiceFiles:
    source = packaged_voice()
    model = folder / source.model.name
    shutil.copyfile(source.model, model)
    shutil.copyfile(source.config, f"{model}.json")
    return PiperVoiceFiles.beside(model)
