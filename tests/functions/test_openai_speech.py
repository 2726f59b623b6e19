"""The OpenAI-compatible speech API, driven by the real ``openai`` package.

The local gateway (every function, as ``make run`` serves them) runs in this process on a
free port; the OpenAI client is pointed at it with a dev token as its API key.
"""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import functions_framework
import jsonschema
import openai
import pytest
import soundfile  # type: ignore[import-untyped]

from local.gateway import Gateway, gateway_server
from local.serving import Served
from shared.audio.encode import decode_duration
from shared.bootstrap import get_container
from shared.files.repository import AUDIO_FILES
from shared.store import Query
from shared.synthesis.repository import SYNTHESIS_JOBS
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.conftest import ROOT, bearer
from tests.functions.test_synthesis import create_model
from tests.functions.test_synthesis_fixtures import CountingEspeak

espeak = fx.espeak  # the shared fixture, registered in this module


@pytest.fixture
def gateway(espeak: CountingEspeak) -> Iterator[str]:
    served = Served(Gateway(get_container()), threads=4, build=gateway_server)
    yield f"http://127.0.0.1:{served.port}"
    served.close()


def function_client_for(target: str) -> Any:
    return functions_framework.create_app(target, str(ROOT / "main.py")).test_client()


@pytest.fixture
def client(gateway: str, token: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=token("ann"), max_retries=0) as sdk:
        yield sdk


TEXT = "Existing OpenAI clients work against this platform unchanged."


@pytest.mark.parametrize(
    ("response_format", "kind", "rate"),
    [
        ("mp3", "mp3", None),
        ("opus", "ogg_opus", None),
        ("flac", "flac", None),
        ("wav", "wav", None),
        ("pcm", "pcm", 24_000),
    ],
)
def test_speech_in_every_supported_format(client, response_format, kind, rate):
    audio = client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=response_format
    )
    data = audio.read()
    assert decode_duration(data, kind, sample_rate=rate) > 2.0
    if kind in ("wav", "flac", "ogg_opus"):
        assert soundfile.info(io.BytesIO(data)).channels == 1


def test_speed_voices_and_nothing_stored_for_the_user(client, espeak, token):
    normal = client.audio.speech.create(
        model="tts-1", voice="nova", input=TEXT, response_format="wav"
    )
    fast = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="nova", input=TEXT, response_format="wav", speed=2.0
    )
    assert decode_duration(fast.read(), "wav") < 0.7 * decode_duration(normal.read(), "wav")
    # The platform's voice names work here as on every route: catalog ids, language tags.
    for voice in ("espeak:en-us", "en-GB", "NOVA"):
        audio = client.audio.speech.create(
            model="tts-1", voice=voice, input="Catalog voices work too.", response_format="mp3"
        )
        assert decode_duration(audio.read(), "mp3") > 0.5
    # By default nothing is kept for the user: no file, no storage used, no job.
    store = get_container().store
    assert store.count(Query(AUDIO_FILES).where("user_id", "==", "ann")) == 0
    assert store.count(Query(SYNTHESIS_JOBS).where("user_id", "==", "ann")) == 0


def test_a_result_the_cache_holds_is_served_without_the_provider(client, espeak, token):
    synthesis = function_client_for("synthesis")
    made = synthesis.post(
        "/synthesize",
        json={
            "text": TEXT,
            "voice": "espeak:en-US+f1",
            "outputFormat": "wav",
            "sampleRate": 22_050,
            "includeTimestamps": False,
        },
        headers=bearer(token("ann")),  # the SDK's user: the cache is per user
    )
    assert made.status_code == 200, made.get_json()
    calls = espeak.calls
    again = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="nova", input=TEXT, response_format="wav"
    )
    assert again.headers["x-cache-hit"] == "true"
    assert espeak.calls == calls


def test_results_are_the_users_files_when_the_setting_says_so(gateway, token, monkeypatch):
    monkeypatch.setattr(get_container().settings, "openai_speech_storage", "files")
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=token("cy"), max_retries=0) as sdk:
        answer = sdk.audio.speech.with_raw_response.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="mp3"
        )
    file_id = answer.headers["x-audio-file-id"]
    stored = get_container().store.get(AUDIO_FILES, file_id)
    assert stored is not None
    assert stored.data["user_id"] == "cy"


def test_pcm_names_its_rate(client):
    answer = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
    )
    assert answer.headers["content-type"] == "audio/L16;rate=24000;channels=1"


def test_aac_is_refused_with_415_listing_the_supported_formats(client):
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="aac")
    assert caught.value.status_code == 415
    assert "'aac' is not supported" in caught.value.message
    assert "mp3" in caught.value.message
    assert caught.value.code == "unsupported_audio_format"


def test_errors_reach_the_sdk_in_openais_shape_with_their_message(client, gateway):
    with pytest.raises(openai.BadRequestError) as empty:
        client.audio.speech.create(model="tts-1", voice="alloy", input="   ")
    assert "Text must not be empty" in empty.value.message
    assert empty.value.type == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as missing:
        client.audio.speech.create(model="tts-1", voice="espeak:xx-none", input=TEXT)
    assert "Voice not found: espeak:xx-none" in missing.value.message
    assert "provider:voiceId" in missing.value.message  # the forms a voice may take
    assert missing.value.code == "voice_not_found"
    with pytest.raises(openai.BadRequestError) as invalid:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, speed=9.0)
    assert invalid.value.param == "speed"
    # The message says what is wrong: the SDK shows it alone.
    assert "speed: Input should be less than or equal to 4" in invalid.value.message
    stranger = openai.OpenAI(base_url=f"{gateway}/v1", api_key="wrong", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError) as refused:
        stranger.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    assert refused.value.type == "authentication_error"
    assert refused.value.message != "Error code: 401"


