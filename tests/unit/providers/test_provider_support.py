"""The pieces every adapter shares: timing helpers, label normalisation, config, registry."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from pydantic import ValidationError

from shared.audio.pcm import decode_audio, resample, scale_volume, to_samples
from shared.audio.syllables import syllable_timestamps
from shared.audio.timestamps import align_words
from shared.audio.timing import tokenize_words, words_from_characters, words_from_marks
from shared.errors import ConfigurationError
from shared.providers.base import AudioSettings, ErrorCategory, SynthesisRequest, provider_error
from shared.providers.config import ProvidersConfig
from shared.providers.labels import (
    age_group_from,
    age_group_from_years,
    gender_from,
    use_cases_from,
)
from shared.providers.registry import READINESS, ProviderRegistry
from shared.providers.voices import AgeGroup, Gender
from tests.support.fake_provider import FakeProvider
from tests.support.fake_tts_servers import tone, wav_bytes


def test_tokenize_trims_edge_punctuation_and_keeps_offsets():
    text = '"Hello," she said — (twice)!'
    tokens = tokenize_words(text)
    assert [t.text for t in tokens] == ["Hello", "she", "said", "twice"]
    assert all(text[t.start : t.end] == t.text for t in tokens)


def test_character_alignment_groups_words_and_maps_to_text():
    text = "Hi  there!"
    chars = list(text)
    starts = [0.1 * i for i in range(len(chars))]
    ends = [0.1 * (i + 1) for i in range(len(chars))]
    words = words_from_characters(text, chars, starts, ends)
    assert [(w.text, w.char_start, w.char_end) for w in words] == [("Hi", 0, 2), ("there", 4, 9)]
    assert words[1].start_seconds == pytest.approx(0.4)
    assert words[1].end_seconds == pytest.approx(0.9)


def test_character_alignment_keeps_signs_and_drops_sentence_punctuation():
    # As tokenize_words cuts them: "($5)" is the word "$5", a lone "&" no word.
    text = "Pay ($5) & 50%, C#!"
    chars = list(text)
    words = words_from_characters(text, chars, [0.0] * len(chars), [0.1] * len(chars))
    assert [(w.text, w.char_start, w.char_end) for w in words] == [
        (t.text, t.start, t.end) for t in tokenize_words(text)
    ]
    assert [w.text for w in words] == ["Pay", "$5", "50%", "C#"]


def test_character_alignment_times_chinese_character_by_character():
    # No spaces part Chinese: each character keeps its own time (their words, the clauses,
    # and their syllables take them), not the whole run's shared by length.
    text = "你好\uff0c世界\u3002"  # a fullwidth comma and an ideographic full stop
    starts = [0.0, 0.1, 0.5, 0.6, 0.7, 1.2]
    ends = [0.1, 0.5, 0.6, 0.7, 1.2, 1.3]

    timings = words_from_characters(text, list(text), starts, ends)

    assert [(w.text, w.char_start, w.char_end) for w in timings] == [
        ("你", 0, 1),
        ("好", 1, 2),
        ("世", 3, 4),
        ("界", 4, 5),
    ]
    words = align_words(text, timings, duration=1.3)
    assert [(w.text, w.start, w.end) for w in words] == [("你好", 0.0, 0.5), ("世界", 0.6, 1.2)]
    syllables = syllable_timestamps(words, "zh")
    assert [(s.text, s.start, s.end) for s in syllables] == [
        ("你", 0.0, 0.1),
        ("好", 0.1, 0.5),
        ("世", 0.6, 0.7),
        ("界", 0.7, 1.2),
    ]


def test_character_alignment_times_japanese_kana_and_kanji_character_by_character():
    text = "こんにちは、世界"  # hiragana, an ideographic comma, kanji
    starts = [0.0, 0.1, 0.3, 0.4, 0.5, 0.8, 0.9, 1.0]
    ends = [*starts[1:], 1.4]

    timings = words_from_characters(text, list(text), starts, ends)

    assert [(w.text, w.start_seconds) for w in timings] == [
        (c, s) for c, s in zip(text, starts, strict=True) if c != "\u3001"
    ]
    words = align_words(text, timings, duration=1.4)
    assert [(w.text, w.start, w.end) for w in words] == [
        ("こんにちは", 0.0, 0.8),
        ("世界", 0.9, 1.4),
    ]
    syllables = syllable_timestamps(words, "ja")
    assert [(s.text, s.start) for s in syllables][:3] == [("こ", 0.0), ("ん", 0.1), ("に", 0.3)]


def test_character_alignment_of_normalised_text_keeps_what_it_can_place():
    # The provider spoke "twenty" for "20": those characters are not in the text.
    words = words_from_characters("I am 20", list("I am twenty"), [0.0] * 11, [0.1] * 11)
    assert [w.text for w in words] == ["I", "am", "twenty"]
    assert (words[0].char_start, words[0].char_end) == (0, 1)
    assert words[2].char_start is None


def test_character_alignment_with_mismatched_lists_is_refused():
    with pytest.raises(ValueError, match="length"):
        words_from_characters("ab", ["a", "b"], [0.0], [0.1, 0.2])


def test_marks_give_each_word_until_the_next():
    tokens = tokenize_words("one two three")
    words = words_from_marks(tokens, [0.0, 0.5, 0.9], 1.4)
    assert [(w.start_seconds, w.end_seconds) for w in words] == [(0.0, 0.5), (0.5, 0.9), (0.9, 1.4)]


@pytest.mark.parametrize(
    ("label", "gender"),
    [
        ("Female", Gender.FEMALE),
        ("MALE", Gender.MALE),
        ("non-binary", Gender.NEUTRAL),
        ("robot", None),
        (None, None),
    ],
)
def test_gender_labels(label, gender):
    assert gender_from(label) is gender


@pytest.mark.parametrize(
    ("label", "age"),
    [
        ("middle aged", AgeGroup.ADULT),
        ("middle_aged", AgeGroup.ADULT),
        ("YoungAdult", AgeGroup.YOUNG),
        ("old", AgeGroup.SENIOR),
        ("Child", AgeGroup.CHILD),
        ("ageless", None),
    ],
)
def test_age_labels(label, age):
    assert age_group_from(label) is age


def test_age_in_years():
    assert [age_group_from_years(y) for y in (0, 8, 25, 45, 70)] == [
        None,
        AgeGroup.CHILD,
        AgeGroup.YOUNG,
        AgeGroup.ADULT,
        AgeGroup.SENIOR,
    ]


def test_use_case_synonyms_fold_together():
    assert use_cases_from(["Chat", "conversational", "CustomerService", "E-learning", None]) == (
        "conversation",
        "customer_service",
        "education",
    )


def test_audio_settings_are_bounded():
    with pytest.raises(ValidationError):
        AudioSettings(speed=10)
    with pytest.raises(ValidationError):
        AudioSettings(sample_rate=4000)
    with pytest.raises(ValidationError):
        SynthesisRequest(text="   ", voice_id="v")
    assert AudioSettings(pitch=1.2, volume=0.5).changed_controls() == ["pitch", "volume"]


def test_provider_errors_pick_their_http_class():
    unavailable = provider_error("gcp", ErrorCategory.RATE_LIMITED, "slow down", retry_after=3)
    rejected = provider_error("gcp", ErrorCategory.AUTH, "bad key")
    assert unavailable.code == "PROVIDER_UNAVAILABLE"
    assert unavailable.retryable
    assert rejected.code == "PROVIDER_REJECTED"
    assert not rejected.retryable


def test_pcm_helpers():
    pcm = tone(0.5, 24_000)
    assert len(resample(pcm, 24_000, 16_000)) == pytest.approx(len(pcm) * 2 / 3, abs=4)
    louder = to_samples(scale_volume(pcm, 10.0))
    assert louder.max() == 32767, "clipped, not wrapped"
    decoded, rate = decode_audio(wav_bytes(pcm, 24_000))
    assert rate == 24_000
    assert decoded == pcm
    with pytest.raises(ValueError, match="not a readable audio file"):
        decode_audio(b"not audio at all")
    assert np.array_equal(to_samples(scale_volume(pcm, 1.0)), to_samples(pcm))


# -- configuration and registry ---------------------------------------------------------------


class FakeSettings:
    providers = "espeak, ElevenLabs ,azure"
    elevenlabs_api_key = None
    azure_speech_key = None
    azure_speech_region = "westeurope"

    def __init__(self, **values: object) -> None:
        for key, value in values.items():
            setattr(self, key, value)


def test_config_from_settings_parses_the_list_and_keeps_secrets_secret(caplog):
    from pydantic import SecretStr

    config = ProvidersConfig.from_settings(
        FakeSettings(elevenlabs_api_key=SecretStr("xi-super-secret"))
    )
    assert config.enabled == ["espeak", "elevenlabs", "azure"]
    assert config.azure_region == "westeurope"
    assert "xi-super-secret" not in repr(config) + str(config) + str(vars(config))
    registry = ProviderRegistry(config)
    provider = registry.get("elevenlabs")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("built %r", provider)
    assert "xi-super-secret" not in caplog.text


def test_unknown_provider_names_are_refused():
    with pytest.raises(ConfigurationError, match="unknown voice providers"):
        ProvidersConfig(enabled=["espeak", "watson"])


@pytest.mark.parametrize("timeout", [0, -1, 601, "30", True, float("nan")])
def test_a_provider_timeout_out_of_range_is_refused(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        ProvidersConfig(timeout_seconds=timeout)  # type: ignore[arg-type]


def test_enabled_provider_without_its_key_is_a_configuration_error():
    registry = ProviderRegistry(ProvidersConfig.from_settings(FakeSettings()))
    with pytest.raises(ConfigurationError, match="VOICE_AZURE_SPEECH_KEY"):
        registry.get("azure")


def test_registry_builds_each_provider_once_and_only_when_enabled():
    built = []

    def factory(config):
        built.append(1)
        return FakeProvider("espeak")

    registry = ProviderRegistry(ProvidersConfig(enabled=["espeak"]), factories={"espeak": factory})
    assert registry.get("espeak") is registry.get("espeak")
    assert built == [1]
    from shared.providers.base import UnknownProviderError

    with pytest.raises(UnknownProviderError):
        registry.get("gcp")


def test_a_slow_build_holds_up_only_its_own_provider() -> None:
    entered, release = threading.Event(), threading.Event()
    built: list[str] = []

    def slow(config: ProvidersConfig) -> FakeProvider:
        built.append("slow")
        entered.set()
        release.wait(timeout=30)
        return FakeProvider("slow")

    registry = ProviderRegistry(
        ProvidersConfig(enabled=["espeak", "piper"]),
        factories={"piper": slow, "espeak": lambda config: FakeProvider("espeak")},
    )
    results: dict[str, object] = {}
    loaders = [
        threading.Thread(target=lambda i=i: results.setdefault(f"piper{i}", registry.get("piper")))
        for i in range(2)
    ]
    for loader in loaders:
        loader.start()
    assert entered.wait(timeout=30)
    other = threading.Thread(target=lambda: results.setdefault("espeak", registry.get("espeak")))
    other.start()
    other.join(timeout=30)
    finished_while_blocked = not other.is_alive()
    release.set()
    for loader in loaders:
        loader.join(timeout=30)
    assert finished_while_blocked, "eSpeak waited for another provider's build"
    assert built == ["slow"]
    assert results["piper0"] is results["piper1"]


def test_config_defaults_to_the_embedded_providers_and_reads_piper_settings() -> None:
    assert ProvidersConfig().enabled == ["espeak", "piper"]
    assert ProvidersConfig().default_voice_providers == ["piper", "espeak"]
    config = ProvidersConfig.from_settings(
        FakeSettings(
            providers="espeak,piper",
            piper_voices=" /Voices/A.onnx, /voices/b.onnx ,",
            default_voice_providers="Espeak",
        )
    )
    assert config.piper_voices == ["/Voices/A.onnx", "/voices/b.onnx"]
    assert config.default_voice_providers == ["espeak"]
    with pytest.raises(ConfigurationError, match="unknown voice providers"):
        ProvidersConfig(default_voice_providers=["watson"])


def test_espeak_is_ready_without_being_built_and_unready_without_its_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path
):
    import espeakng_loader  # the package the readiness check looks at

    built: list[str] = []

    def espeak(config: ProvidersConfig) -> FakeProvider:
        built.append("espeak")
        return FakeProvider(name="espeak")

    config = ProvidersConfig(enabled=["espeak"], default_voice_providers=["espeak"])
    registry = ProviderRegistry(config, factories={"espeak": espeak}, readiness=READINESS)
    assert registry.is_ready("espeak")
    assert registry.default_order() == ["espeak"]
    assert built == []  # choosing a default voice does not load eSpeak NG

    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: str(tmp_path / "gone.so"))
    broken = ProviderRegistry(config, factories={"espeak": espeak}, readiness=READINESS)
    assert not broken.is_ready("espeak")
    assert broken.default_order() == []
    assert built == []
