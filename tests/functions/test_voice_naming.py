"""One voice naming on every route, and how a voice model's voice and settings become audio.

``/synthesize``, ``/synthesize/dialogue``, ``/v1/audio/speech`` (see
``test_openai_speech``) and a voice model's ``metadata.voiceId`` accept the same names:
catalog ids in any case, OpenAI voice names, language tags (that language's default
voice) and voice model ids. Real functions, real tokens, the real eSpeak engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.bootstrap import get_container
from shared.catalog.repository import VoiceRepository
from shared.providers.voices import VoiceProfile
from tests.functions import test_synthesis_fixtures as fx

ann = fx.ann
bob = fx.bob
espeak = fx.espeak
synthesis_client = fx.synthesis_client

TEXT = "One name for a voice, on every route."


def say(client: Any, headers: dict[str, str], voice: Any, expect: int = 200, **fields: Any):
    body = {"text": TEXT, "voice": voice, "includeTimestamps": False, **fields}
    response = client.post("/synthesize", json=body, headers=headers)
    assert response.status_code == expect, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(
    ("name", "speaks"),
    [
        ("espeak:en-US+f3", "espeak:en-US+f3"),
        ("ESPEAK:en-us+F3", "espeak:en-US+f3"),
        ("alloy", "espeak:en-US+f3"),  # OpenAI's name, mapped by openai_speech_voices
        ("Alloy", "espeak:en-US+f3"),
        ("fable", "espeak:en-GB-x-rp"),
        ("en-US", "espeak:en-US"),  # a language tag: its default voice
        ("en-us", "espeak:en-US"),
        ("en", "espeak:en-US"),  # a bare language: its likely region's voice
        ("fr", "espeak:fr"),
        ("de-DE", "espeak:de"),  # no de-DE voice: the language's base voice
        # Chinese under its macrolanguage tag: eSpeak tags Mandarin cmn, Cantonese yue.
        ("zh", "espeak:cmn"),
        ("zh-CN", "espeak:cmn"),
        ("zh-TW", "espeak:cmn"),
        ("zh-HK", "espeak:yue"),
        ("cmn-CN", "espeak:cmn"),
    ],
)
def test_every_form_of_a_voice_name_works_on_synthesize(synthesis_client, ann, name, speaks):
    assert say(synthesis_client, ann, name)["voice"] == speaks


def test_dialogue_turns_take_the_same_names(synthesis_client, ann):
    turns = [
        {"speaker": "Ann", "voice": "alloy", "text": "Hi Bob."},
        {"speaker": "Bob", "voice": "en-GB", "text": "Hello Ann!"},
        {"speaker": "Cy", "voice": "ESPEAK:EN-US+M3", "text": "Hi both."},
    ]
    response = synthesis_client.post(
        "/synthesize/dialogue", json={"turns": turns, "includeTimestamps": False}, headers=ann
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "completed"


def test_an_unknown_name_is_a_404_that_lists_the_accepted_forms(synthesis_client, ann):
    for name, code in (("nobody", "VOICE_MODEL_NOT_FOUND"), ("espeak:xx", "VOICE_NOT_FOUND")):
        body = say(synthesis_client, ann, name, expect=404)
        assert body["code"] == code
        assert "provider:voiceId" in body["error"]
        assert "OpenAI voice name" in body["error"]
        assert "language tag" in body["error"]
        assert "voice model" in body["error"]
    # A well-formed language no voice speaks is not a voice either.
    assert say(synthesis_client, ann, "tlh", expect=404)["code"] == "VOICE_MODEL_NOT_FOUND"


# -- voice models ------------------------------------------------------------------------


def model(function_client, headers, *, expect=201, **fields):
    body = {
        "provider": "espeak",
        "modelPath": f"models/{fields.pop('owner', 'ann')}/m/model.bin",
        "qualityScore": 0.7,
        **fields,
    }
    response = function_client("voice_models").post("/voice-models", json=body, headers=headers)
    assert response.status_code == expect, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(
    ("voice_id", "speaks"),
    [
        ("en-US+f3", "en-US+f3"),  # the provider's own voice id
        ("espeak:en-US+f3", "en-US+f3"),
        ("alloy", "en-US+f3"),
        ("en-GB", "en"),  # eSpeak's English (Great Britain) voice is "en"
    ],
)
def test_a_models_voice_id_takes_every_form(
    function_client, synthesis_client, ann, espeak, voice_id, speaks
):
    made = model(function_client, ann, metadata={"voiceId": voice_id})
    body = say(synthesis_client, ann, made["id"])
    assert body["voice"] == made["id"]
    # The audio is that voice's: the same request with the catalog voice is identical.
    direct = say(synthesis_client, ann, f"espeak:{speaks}")
    assert body["duration"] == pytest.approx(direct["duration"], rel=0.02)


def test_a_model_naming_only_a_language_speaks_that_languages_default_voice(
    function_client, synthesis_client, ann
):
    made = model(function_client, ann, metadata={"language": "fr"})
    assert say(synthesis_client, ann, made["id"])["provider"] == "espeak"
    french = say(synthesis_client, ann, "espeak:fr")
    assert say(synthesis_client, ann, made["id"])["duration"] == pytest.approx(
        french["duration"], rel=0.02
    )


def test_a_model_with_nothing_speakable_is_refused_not_spoken_with_a_default(
    function_client, synthesis_client, ann, espeak
):
    bare = model(function_client, ann)  # a modelPath only: eSpeak loads no model files
    calls = espeak.calls
    body = say(synthesis_client, ann, bare["id"], expect=422)
    assert body["code"] == "VOICE_MODEL_UNUSABLE"
    assert "metadata.voiceId" in body["error"]
    assert espeak.calls == calls
    VoiceRepository(get_container().store).upsert(
        [VoiceProfile(provider="gcp", voice_id="en-US-A", display_name="A", language="en-US")]
    )
    foreign = model(function_client, ann, metadata={"voiceId": "gcp:en-US-A"})
    assert say(synthesis_client, ann, foreign["id"], expect=422)["code"] == "VOICE_MODEL_UNUSABLE"
    unknown = model(function_client, ann, metadata={"voiceId": "no-such-voice"})
    body = say(synthesis_client, ann, unknown["id"], expect=422)
    assert "not a voice of its provider espeak" in body["error"]
    assert espeak.calls == calls


def test_a_models_sample_rate_and_settings_shape_its_audio(function_client, synthesis_client, ann):
    made = model(
        function_client,
        ann,
        sampleRate=16_000,
        metadata={"voiceId": "en-US", "speed": 1.5, "volume": 0.5},
    )
    body = say(synthesis_client, ann, made["id"])
    assert body["sampleRate"] == 16_000
    plain = say(synthesis_client, ann, "espeak:en-US")
    assert body["duration"] < 0.8 * plain["duration"]  # the model's speed 1.5
    # A request's own values win over the model's.
    chosen = say(synthesis_client, ann, made["id"], speed=1.0, sampleRate=22_050)
    assert chosen["sampleRate"] == 22_050
    assert chosen["duration"] == pytest.approx(plain["duration"], rel=0.02)
    # A format that cannot be written at the model's rate takes its nearest rate.
    assert say(synthesis_client, ann, made["id"], outputFormat="opus")["sampleRate"] == 16_000


def test_own_models_are_listed_at_voice_models_and_user_me(function_client, ann, bob):
    mine = model(function_client, ann, metadata={"voiceId": "en-US"})
    model(function_client, bob, owner="bob", metadata={"voiceId": "en-US"})
    client = function_client("voice_models")
    for path in ("/voice-models", "/voice-models/user/me", "/voice-models/user/ann"):
        response = client.get(path, headers=ann)
        assert response.status_code == 200, (path, response.get_json())
        assert [m["id"] for m in response.get_json()["models"]] == [mine["id"]]
    assert client.get("/voice-models/user/me/analytics", headers=ann).status_code == 200
    active = function_client("voice_model_activation").get(
        "/voice-models/user/me/active", headers=ann
    )
    assert active.status_code == 200
    assert active.get_json()["userId"] == "ann"
    assert active.get_json()["model"]["id"] == mine["id"]
    assert client.get("/voice-models/user/bob", headers=ann).status_code == 403


def test_creating_models_is_not_rate_limited_locally(function_client, ann):
    for _ in range(8):
        model(function_client, ann, metadata={"voiceId": "en-US"})


def test_the_catalog_lists_chinese_voices_under_zh(function_client, espeak, ann):
    voices = function_client("voices")
    listed = voices.get("/voices?language=zh&limit=100", headers=ann).get_json()["voices"]
    assert {"espeak:cmn", "espeak:yue"} <= {voice["id"] for voice in listed}
    mandarin = voices.get("/voices?language=cmn&limit=100", headers=ann).get_json()["voices"]
    assert "espeak:yue" not in {voice["id"] for voice in mandarin}
