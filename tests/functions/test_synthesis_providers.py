"""Synthesis with cloud providers through their local fake servers (real adapters, the
APIs' wire formats): ElevenLabs character alignment and Google SSML marks become word
timestamps for every word, and the PCM they send is encoded to any format. Piper, the
embedded neural voice, goes through the same functions: its phoneme alignments time every
written word, eSpeak's phonemes its syllables, and a missing voice file leaves it listed
unhealthy while eSpeak speaks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials

from shared.audio.encode import decode_duration
from shared.bootstrap import get_container
from shared.catalog.repository import VoiceRepository
from shared.providers.base import TTSProvider
from shared.providers.config import ProvidersConfig
from shared.providers.elevenlabs import ElevenLabsProvider
from shared.providers.espeak import EspeakProvider
from shared.providers.gcp import GoogleTTSProvider
from shared.providers.piper import PiperProvider
from shared.providers.piper_voices import packaged_voice
from shared.providers.registry import ProviderRegistry
from shared.providers.voices import VoiceProfile
from shared.synthesis import voices as voices_module
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import fetch
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import ELEVENLABS_KEY, SECONDS_PER_CHAR, elevenlabs_app, gcp_app

ann = fx.ann
TEXT = "Cloud voices time every word, even hyphenated well-known ones."


def elevenlabs(url: str) -> TTSProvider:
    return ElevenLabsProvider(
        api_key=ELEVENLABS_KEY, base_url=url, model_id="eleven_multilingual_v2"
    )


def gcp(url: str) -> TTSProvider:
    return GoogleTTSProvider(
        endpoint=url, transport="rest", credentials=AnonymousCredentials(), timeout=5
    )


@pytest.fixture(params=["elevenlabs", "gcp"])
def cloud(request: pytest.FixtureRequest, platform: Any) -> Iterator[TTSProvider]:
    app, build = {"elevenlabs": (elevenlabs_app(), elevenlabs), "gcp": (gcp_app, gcp)}[
        request.param
    ]
    with FakeHttpServer(app) as server:
        provider = build(server.url)
        container = get_container()
        container.use_provider_registry(ProviderRegistry.of([provider]))
        VoiceRepository(container.store).upsert(provider.list_voices())
        yield provider
        provider.close()


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg_opus"])
def test_cloud_voice_words_are_timed_from_provider_events(cloud, function_client, ann, fmt):
    voice = next(v for v in cloud.list_voices() if v.language.startswith("en"))
    response = function_client("synthesis").post(
        "/synthesize", json={"text": TEXT, "voice": voice.id, "outputFormat": fmt}, headers=ann
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["provider"] == cloud.name
    # The fakes speak 60 ms per character of what they were sent.
    assert body["duration"] == pytest.approx(len(TEXT) * SECONDS_PER_CHAR, rel=0.1)
    data = fetch(body["downloadUrl"])
    assert decode_duration(data, fmt) == pytest.approx(body["duration"], abs=0.03)
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == [w.strip(",.") for w in TEXT.split()]
    previous = 0.0
    for word in words:
        assert previous <= word["start"] <= word["end"] <= body["duration"]
        previous = word["end"]
    # A word starts about where its first character is spoken (60 ms per character in
    # the fakes; their alignment and mark events say so, and the alignment keeps it).
    position = 0
    for word in words:
        position = TEXT.index(word["text"], position)
        assert word["start"] == pytest.approx(position * SECONDS_PER_CHAR, abs=0.35)
        position += len(word["text"])


def test_google_speaks_a_text_whose_word_marks_exceed_its_5000_bytes(
    platform, function_client, ann
):
    # 1,600 characters fit Google's 5,000 bytes, but not with a <mark> before every word.
    text = " ".join(f"Sentence {n} is short." for n in range(75))
    with FakeHttpServer(gcp_app) as server:
        provider = gcp(server.url)
        container = get_container()
        container.use_provider_registry(ProviderRegistry.of([provider]))
        VoiceRepository(container.store).upsert(provider.list_voices())
        response = function_client("synthesis").post(
            "/synthesize",
            json={"text": text, "voice": "gcp:en-US-Neural2-C", "outputFormat": "wav"},
            headers=ann,
        )
        sent = [r.json()["input"]["ssml"] for r in server.requests if r.method == "POST"]
        provider.close()
    assert response.status_code == 200, response.get_json()
    assert len(sent) > 1
    assert all(len(ssml.encode()) <= 5_000 for ssml in sent)
    words = response.get_json()["timestamps"]["words"]
    assert len(words) == len(text.split())


def test_elevenlabs_speaks_a_dialogue_natively_with_each_speakers_words(
    platform, function_client, ann
):
    with FakeHttpServer(elevenlabs_app()) as server:
        provider = elevenlabs(server.url)
        container = get_container()
        container.use_provider_registry(ProviderRegistry.of([provider]))
        listed = provider.list_voices()
        VoiceRepository(container.store).upsert(listed)
        first, second = listed[0], listed[1]
        turns = [
            {"speaker": "Ann", "voice": first.id, "text": "Hello there, Bob."},
            {"speaker": "Bob", "voice": second.id, "text": "Hi Ann!"},
        ]
        response = function_client("synthesis").post(
            "/synthesize/dialogue",
            json={"turns": turns, "mode": "native", "includeTimestamps": True},
            headers=ann,
        )
        provider.close()
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["mode"], body["fallbackReason"]) == ("native", None)
    spoken = len("Hello there, Bob.") + len("Hi Ann!")
    assert body["duration"] == pytest.approx(spoken * SECONDS_PER_CHAR, rel=0.05)
    words = body["timestamps"]["words"]
    assert [(w["text"], w["speaker"], w["turnIndex"]) for w in words] == [
        ("Hello", "Ann", 0),
        ("there", "Ann", 0),
        ("Bob", "Ann", 0),
        ("Hi", "Bob", 1),
        ("Ann", "Bob", 1),
    ]
    # "Hi" is spoken right after the 17 characters of the first turn (60 ms each).
    assert words[3]["start"] == pytest.approx(17 * SECONDS_PER_CHAR, abs=0.01)
    previous = 0.0
    for word in words:
        assert previous <= word["start"] <= word["end"] <= body["duration"]
        previous = word["end"]


def test_google_speaks_a_dialogue_natively_with_one_multispeaker_voice(
    platform, function_client, ann
):
    with FakeHttpServer(gcp_app) as server:
        provider = gcp(server.url)
        container = get_container()
        container.use_provider_registry(ProviderRegistry.of([provider]))
        listed = provider.list_voices()
        VoiceRepository(container.store).upsert(listed)
        multi = next(v for v in listed if v.supports_multi_speaker)
        single = next(v for v in listed if not v.supports_multi_speaker)
        turns = [
            {"speaker": "Ann", "voice": multi.id, "text": "Hello there, Bob."},
            {"speaker": "Bob", "voice": multi.id, "text": "Hi Ann!"},
            {"speaker": "Ann", "voice": multi.id, "text": "Bye."},
        ]
        client = function_client("synthesis")
        native = client.post(
            "/synthesize/dialogue",
            json={"turns": turns, "mode": "native", "includeTimestamps": True},
            headers=ann,
        )
        mixed = client.post(
            "/synthesize/dialogue",
            json={
                "turns": [turns[0], {**turns[1], "voice": single.id}],
                "mode": "native",
                "includeTimestamps": True,
            },
            headers=ann,
        )
        provider.close()
    assert native.status_code == 200, native.get_json()
    body = native.get_json()
    assert (body["mode"], body["fallbackReason"]) == ("native", None)
    spoken = len("Hello there, Bob.") + len("Hi Ann!") + len("Bye.")
    assert body["duration"] == pytest.approx(spoken * SECONDS_PER_CHAR, rel=0.05)
    words = body["timestamps"]["words"]
    assert [(w["text"], w["speaker"], w["turnIndex"]) for w in words] == [
        ("Hello", "Ann", 0),
        ("there", "Ann", 0),
        ("Bob", "Ann", 0),
        ("Hi", "Bob", 1),
        ("Ann", "Bob", 1),
        ("Bye", "Ann", 2),
    ]
    # A turn with another Google voice cannot share the call: segmented, and said so.
    assert mixed.status_code == 200, mixed.get_json()
    assert mixed.get_json()["mode"] == "segmented"
    assert "MultiSpeaker" in mixed.get_json()["fallbackReason"]


# -- Piper, the embedded neural voice, through the same functions ------------------------------

PIPER_TEXT = "Dr. Smith reads 42 pages of the riverbank story every evening."


@pytest.fixture
def piper(platform: Any) -> TTSProvider:
    """Piper and eSpeak (its fallback, and the syllables' phonemizer) in the registry."""
    espeak = EspeakProvider(variant_languages=["en-us"])
    provider = PiperProvider.from_files([packaged_voice()], fallback=espeak)
    container = get_container()
    # In VOICE_PROVIDERS' default order: eSpeak first, Piper the default voice all the same.
    container.use_provider_registry(ProviderRegistry.of([espeak, provider]))
    VoiceRepository(container.store).upsert([*provider.list_voices(), *espeak.list_voices()])
    return provider


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg_opus"])
def test_piper_voice_times_every_written_word_and_syllable(piper, function_client, ann, fmt):
    response = function_client("synthesis").post(
        "/synthesize",
        json={"text": PIPER_TEXT, "voice": "piper:en_US-joe-medium", "outputFormat": fmt},
        headers=ann,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["provider"] == "piper"
    assert decode_duration(fetch(body["downloadUrl"]), fmt) == pytest.approx(
        body["duration"], abs=0.03
    )
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == [w.strip(".") for w in PIPER_TEXT.split()]
    previous = 0.0
    for word in words:
        assert previous <= word["start"] < word["end"] <= body["duration"]
        previous = word["end"]
    # "42" is spoken as "forty-two", longer than "of"; syllables come from eSpeak's
    # phonemes as for every provider: "riverbank" has three.
    spans = {w["text"]: w["end"] - w["start"] for w in words}
    assert spans["42"] > spans["of"]
    syllables = body["timestamps"]["syllables"]
    river = [s["text"] for s in syllables if s["wordIndex"] == 7]
    assert "".join(river) == "riverbank"
    assert len(river) == 3


def test_dialogue_mixes_the_neural_voice_and_espeak(piper, function_client, ann):
    turns = [
        {"speaker": "Ann", "voice": "piper:en_US-joe-medium", "text": "Hello there, Bob."},
        {"speaker": "Bob", "voice": "espeak:en-US", "text": "Hi Ann!"},
    ]
    response = function_client("synthesis").post(
        "/synthesize/dialogue", json={"turns": turns, "includeTimestamps": True}, headers=ann
    )
    assert response.status_code == 200, response.get_json()
    words = response.get_json()["timestamps"]["words"]
    assert [(w["text"], w["speaker"]) for w in words] == [
        ("Hello", "Ann"),
        ("there", "Ann"),
        ("Bob", "Ann"),
        ("Hi", "Bob"),
        ("Ann", "Bob"),
    ]


def test_text_in_a_script_no_voice_reads_is_a_400(piper, function_client, ann):
    response = function_client("synthesis").post(
        "/synthesize",
        json={"text": "Hello ᚠᚢᚦᚨᚱᚲ friends", "voice": "piper:en_US-joe-medium"},
        headers=ann,
    )
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] == "UNSUPPORTED_TEXT"


@pytest.mark.parametrize("route", ["/synthesize", "/synthesize/stream"])
def test_ssml_to_a_voice_whose_provider_takes_none_is_a_400_naming_it(
    piper, function_client, ann, route
):
    # "en-US" names the neural voice, whose provider takes plain text only: the client
    # must change the voice (or send text), which a 502 (the provider failed) hides.
    response = function_client("synthesis").post(
        route,
        json={"ssml": "<speak>Hello <break time='1s'/> there.</speak>", "voice": "en-US"},
        headers=ann,
    )
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["code"] == "UNSUPPORTED_TEXT"
    assert "piper:en_US-joe-medium" in body["error"]
    assert "SSML" in body["error"]


def test_a_missing_piper_voice_shows_in_the_providers_summary_and_espeak_speaks(
    platform, function_client, ann, tmp_path
):
    container = get_container()
    missing = tmp_path / "gone.onnx"
    registry = ProviderRegistry(
        ProvidersConfig(enabled=["espeak", "piper"], piper_voices=[str(missing)])
    )
    container.use_provider_registry(registry)
    VoiceRepository(container.store).upsert(EspeakProvider(variant_languages=[]).list_voices())
    summary = function_client("voices").get("/voices/providers", headers=ann)
    assert summary.status_code == 200, summary.get_json()
    providers = {p["name"]: p for p in summary.get_json()["providers"]}
    assert str(missing) in providers["piper"]["capabilities"]["error"]
    assert providers["espeak"]["capabilities"]["timing"] == "word"
    assert registry.default_voice("en-US") == "espeak:en-US"
    response = function_client("synthesis").post(
        "/synthesize", json={"text": "Still speaking.", "voice": "espeak:en-US"}, headers=ann
    )
    assert response.status_code == 200, response.get_json()
    # A request naming only its language falls back to eSpeak, with one warning logged.
    default = speak_as(function_client, ann, "en-US")
    assert default["voice"] == "espeak:en-US"


def speak_as(function_client: Any, ann: dict[str, str], voice: str) -> dict[str, Any]:
    response = function_client("synthesis").post(
        "/synthesize",
        json={"text": "Which voice is this?", "voice": voice, "includeTimestamps": False},
        headers=ann,
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(
    ("name", "speaks"),
    [
        ("en-US", "piper:en_US-joe-medium"),  # English naming no voice: the neural voice
        ("en", "piper:en_US-joe-medium"),
        ("en-GB", "piper:en_US-joe-medium"),  # Piper's English voice before eSpeak's en-GB
        ("alloy", "piper:en_US-joe-medium"),  # OpenAI's names too
        ("fable", "piper:en_US-joe-medium"),
        ("fr", "espeak:fr"),  # no neural voice speaks French
        ("espeak:en-US+f3", "espeak:en-US+f3"),  # a named voice is never replaced
    ],
)
def test_english_without_a_named_voice_speaks_with_the_neural_voice(
    piper, function_client, ann, name, speaks
):
    assert speak_as(function_client, ann, name)["voice"] == speaks


def test_the_openai_route_speaks_its_voice_names_with_the_neural_voice(piper, function_client, ann):
    response = function_client("openai_speech").post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Neural by default.", "voice": "nova"},
        headers=ann,
    )
    assert response.status_code == 200, response.get_data()
    assert response.headers["X-Voice"] == "piper:en_US-joe-medium"
    listed = function_client("openai_speech").get("/v1/audio/voices", headers=ann)
    voices = {voice["id"]: voice["voice"] for voice in listed.get_json()["voices"]}
    assert voices["nova"] == voices["alloy"] == "piper:en_US-joe-medium"


def test_the_openai_voice_list_looks_each_languages_default_voice_up_once(
    piper, function_client, ann, monkeypatch
):
    # Ten names map to American voices and one (fable) to a British one: the list is two
    # lookups of a default voice, not eleven (each is catalog queries, Firestore reads).
    looked_up: list[str] = []
    choose = voices_module.default_voice_for_language

    def counted(language: str, **kwargs):
        looked_up.append(language)
        return choose(language, **kwargs)

    monkeypatch.setattr(voices_module, "default_voice_for_language", counted)
    listed = function_client("openai_speech").get("/v1/audio/voices", headers=ann)
    assert listed.status_code == 200
    assert len(listed.get_json()["voices"]) == 11
    assert sorted(looked_up) == ["en-GB-x-rp", "en-US"]


@pytest.mark.parametrize("order", [["espeak"], ["espeak", "piper"]])
def test_the_default_voice_providers_setting_turns_the_neural_default_off(
    platform, function_client, ann, order
):
    container = get_container()
    espeak = EspeakProvider(variant_languages=["en-us"])
    piper = PiperProvider.from_files([packaged_voice()], fallback=espeak)
    registry = ProviderRegistry(
        ProvidersConfig(enabled=["espeak", "piper"], default_voice_providers=order),
        factories={"espeak": lambda _: espeak, "piper": lambda _: piper},
    )
    container.use_provider_registry(registry)
    VoiceRepository(container.store).upsert([*piper.list_voices(), *espeak.list_voices()])
    assert speak_as(function_client, ann, "en-US")["voice"] == "espeak:en-US"
    assert speak_as(function_client, ann, "alloy")["voice"] == "espeak:en-US+f3"
    assert speak_as(function_client, ann, "piper:en_US-joe-medium")["provider"] == "piper"


def test_a_piper_voice_that_fails_to_load_leaves_english_to_espeak_with_one_log_line(
    platform, function_client, ann, tmp_path, caplog
):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    (tmp_path / "corrupt.onnx.json").write_text("{}")
    container = get_container()
    registry = ProviderRegistry(
        ProvidersConfig(enabled=["espeak", "piper"], piper_voices=[str(corrupt)])
    )
    container.use_provider_registry(registry)
    # Its voice is still in the catalog (listed while the file was sound): choosing the
    # English default finds Piper ready (its files are there), and loading it fails.
    listed = VoiceProfile.model_validate(
        {"provider": "piper", "voice_id": "corrupt", "display_name": "Corrupt", "language": "en-US"}
    )
    VoiceRepository(container.store).upsert(
        [*EspeakProvider(variant_languages=["en-us"]).list_voices(), listed]
    )
    with caplog.at_level("WARNING", logger="shared.providers.registry"):
        assert speak_as(function_client, ann, "en-US")["voice"] == "espeak:en-US"
        assert speak_as(function_client, ann, "nova")["voice"] == "espeak:en-US+f1"
    warnings = [r for r in caplog.records if "piper is unavailable" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
