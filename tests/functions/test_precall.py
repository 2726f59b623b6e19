"""Pre-call cloning end to end on the embedded platform: mappings, the call webhook, the
clone task on the real in-process queue with the embedded cloner and eSpeak-made samples,
transfer, end, analytics, synthesis with the clone, duplicate and concurrent webhooks, TTL
expiry, retention and account deletion."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from shared.bootstrap import get_container, reset_container
from shared.model import utcnow
from shared.precall import CAPABILITY as PRECALL
from shared.precall.expiry import expire_clones, purge_deleted
from shared.precall.repository import (
    CALLS,
    CLONE_CACHE,
    CLONE_LOG,
    FAILED_EVENTS,
    MAPPINGS,
    READY_EVENTS,
    TRANSFER_EVENTS,
)
from tests.functions.precall_support import (
    documents,
    espeak_wav,
    headers_for,
    ok,
    put_sample,
    silence_wav,
    wait_for_clone,
    wav_file,
)
from tests.support.voice_match import warm_voice_match_table

CALLER = "+1 (415) 555-0100"
E164 = "+14155550100"


@pytest.fixture(autouse=True, scope="module")
def _voice_match_table() -> None:
    warm_voice_match_table()  # built once per process, outside every clone's deadline


@pytest.fixture
def clients(function_client: Any) -> dict[str, Any]:
    get_container().tasks.start()
    return {
        "precall": function_client("precall"),
        "synthesis": function_client("synthesis"),
        "users": function_client("users"),
    }


@pytest.fixture
def acme(token: Any) -> dict[str, str]:
    """A member of account acme (the accountId claim)."""
    return headers_for(token, "agent-1", "acme")


def new_mapping(client: Any, headers: dict[str, str], account: str, **fields: Any) -> Any:
    body = {
        "callerId": CALLER,
        "voiceSampleUrl": put_sample(account, "ann.wav", espeak_wav("en-US+f3")),
        "voiceName": "Ann",
    } | fields
    return ok(client.post("/precall/mappings", json=body, headers=headers), 201)


def webhook(client: Any, headers: dict[str, str], greeting: str, caller: str = E164) -> Any:
    body = {"callerId": caller, "greetingCallId": greeting, "threecxCallId": f"3cx-{greeting}"}
    return client.post("/precall/calls", json=body, headers=headers)


def test_mappings_are_scoped_unique_paged_and_reusable_after_delete(clients, acme, token):
    precall = clients["precall"]
    mapping = new_mapping(precall, acme, "acme", description="VIP")
    assert mapping["callerId"] == E164
    assert (mapping["accountId"], mapping["createdBy"]) == ("acme", "agent-1")
    again = precall.post(
        "/precall/mappings",
        json={"callerId": E164, "voiceSampleUrl": mapping["voiceSampleUrl"], "voiceName": "B"},
        headers=acme,
    )
    assert ok(again, 409)["code"] == "CALLER_ID_TAKEN"
    assert ok(precall.get(f"/precall/mappings/{mapping['id']}", headers=acme))["voiceName"] == "Ann"

    # Another member of acme sees it; another tenant does not, and cannot name acme.
    colleague = headers_for(token, "agent-2", "acme")
    assert ok(precall.get(f"/precall/mappings/{mapping['id']}", headers=colleague))
    other = headers_for(token, "zed", "globex")
    assert ok(precall.get(f"/precall/mappings/{mapping['id']}", headers=other), 404)
    named = precall.get("/precall/mappings?accountId=acme", headers=other)
    assert ok(named, 403)["code"] == "ACCESS_DENIED"
    admin = headers_for(token, "root", None) | {}
    admin = {"Authorization": f"Bearer {token('root', admin=True)}"}
    assert len(ok(precall.get("/precall/mappings?accountId=acme", headers=admin))["mappings"]) == 1
    # The same number in another account is another mapping.
    new_mapping(precall, other, "globex")

    for n in range(3):
        new_mapping(precall, acme, "acme", callerId=f"+4420794609{50 + n}")
    first = ok(precall.get("/precall/mappings?limit=3", headers=acme))
    assert len(first["mappings"]) == 3
    assert first["nextCursor"]
    rest = ok(precall.get(f"/precall/mappings?limit=3&cursor={first['nextCursor']}", headers=acme))
    assert [m["id"] for m in rest["mappings"]] == [mapping["id"]]
    assert rest["nextCursor"] is None

    moved = precall.put(
        f"/precall/mappings/{mapping['id']}",
        json={"callerId": "+1 415 555 0199", "voiceName": "Ann B."},
        headers=acme,
    )
    assert ok(moved)["callerId"] == "+14155550199"
    # The old number is free again, the new one is taken.
    new_mapping(precall, acme, "acme")
    taken = precall.put(
        f"/precall/mappings/{mapping['id']}", json={"callerId": CALLER}, headers=acme
    )
    assert ok(taken, 409)["code"] == "CALLER_ID_TAKEN"

    deleted = ok(precall.delete(f"/precall/mappings/{mapping['id']}", headers=acme))
    assert deleted["deletedAt"]
    assert ok(precall.get(f"/precall/mappings/{mapping['id']}", headers=acme), 404)
    again = new_mapping(precall, acme, "acme", callerId="+14155550199")
    assert again["id"] != mapping["id"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"callerId": "0415 555 0100"}, "VALIDATION_ERROR"),
        ({"callerId": "+1 415 555 010a"}, "VALIDATION_ERROR"),
        (
            {"voiceSampleUrl": "gs://someone-elses-bucket/precall/acme/a.wav"},
            "SAMPLE_LOCATION_NOT_ALLOWED",
        ),
        (
            {"voiceSampleUrl": "gs://voice-samples/precall/globex/a.wav"},
            "SAMPLE_LOCATION_NOT_ALLOWED",
        ),
        (
            {"voiceSampleUrl": "gs://voice-samples/precall/acme/../globex/a.wav"},
            "SAMPLE_LOCATION_NOT_ALLOWED",
        ),
        ({"voiceSampleUrl": "https://example.com/a.wav"}, "SAMPLE_LOCATION_NOT_ALLOWED"),
        ({"voiceSampleUrl": "s3://not-allowed/acme/a.wav"}, "SAMPLE_LOCATION_NOT_ALLOWED"),
        ({"voiceSampleUrl": "gs://voice-samples/precall/acme/missing.wav"}, "SAMPLE_UNREACHABLE"),
        ({"sampleId": "s1"}, "VALIDATION_ERROR"),
        ({"voiceName": ""}, "VALIDATION_ERROR"),
        ({"surprise": 1}, "VALIDATION_ERROR"),
    ],
)
def test_bad_mappings_are_refused_with_a_clear_4xx(clients, acme, fields, code):
    put_sample("acme", "ok.wav", espeak_wav())
    body = {
        "callerId": CALLER,
        "voiceSampleUrl": "gs://voice-samples/precall/acme/ok.wav",
        "voiceName": "Ann",
    }
    body = {k: v for k, v in (body | fields).items() if v is not None}
    response = clients["precall"].post("/precall/mappings", json=body, headers=acme)
    error = ok(response, 400)
    assert error["code"] == code
    assert set(error) >= {"error", "code", "timestamp", "requestId"}
    assert documents(MAPPINGS) == []


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"these bytes are a text file, not audio" * 20, "SAMPLE_NOT_AUDIO", "not wav"),
        (b"RIFF\x00\x10\x00\x00WAVEfmt " + b"\x00" * 40, "SAMPLE_NOT_AUDIO", "decoded"),
        (None, "SAMPLE_UNUSABLE", "at least"),
        (silence_wav(5.0), "SAMPLE_UNUSABLE", "no speech"),
        # Speech, but at a rate no voice is cloned from (well-formed: the header says 4 kHz).
        (wav_file(b"\x10\x00\xf0\xff" * 40_000, 4_000), "SAMPLE_UNUSABLE", "4000 Hz"),
    ],
)
def test_samples_that_are_not_audio_too_short_or_silent_are_refused(
    clients, acme, data, code, words
):
    if data is None:
        data = espeak_wav(text="Hi.")  # well under the 2 s minimum
    url = put_sample("acme", "bad.wav", data)
    body = {"callerId": CALLER, "voiceSampleUrl": url, "voiceName": "Ann"}
    error = ok(clients["precall"].post("/precall/mappings", json=body, headers=acme), 400)
    assert error["code"] == code
    assert words in error["error"]


def test_call_to_clone_to_transfer_to_end_to_analytics(clients, acme):
    precall, synthesis = clients["precall"], clients["synthesis"]
    started = utcnow()
    new_mapping(precall, acme, "acme")
    accepted = ok(webhook(precall, acme, "greet-1"), 202)
    assert accepted["duplicate"] is False
    call_id = accepted["call"]["id"]
    assert accepted["call"]["status"] == "initiated"

    call = wait_for_clone(precall, acme, call_id)
    assert call["cloneState"] == "ready", call
    assert call["voice"] == f"clone:{call['clonedVoiceId']}"
    assert call["clonedVoiceId"].startswith("vm-")
    # The agent side may poll by the greeting call id too.
    assert ok(precall.get("/precall/calls/greet-1", headers=acme))["id"] == call_id

    (ready,) = documents(READY_EVENTS, account_id="acme")
    assert (ready["greeting_call_id"], ready["cache_hit"]) == ("greet-1", False)
    (attempt,) = documents(CLONE_LOG, account_id="acme")
    assert attempt["status"] == "success"
    assert attempt["sample_file_size_bytes"] > 100_000
    (entry,) = documents(CLONE_CACHE, account_id="acme")
    assert entry["provider"] == "espeak"
    # The voice match answers an eSpeak sample with the voice that spoke it.
    assert entry["provider_voice_id"] == "en-US+f3"
    assert entry["ttl_expires_at"] - entry["clone_created_at"] == timedelta(hours=24)

    spoken = synthesis.post(
        "/synthesize", json={"text": "Thanks for calling.", "voice": call["voice"]}, headers=acme
    )
    assert ok(spoken)["duration"] > 0.5

    transfer = {"agentCallId": "agent-call-9"}
    moved = ok(precall.post(f"/precall/calls/{call_id}/transfer", json=transfer, headers=acme))
    assert moved["agentCallId"] == "agent-call-9"
    ok(precall.post(f"/precall/calls/{call_id}/transfer", json=transfer, headers=acme))
    (event,) = documents(TRANSFER_EVENTS, account_id="acme")
    assert event["cloned_voice_id"] == call["clonedVoiceId"]

    end = {"status": "completed", "transcript": "Caller: hello. Agent: hi."}
    ended = ok(precall.post(f"/precall/calls/{call_id}/end", json=end, headers=acme))
    assert (ended["status"], ended["transcript"]) == ("completed", end["transcript"])
    assert ended["durationSeconds"] is not None
    assert ended["callEndedAt"]
    assert ok(precall.post(f"/precall/calls/{call_id}/end", json=end, headers=acme))
    refused = precall.post(f"/precall/calls/{call_id}/end", json={"status": "failed"}, headers=acme)
    assert ok(refused, 409)["code"] == "CALL_ALREADY_ENDED"
    bad = precall.post(f"/precall/calls/{call_id}/end", json={"status": "initiated"}, headers=acme)
    assert ok(bad, 400)["code"] == "VALIDATION_ERROR"
    assert [detail["field"] for detail in bad.get_json()["details"]] == ["status"]
    late = precall.post(
        f"/precall/calls/{call_id}/transfer", json={"agentCallId": "x"}, headers=acme
    )
    assert ok(late, 409)["code"] == "CALL_ALREADY_ENDED"

    # A second call reuses the cached clone.
    second = ok(webhook(precall, acme, "greet-2"), 202)["call"]["id"]
    assert wait_for_clone(precall, acme, second)["clonedVoiceId"] == call["clonedVoiceId"]

    stats = ok(
        precall.get(
            f"/precall/analytics?from={started.isoformat().replace('+00:00', 'Z')}", headers=acme
        )
    )
    assert stats["accountId"] == "acme"
    assert (stats["cloneAttempts"], stats["cloneSuccesses"], stats["cloneSuccessRate"]) == (
        1,
        1,
        1.0,
    )
    assert stats["cloneTime"]["count"] == 1
    assert stats["cloneTime"]["meanMs"] > 0
    assert stats["cloneTime"]["p95Ms"] == stats["cloneTime"]["meanMs"]
    assert (stats["readyEvents"], stats["cacheHits"], stats["cacheReuseRatio"]) == (2, 1, 0.5)
    assert stats["callsByStatus"] == {"initiated": 1, "completed": 1, "failed": 0}
    assert stats["callStartToReady"]["count"] == 2
    empty = ok(
        precall.get(
            "/precall/analytics?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", headers=acme
        )
    )
    assert (empty["cloneAttempts"], empty["cloneSuccessRate"], empty["cloneTime"]["meanMs"]) == (
        0,
        None,
        None,
    )


def test_webhook_bad_input(clients, acme):
    precall = clients["precall"]
    assert ok(webhook(precall, acme, "g-1"), 404)["code"] == "UNKNOWN_CALLER"
    assert ok(webhook(precall, acme, "g-1", caller="555-0100"), 400)["code"] == "VALIDATION_ERROR"
    new_mapping(precall, acme, "acme")
    ok(webhook(precall, acme, "g-1"), 202)
    new_mapping(precall, acme, "acme", callerId="+14155550111")
    assert (
        ok(webhook(precall, acme, "g-1", caller="+14155550111"), 409)["code"] == "CALL_ID_CONFLICT"
    )
    missing = precall.get("/precall/calls/nope", headers=acme)
    assert ok(missing, 404)["code"] == "CALL_NOT_FOUND"
    early = precall.post("/precall/calls/nope/transfer", json={"agentCallId": "a"}, headers=acme)
    assert ok(early, 404)["code"] == "CALL_NOT_FOUND"


def test_the_webhook_takes_the_call_start_as_an_iso_date_time(clients, acme):
    precall = clients["precall"]
    new_mapping(precall, acme, "acme")
    body = {"callerId": E164, "greetingCallId": "g-start", "callStartedAt": "2026-01-31T12:00:00Z"}
    call = ok(precall.post("/precall/calls", json=body, headers=acme), 202)["call"]
    assert call["callStartedAt"] == "2026-01-31T12:00:00Z"
    offset = body | {"greetingCallId": "g-offset", "callStartedAt": "2026-01-31T14:00:00+02:00"}
    call = ok(precall.post("/precall/calls", json=offset, headers=acme), 202)["call"]
    assert call["callStartedAt"] == "2026-01-31T12:00:00Z"
    # A telephony clock ahead of ours: the call started when we heard of it, not later.
    ahead = body | {"greetingCallId": "g-ahead", "callStartedAt": "2099-01-01T00:00:00Z"}
    call = ok(precall.post("/precall/calls", json=ahead, headers=acme), 202)["call"]
    assert call["callStartedAt"] == call["createdAt"]
    # Not a date-time, before any call could start, or beyond the years there are in UTC.
    refused = ("yesterday", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00")
    for n, start in enumerate((*refused, "9999-12-31T23:59:59-01:00")):
        bad = body | {"greetingCallId": f"g-bad-{n}", "callStartedAt": start}
        error = ok(precall.post("/precall/calls", json=bad, headers=acme), 400)
        assert error["code"] == "VALIDATION_ERROR", start
    assert ok(precall.get("/precall/analytics?from=2000-01-01T00:00:00Z", headers=acme))


@pytest.mark.parametrize("field", ["callerId", "voiceName", "voiceSampleUrl", "sampleId"])
def test_a_mapping_update_cannot_null_a_required_field(clients, acme, field):
    precall = clients["precall"]
    mapping = new_mapping(precall, acme, "acme", description="VIP")
    path = f"/precall/mappings/{mapping['id']}"
    error = ok(precall.put(path, json={field: None}, headers=acme), 400)
    assert error["code"] == "VALIDATION_ERROR"
    assert set(error) >= {"error", "code", "timestamp", "requestId"}
    assert ok(precall.get(path, headers=acme)) == mapping
    # The description is optional: null clears it.
    assert ok(precall.put(path, json={"description": None}, headers=acme))["description"] is None


@pytest.mark.parametrize("query", ["to=0001-01-01T00:00:00Z", "from=2099-01-01T00:00:00Z"])
def test_analytics_refuse_a_range_that_ends_before_it_starts(clients, acme, query):
    error = ok(clients["precall"].get(f"/precall/analytics?{query}", headers=acme), 400)
    assert error["code"] == "VALIDATION_ERROR"
    assert "before" in error["error"]


def test_analytics_of_a_range_near_the_first_representable_time(clients, acme):
    query = "/precall/analytics?to=0001-01-20T00:00:00Z"
    stats = ok(clients["precall"].get(query, headers=acme))
    assert (stats["from"], stats["cloneAttempts"]) == ("0001-01-01T00:00:00Z", 0)


def test_duplicate_and_concurrent_webhooks_make_one_clone(clients, acme):
    precall = clients["precall"]
    new_mapping(precall, acme, "acme")
    first = ok(webhook(precall, acme, "dup-1"), 202)
    repeat = ok(webhook(precall, acme, "dup-1"), 202)
    assert repeat["duplicate"] is True
    assert repeat["call"]["id"] == first["call"]["id"]

    answers: list[Any] = []

    def ring(n: int) -> None:
        answers.append(webhook(precall, acme, f"burst-{n}"))

    threads = [threading.Thread(target=ring, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [202] * 5
    ids = [first["call"]["id"]] + [a.get_json()["call"]["id"] for a in answers]
    voices = {wait_for_clone(precall, acme, call_id)["clonedVoiceId"] for call_id in ids}
    assert len(voices) == 1
    assert len(documents(CLONE_LOG, account_id="acme")) == 1
    (entry,) = documents(CLONE_CACHE, account_id="acme")
    assert entry["reuse_count"] == 6
    events = documents(READY_EVENTS, account_id="acme")
    assert len(events) == 6
    assert sum(e["cache_hit"] for e in events) == 5
    assert len(documents(CALLS, account_id="acme")) == 6


def test_clones_expire_after_their_ttl_and_are_refused_then_made_again(clients, acme):
    precall, synthesis = clients["precall"], clients["synthesis"]
    new_mapping(precall, acme, "acme")
    call = wait_for_clone(precall, acme, ok(webhook(precall, acme, "t-1"), 202)["call"]["id"])
    deps = get_container().deps(PRECALL)
    assert expire_clones(deps, utcnow() + timedelta(hours=23)).expired == 0
    expired_at = utcnow() + timedelta(hours=24, seconds=1)
    report = expire_clones(deps, expired_at)
    assert report.expired == 1
    assert report.release_failures == 0
    (entry,) = documents(CLONE_CACHE, account_id="acme")
    assert entry["deleted_at"] is not None

    refused = synthesis.post(
        "/synthesize", json={"text": "Hi.", "voice": call["voice"]}, headers=acme
    )
    error = ok(refused, 410)
    assert error["code"] == "CLONE_EXPIRED"
    assert "expired" in error["error"]
    unknown = synthesis.post(
        "/synthesize", json={"text": "Hi.", "voice": "clone:nope"}, headers=acme
    )
    assert ok(unknown, 404)["code"] == "CLONE_NOT_FOUND"

    fresh = wait_for_clone(precall, acme, ok(webhook(precall, acme, "t-2"), 202)["call"]["id"])
    assert fresh["clonedVoiceId"] != call["clonedVoiceId"]
    assert len(documents(CLONE_LOG, account_id="acme")) == 2

    # Soft-deleted rows go after the retention period, not before.
    assert purge_deleted(deps, expired_at + timedelta(days=29)) == 0
    assert purge_deleted(deps, expired_at + timedelta(days=31)) == 1
    assert len(documents(CLONE_CACHE, account_id="acme")) == 1


def test_changing_or_deleting_a_mapping_expires_its_clone(clients, acme):
    precall, synthesis = clients["precall"], clients["synthesis"]
    mapping = new_mapping(precall, acme, "acme")
    call = wait_for_clone(precall, acme, ok(webhook(precall, acme, "m-1"), 202)["call"]["id"])
    url = put_sample("acme", "bob.wav", espeak_wav("en-US+m3"))
    ok(
        precall.put(
            f"/precall/mappings/{mapping['id']}", json={"voiceSampleUrl": url}, headers=acme
        )
    )
    refused = synthesis.post(
        "/synthesize", json={"text": "Hi.", "voice": call["voice"]}, headers=acme
    )
    assert ok(refused, 410)["code"] == "CLONE_EXPIRED"
    fresh = wait_for_clone(precall, acme, ok(webhook(precall, acme, "m-2"), 202)["call"]["id"])
    entries = {e["cloned_voice_id"]: e for e in documents(CLONE_CACHE, account_id="acme")}
    assert entries[fresh["clonedVoiceId"]]["provider_voice_id"] == "en-US+m3"


def test_uploading_a_new_sample_under_a_mapped_name_expires_the_clone_made_from_the_old(
    clients, acme
):
    precall, synthesis = clients["precall"], clients["synthesis"]
    new_mapping(precall, acme, "acme")  # gs://.../precall/acme/ann.wav, eSpeak's f3
    bob = put_sample("acme", "bob.wav", espeak_wav("en-US+m1"))
    other = new_mapping(precall, acme, "acme", callerId="+14155550199", voiceSampleUrl=bob)
    call = wait_for_clone(precall, acme, ok(webhook(precall, acme, "u-1"), 202)["call"]["id"])
    kept = wait_for_clone(
        precall, acme, ok(webhook(precall, acme, "u-2", other["callerId"]), 202)["call"]["id"]
    )
    headers = acme | {"Content-Type": "audio/wav"}
    ok(precall.put("/precall/samples/ann.wav", data=espeak_wav("en-US+m3"), headers=headers))
    refused = synthesis.post(
        "/synthesize", json={"text": "Hi.", "voice": call["voice"]}, headers=acme
    )
    assert ok(refused, 410)["code"] == "CLONE_EXPIRED"
    fresh = wait_for_clone(precall, acme, ok(webhook(precall, acme, "u-3"), 202)["call"]["id"])
    entries = {e["cloned_voice_id"]: e for e in documents(CLONE_CACHE, account_id="acme")}
    assert entries[fresh["clonedVoiceId"]]["provider_voice_id"] == "en-US+m3"
    # A mapping of another sample keeps its clone.
    spoken = synthesis.post(
        "/synthesize", json={"text": "Hi.", "voice": kept["voice"]}, headers=acme
    )
    assert ok(spoken)["status"] == "completed"


def test_a_sample_that_went_bad_fails_the_clone_with_its_reason_and_no_cache_entry(clients, acme):
    precall = clients["precall"]
    mapping = new_mapping(precall, acme, "acme")
    put_sample("acme", "ann.wav", silence_wav(4.0))  # replaced behind the mapping's back
    call = wait_for_clone(precall, acme, ok(webhook(precall, acme, "f-1"), 202)["call"]["id"])
    assert call["cloneState"] == "failed"
    assert "no speech" in call["cloneError"]
    assert call["voice"] is None
    (failed,) = documents(FAILED_EVENTS, account_id="acme")
    assert "no speech" in failed["error_message"]
    (attempt,) = documents(CLONE_LOG, account_id="acme")
    assert attempt["status"] == "failed"
    assert attempt["error_message"] == failed["error_message"]
    assert documents(CLONE_CACHE, account_id="acme") == []
    early = precall.post(
        f"/precall/calls/{call['id']}/transfer", json={"agentCallId": "a"}, headers=acme
    )
    assert ok(early, 409)["code"] == "CLONE_NOT_READY"
    assert mapping["id"]


def test_deleting_the_account_erases_its_precall_data(clients, token):
    precall, users = clients["precall"], clients["users"]
    dana = headers_for(token, "dana")
    new_mapping(precall, dana, "dana")
    call = wait_for_clone(precall, dana, ok(webhook(precall, dana, "d-1"), 202)["call"]["id"])
    ok(
        precall.post(
            f"/precall/calls/{call['id']}/transfer", json={"agentCallId": "a"}, headers=dana
        )
    )
    other = headers_for(token, "erin")
    new_mapping(precall, other, "erin")
    assert users.delete("/users/me", headers=dana).status_code == 204
    for collection in (MAPPINGS, CLONE_CACHE, CALLS, CLONE_LOG, READY_EVENTS, TRANSFER_EVENTS):
        assert documents(collection, account_id="dana") == [], collection
    assert len(documents(MAPPINGS, account_id="erin")) == 1
    assert ok(precall.get("/precall/mappings", headers=dana))["mappings"] == []


def test_samples_are_uploaded_checked_and_mapped(clients, acme):
    precall = clients["precall"]
    sample = espeak_wav()
    stored = ok(
        precall.put(
            "/precall/samples/ann.wav", data=sample, headers=acme | {"Content-Type": "audio/wav"}
        )
    )
    assert stored["voiceSampleUrl"] == "gs://voice-samples/precall/acme/ann.wav"
    assert stored["sizeBytes"] == len(sample)
    assert stored["format"] == "wav"
    body = {"callerId": CALLER, "voiceSampleUrl": stored["voiceSampleUrl"], "voiceName": "Ann"}
    ok(precall.post("/precall/mappings", json=body, headers=acme), 201)
    bad = precall.put("/precall/samples/x.wav", data=b"text" * 100, headers=acme)
    assert ok(bad, 400)["code"] == "SAMPLE_NOT_AUDIO"
    named = precall.put("/precall/samples/..", data=sample, headers=acme)
    assert named.status_code in (400, 404)
    big = precall.put(
        "/precall/samples/big.wav",
        data=b"\0" * (20 * 1024 * 1024 + 1),
        headers=acme | {"Content-Type": "audio/wav"},
    )
    assert ok(big, 413)["code"] == "PAYLOAD_TOO_LARGE"


def test_a_misconfigured_cloner_fails_the_clone_instead_of_leaving_it_pending(
    platform, monkeypatch, function_client, token
):
    monkeypatch.setenv("VOICE_PRECALL_CLONER", "elevenlabs")  # and no ElevenLabs key
    reset_container()
    get_container().tasks.start()
    precall, acme = function_client("precall"), headers_for(token, "agent-1", "acme")
    new_mapping(precall, acme, "acme")
    call = wait_for_clone(precall, acme, ok(webhook(precall, acme, "c-1"), 202)["call"]["id"])
    assert call["cloneState"] == "failed"
    assert "not configured" in call["cloneError"]
    assert documents(CLONE_CACHE, account_id="acme") == []