@pytest.mark.parametrize(
    ("field", "value"),
    [("input", "Hello\u0000there"), ("voice", "alloy\u0000")],
)
def test_what_openais_body_lets_through_but_the_platform_refuses_is_a_400(client, field, value):
    # OpenAI's body is looser than the platform's request (a NUL character): 400, not 500.
    body = {"model": "tts-1", "voice": "alloy", "input": TEXT, field: value}
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.speech.create(**body)
    assert refused.value.param == field
    assert "NUL" in refused.value.message


def test_voices_are_listed(client):
    # The SDK's generic GET reaches routes it has no method for.
    body = client.get("/audio/voices", cast_to=object)
    names = {voice["id"] for voice in body["voices"]}
    assert {"alloy", "nova", "shimmer"} <= names


def test_lexicons_ride_along_in_the_sdks_extra_body(client, token):
    lexicons = function_client_for("lexicons")
    created = lexicons.post(
        "/lexicons",
        json={
            "name": "Acronyms",
            "language": "en-US",
            "rules": [{"grapheme": "W3C", "alias": "the World Wide Web Consortium"}],
        },
        headers=bearer(token("ann")),
    ).get_json()
    text = "The W3C met."
    plain = client.audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    )
    ruled = client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input=text,
        response_format="wav",
        extra_body={"lexicon_ids": [created["id"]]},
    )
    assert decode_duration(ruled.read(), "wav") > decode_duration(plain.read(), "wav") + 0.5
    with pytest.raises(openai.NotFoundError) as missing:
        client.audio.speech.create(
            model="tts-1", voice="alloy", input=text, extra_body={"lexicon_ids": ["nope"]}
        )
    assert "Lexicon not found: nope" in missing.value.message
    assert missing.value.code == "lexicon_not_found"


def test_a_voice_models_use_here_is_counted_once(client, token):
    models = function_client_for("voice_models")
    model_id = create_model(
        models,
        bearer(token("ann")),
        "ann",
        modelPath="models/ann/openai.bin",
        metadata={"voiceId": "en-US+f2", "language": "en-US"},
    )["id"]
    for _ in range(2):  # nothing is stored here, so both render: two uses, both billed
        client.audio.speech.create(
            model="tts-1", voice=model_id, input=TEXT, response_format="wav"
        ).read()
    stats = models.get(f"/voice-models/{model_id}/usage-stats", headers=bearer(token("ann")))
    body = stats.get_json()
    assert body["usageCount"] == 2
    assert (body["characters"], body["requestedCharacters"]) == (2 * len(TEXT), 2 * len(TEXT))


def test_a_voice_models_use_served_from_the_cache_is_not_billed(client, espeak, token):
    models = function_client_for("voice_models")
    model_id = create_model(
        models,
        bearer(token("ann")),
        "ann",
        modelPath="models/ann/cached.bin",
        metadata={"voiceId": "en-US+f2", "language": "en-US"},
    )["id"]
    stored = function_client_for("synthesis").post(
        "/synthesize",
        json={
            "text": TEXT,
            "voice": model_id,
            "outputFormat": "wav",
            "sampleRate": 22_050,
            "includeTimestamps": False,
        },
        headers=bearer(token("ann")),
    )
    assert stored.status_code == 200, stored.get_json()
    calls = espeak.calls
    again = client.audio.speech.with_raw_response.create(
        model="tts-1", voice=model_id, input=TEXT, response_format="wav"
    )
    assert again.headers["x-cache-hit"] == "true"
    assert espeak.calls == calls
    stats = models.get(f"/voice-models/{model_id}/usage-stats", headers=bearer(token("ann")))
    body = stats.get_json()
    # Two uses, one billed: the cache hit asked for the text but the provider spoke none.
    assert body["usageCount"] == 2
    assert (body["characters"], body["requestedCharacters"]) == (len(TEXT), 2 * len(TEXT))


def server_sent_events(text: str) -> list[dict[str, str]]:
    """Return the events of an event stream as schemathesis reads them: each one's fields
    (``event`` defaults to ``message``), as the HTML server-sent events standard parses."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: dict[str, str] = {"event": "message"}
        data = []
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name in ("event", "id", "retry"):
                event[name] = value
        event["data"] = "\n".join(data)
        events.append(event)
    return events


def test_each_server_sent_event_matches_the_documented_schema(gateway, token):
    # An event stream's schema in an OpenAPI 3.1 document (without 3.2's itemSchema)
    # describes each event, as schemathesis checks it: it said {"type": "string"}, which
    # no event ({event, data}) is, and a fuzzing run that reached the SSE answer failed.
    with urllib.request.urlopen(f"{gateway}/openapi.json", timeout=30) as reply:  # noqa: S310
        document = json.load(reply)
    answer = document["paths"]["/v1/audio/speech"]["post"]["responses"]["200"]
    validator = jsonschema.Draft202012Validator(answer["content"]["text/event-stream"]["schema"])
    request = urllib.request.Request(  # noqa: S310 - the test's own loopback URL
        f"{gateway}/v1/audio/speech",
        data=json.dumps(
            {"model": "tts-1", "voice": "alloy", "input": TEXT, "stream_format": "sse"}
        ).encode(),
        headers={"Authorization": f"Bearer {token('ann')}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310 - the test's own
        events = server_sent_events(reply.read().decode())
    assert len(events) >= 2
    for event in events:
        validator.validate(event)
    kinds = [json.loads(event["data"])["type"] for event in events]
    assert kinds[-1] == "speech.audio.done"
    assert set(kinds[:-1]) == {"speech.audio.delta"}
