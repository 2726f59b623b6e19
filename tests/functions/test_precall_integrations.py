"""Pre-call cloning against its outside parties, each in its real wire format on a local
server: ElevenLabs instant voice cloning (multipart ``POST /v1/voices/add``, ``DELETE``;
4xx, 5xx, timeouts), S3 samples through boto3 against moto's server mode, and the signed
webhook retried by the task queue."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from shared.bootstrap import get_container, reset_container
from shared.model import utcnow
from shared.precall import CAPABILITY as PRECALL
from shared.precall.expiry import expire_clones
from shared.precall.repository import (
    CLONE_CACHE,
    CLONE_LOG,
    FAILED_EVENTS,
    MAPPINGS,
    VOICE_RELEASES,
)
from shared.store import Query
from tests.functions.precall_support import (
    documents,
    espeak_wav,
    headers_for,
    ok,
    put_sample,
    wait_for_clone,
)
from tests.support.fake_elevenlabs_cloning import ClonedVoices, cloning_app
from tests.support.fake_http import FakeHttpServer, json_response
from tests.support.fake_tts_servers import ELEVENLABS_KEY
from tests.support.voice_match import warm_voice_match_table

CALLER = "+14155550100"


@pytest.fixture(autouse=True, scope="module")
def _voice_match_table() -> None:
    warm_voice_match_table()  # the S3 and webhook tests clone with the voice match


@pytest.fixture
def elevenlabs(
    platform: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeHttpServer, ClonedVoices]]:
    state = ClonedVoices()
    with FakeHttpServer(cloning_app(state)) as server:
        for name, value in {
            "VOICE_PRECALL_CLONER": "elevenlabs",
            "VOICE_PROVIDERS": "espeak,elevenlabs",
            "VOICE_ELEVENLABS_API_KEY": ELEVENLABS_KEY,
            "VOICE_ELEVENLABS_BASE_URL": server.url,
            "VOICE_PROVIDER_TIMEOUT_SECONDS": "0.5",
            "VOICE_PRECALL_CLONE_ATTEMPTS": "2",
        }.items():
            monkeypatch.setenv(name, value)
        reset_container()
        get_container().tasks.start()
        yield server, state
        reset_container()


@pytest.fixture
def precall(function_client: Any) -> Any:
    return function_client("precall")


@pytest.fixture
def acme(token: Any) -> dict[str, str]:
    return headers_for(token, "agent-1", "acme")


def map_caller(precall: Any, acme: dict[str, str], url: str | None = None) -> Any:
    body = {
        "callerId": CALLER,
        "voiceSampleUrl": url or put_sample("acme", "ann.wav", espeak_wav()),
        "voiceName": "Ann",
        "description": "Caller Ann",
    }
    return ok(precall.post("/precall/mappings", json=body, headers=acme), 201)


def call(precall: Any, acme: dict[str, str], greeting: str) -> Any:
    body = {"callerId": CALLER, "greetingCallId": greeting}
    accepted = ok(precall.post("/precall/calls", json=body, headers=acme), 202)
    return wait_for_clone(precall, acme, accepted["call"]["id"])


def clone_requests(server: FakeHttpServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST" and r.path == "/v1/voices/add"]


def test_elevenlabs_clone_in_its_wire_format_then_speak_then_release(
    elevenlabs, precall, acme, function_client
):
    server, state = elevenlabs
    sample = espeak_wav()
    map_caller(precall, acme, put_sample("acme", "ann.wav", sample))
    ready = call(precall, acme, "g-1")
    assert ready["cloneState"] == "ready", ready
    voice_id = ready["clonedVoiceId"]
    assert voice_id in state.voices

    (sent,) = clone_requests(server)
    assert sent.headers["Xi-Api-Key"] == ELEVENLABS_KEY
    environ = EnvironBuilder(
        method="POST",
        input_stream=io.BytesIO(sent.body),
        content_type=sent.headers["Content-Type"],
        content_length=len(sent.body),
    ).get_environ()
    _, form, files = parse_form_data(environ)
    assert form["name"] == "Ann"
    assert form["description"] == "Caller Ann"
    assert json.loads(form["labels"]) == {"source": "precall"}
    assert CALLER not in sent.body.decode("latin-1")  # the number is not sent to ElevenLabs
    (part,) = files.getlist("files")
    assert part.filename.endswith(".wav")
    assert part.mimetype == "audio/wav"
    assert part.read() == sample

    (entry,) = documents(CLONE_CACHE, account_id="acme")
    assert (entry["provider"], entry["provider_voice_id"]) == ("elevenlabs", voice_id)
    (attempt,) = documents(CLONE_LOG, account_id="acme")
    assert attempt["sample_file_size_bytes"] == len(sample)
    assert attempt["api_response_time_ms"] >= 0

    spoken = function_client("synthesis").post(
        "/synthesize", json={"text": "Hello again.", "voice": ready["voice"]}, headers=acme
    )
    assert ok(spoken)["duration"] > 0
    assert any(r.path == f"/v1/text-to-speech/{voice_id}/with-timestamps" for r in server.requests)

    # A second call reuses the clone: ElevenLabs is not asked again.
    assert call(precall, acme, "g-2")["clonedVoiceId"] == voice_id
    assert len(clone_requests(server)) == 1

    # Expiry gives the slot back; a failed DELETE is retried on the next run.
    deps = get_container().deps(PRECALL)
    server.fail_next(500, {"detail": {"status": "internal", "message": "try later"}})
    report = expire_clones(deps, utcnow() + timedelta(days=2))
    assert (report.expired, report.released, report.release_failures) == (1, 0, 1)
    assert voice_id in state.voices
    (release,) = documents(VOICE_RELEASES)
    assert release["attempts"] == 1
    assert "500" in release["error"]
    assert expire_clones(deps, utcnow() + timedelta(days=2)).released == 1
    assert voice_id not in state.voices
    assert documents(VOICE_RELEASES) == []


def test_elevenlabs_5xx_is_retried_and_4xx_fails_the_clone_with_its_reason(
    elevenlabs, precall, acme
):
    server, state = elevenlabs
    map_caller(precall, acme)
    server.fail_next(503, {"detail": {"status": "overloaded", "message": "busy"}})
    ready = call(precall, acme, "g-1")
    assert ready["cloneState"] == "ready"
    statuses = sorted(a["status"] for a in documents(CLONE_LOG, account_id="acme"))
    assert statuses == ["failed", "success"]
    assert len(documents(CLONE_CACHE, account_id="acme")) == 1

    # A full account: a permanent failure, reported once, nothing cached.
    get_container().store.delete_matching(Query(CLONE_CACHE))
    state.voice_limit = len(state.voices)
    failed = call(precall, acme, "g-2")
    assert failed["cloneState"] == "failed"
    assert "400" in failed["cloneError"]
    assert "voice_limit_reached" in failed["cloneError"]
    (event,) = documents(FAILED_EVENTS, account_id="acme")
    assert event["error_message"] == failed["cloneError"]
    assert documents(CLONE_CACHE, account_id="acme") == []
    assert len(clone_requests(server)) == 3  # one 503, one success, one 400 (no retry)


def test_elevenlabs_timeout_fails_after_the_configured_attempts(elevenlabs, precall, acme):
    server, state = elevenlabs
    map_caller(precall, acme)
    state.delay = 1.0  # the client gives up after 0.5 s
    failed = call(precall, acme, "g-1")
    assert failed["cloneState"] == "failed"
    assert "did not answer within 0.5 s" in failed["cloneError"]
    attempts = documents(CLONE_LOG, account_id="acme")
    assert [a["status"] for a in attempts] == ["failed", "failed"]
    assert documents(CLONE_CACHE, account_id="acme") == []
    assert len(clone_requests(server)) == 2


def test_account_deletion_deletes_the_provider_voices(elevenlabs, precall, token, function_client):
    server, state = elevenlabs
    dana = headers_for(token, "dana")
    map_caller(precall, dana, put_sample("dana", "d.wav", espeak_wav()))
    ready = call(precall, dana, "g-1")
    assert ready["clonedVoiceId"] in state.voices
    assert function_client("users").delete("/users/me", headers=dana).status_code == 204
    assert state.voices == {}
    assert documents(CLONE_CACHE, account_id="dana") == []
    assert documents(VOICE_RELEASES) == []
    assert any(r.method == "DELETE" for r in server.requests)


# -- S3 samples (moto's server mode) -----------------------------------------------------------


@pytest.fixture
def s3(platform: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in {
            "VOICE_PRECALL_S3_ENDPOINT": endpoint,
            "VOICE_PRECALL_S3_ACCESS_KEY_ID": "testing",
            "VOICE_PRECALL_S3_SECRET_ACCESS_KEY": "testing",
            "VOICE_PRECALL_SAMPLE_BUCKETS": "s3://acme-recordings/{account}/",
        }.items():
            monkeypatch.setenv(name, value)
        reset_container()
        get_container().tasks.start()
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket="acme-recordings")
        yield client
        reset_container()
    finally:
        server.stop()


def test_s3_samples_are_read_with_boto3(s3, precall, acme):
    sample = espeak_wav("en-US+m3")
    s3.put_object(Bucket="acme-recordings", Key="acme/bob.wav", Body=sample)
    map_caller(precall, acme, "s3://acme-recordings/acme/bob.wav")
    ready = call(precall, acme, "g-1")
    assert ready["cloneState"] == "ready"
    (attempt,) = documents(CLONE_LOG, account_id="acme")
    assert attempt["sample_file_size_bytes"] == len(sample)

    missing = {"callerId": "+14155550111", "voiceName": "X"}
    response = precall.post(
        "/precall/mappings",
        json=missing | {"voiceSampleUrl": "s3://acme-recordings/acme/none.wav"},
        headers=acme,
    )
    error = ok(response, 400)
    assert error["code"] == "SAMPLE_UNREACHABLE"
    assert "does not exist" in error["error"]
    other = precall.post(
        "/precall/mappings",
        json=missing | {"voiceSampleUrl": "s3://acme-recordings/globex/bob.wav"},
        headers=acme,
    )
    assert ok(other, 400)["code"] == "SAMPLE_LOCATION_NOT_ALLOWED"

    # The object vanishes behind the mapping: the next clone fails with the reason.
    get_container().store.delete_matching(Query(CLONE_CACHE))
    s3.delete_object(Bucket="acme-recordings", Key="acme/bob.wav")
    failed = call(precall, acme, "g-2")
    assert failed["cloneState"] == "failed"
    assert "does not exist" in failed["cloneError"]
    assert len(documents(MAPPINGS, account_id="acme")) == 1


def test_an_unreachable_s3_is_a_clear_400(platform, monkeypatch, function_client, token):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("VOICE_PRECALL_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("VOICE_PRECALL_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("VOICE_PRECALL_S3_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("VOICE_PRECALL_SAMPLE_BUCKETS", "s3://acme-recordings/{account}/")
    reset_container()
    body = {
        "callerId": CALLER,
        "voiceName": "X",
        "voiceSampleUrl": "s3://acme-recordings/acme/a.wav",
    }
    response = function_client("precall").post(
        "/precall/mappings", json=body, headers=headers_for(token, "agent-1", "acme")
    )
    error = ok(response, 400)
    assert error["code"] == "SAMPLE_UNREACHABLE"
    assert "unreachable" in error["error"]


# -- the webhook ---------------------------------------------------------------------------------


def test_ready_and_failed_clones_are_posted_signed_and_retried(
    platform, monkeypatch, function_client, token
):
    received: list[Any] = []

    def receiver(request: Any) -> Any:
        received.append(request)
        return json_response({"ok": True})

    with FakeHttpServer(receiver) as hook:
        monkeypatch.setenv("VOICE_PRECALL_WEBHOOK_URL", f"{hook.url}/hooks/precall")
        monkeypatch.setenv("VOICE_PRECALL_WEBHOOK_SECRET", "s3cret-s3cret")
        monkeypatch.setenv("VOICE_PRECALL_WEBHOOK_TIMEOUT_SECONDS", "2")
        reset_container()
        get_container().tasks.start()
        precall, acme = function_client("precall"), headers_for(token, "agent-1", "acme")
        map_caller(precall, acme)
        hook.fail_next(500, {"error": "down"})  # the first delivery is refused
        ready = call(precall, acme, "g-1")
        deadline = utcnow() + timedelta(seconds=30)
        while len(hook.requests) < 2 and utcnow() < deadline:
            time.sleep(0.1)
        first, second = hook.requests[:2]
        assert first.body == second.body  # the same event, retried
        assert second.headers["X-Voice-Event"] == "clone.ready"
        assert second.headers["X-Voice-Event-Id"] == ready["id"]
        expected = hmac.new(b"s3cret-s3cret", second.body, hashlib.sha256).hexdigest()
        assert second.headers["X-Voice-Signature"] == f"sha256={expected}"
        event = json.loads(second.body)
        assert (event["type"], event["voice"]) == ("clone.ready", ready["voice"])
        assert event["greetingCallId"] == "g-1"
        assert event["cloneDurationMs"] >= 0

        body = {
            "callerId": "+14155550122",
            "voiceSampleUrl": put_sample("acme", "b.wav", espeak_wav()),
            "voiceName": "B",
        }
        ok(precall.post("/precall/mappings", json=body, headers=acme), 201)
        put_sample("acme", "b.wav", b"not audio at all" * 100)  # replaced behind its back
        accepted = precall.post(
            "/precall/calls",
            json={"callerId": "+14155550122", "greetingCallId": "g-2"},
            headers=acme,
        )
        failed = wait_for_clone(precall, acme, ok(accepted, 202)["call"]["id"])
        assert failed["cloneState"] == "failed"
        deadline = utcnow() + timedelta(seconds=30)
        while len(hook.requests) < 3 and utcnow() < deadline:
            time.sleep(0.1)
        last = json.loads(hook.requests[2].body)
        assert last["type"] == "clone.failed"
        assert "not wav" in last["errorMessage"]
        reset_container()
