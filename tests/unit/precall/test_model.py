"""Pre-call cloning (seed 003): E.164 numbers, clone cache TTL, call and clone logs, events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.errors import InvalidStateTransitionError
from shared.model import new_id
from shared.precall.model import (
    CallerVoiceMapping,
    CallLog,
    CallStatus,
    CloneFailedEvent,
    CloneReadyEvent,
    CloneTransferEvent,
    VoiceCloneCache,
    VoiceCloneLog,
    normalize_e164,
)

NOW = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
CALLER = "+14155550100"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155550100", "+14155550100"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(raw, expected):
    assert normalize_e164(raw) == expected


@pytest.mark.parametrize(
    "bad",
    ["14155550100", "+04155550100", "+1234567", "+1234567890123456", "+1415555010a", "", "+"],
)
def test_non_e164_numbers_are_rejected(bad):
    with pytest.raises(ValidationError, match=r"E\.164"):
        CallerVoiceMapping(caller_id=bad, voice_sample_url="gs://b/s.wav", voice_name="Ann")


def test_mapping_serializes_camel_case():
    mapping = CallerVoiceMapping.model_validate(
        {"callerId": CALLER, "voiceSampleUrl": "gs://b/s.wav", "voiceName": "Ann"}
    )
    api = mapping.to_api()
    assert api["callerId"] == CALLER
    assert api["voiceSampleUrl"] == "gs://b/s.wav"
    assert api["deletedAt"] is None
    for bad in [{"voiceName": ""}, {"voiceSampleUrl": ""}, {"voiceSampleUrl": "x" * 2049}]:
        with pytest.raises(ValidationError):
            CallerVoiceMapping.model_validate(
                {"callerId": CALLER, "voiceSampleUrl": "gs://b/s.wav", "voiceName": "Ann"} | bad
            )


def test_a_sample_id_is_read_as_its_recorded_owners():
    def mapping(**fields):
        return CallerVoiceMapping(
            caller_id="+14155550100", sample_id="s1", voice_name="Ann", account_id="acme", **fields
        )

    assert mapping(sample_owner_id="agent-1").sample_owner == "agent-1"
    # Mappings stored before owners were recorded: the account's own user, as then checked.
    assert mapping().sample_owner == "acme"


def test_clone_cache_expires_after_its_ttl():
    entry = VoiceCloneCache.for_new_clone(caller_id=CALLER, cloned_voice_id="el-voice", now=NOW)
    assert entry.ttl_expires_at == NOW + timedelta(hours=24)
    assert entry.reuse_count == 1
    assert not entry.is_expired(NOW + timedelta(hours=23, minutes=59))
    assert entry.is_expired(NOW + timedelta(hours=24))
    short = VoiceCloneCache.for_new_clone(
        caller_id=CALLER, cloned_voice_id="v", now=NOW, ttl=timedelta(minutes=5)
    )
    assert short.is_expired(NOW + timedelta(minutes=5))


def test_deleted_clone_cache_entry_counts_as_expired():
    entry = VoiceCloneCache.for_new_clone(caller_id=CALLER, cloned_voice_id="v", now=NOW)
    assert VoiceCloneCache.model_validate(entry.model_dump() | {"deleted_at": NOW}).is_expired(NOW)


def test_clone_cache_counts_reuse():
    entry = VoiceCloneCache.for_new_clone(caller_id=CALLER, cloned_voice_id="v", now=NOW)
    later = NOW + timedelta(hours=1)
    reused = entry.reused(later)
    assert (reused.reuse_count, reused.last_used_at) == (2, later)
    assert entry.reuse_count == 1
    assert reused.to_api()["reuseCount"] == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"reuse_count": 0},
        {"ttl_expires_at": NOW},
        {"ttl_expires_at": NOW - timedelta(seconds=1)},
        {"cloned_voice_id": ""},
        {"caller_id": "555-0100"},
    ],
)
def test_clone_cache_rejects_invalid_entries(fields):
    base = {
        "caller_id": CALLER,
        "cloned_voice_id": "v",
        "clone_created_at": NOW,
        "ttl_expires_at": NOW + timedelta(hours=1),
    }
    with pytest.raises(ValidationError):
        VoiceCloneCache.model_validate(base | fields)


def make_call(**overrides: object) -> CallLog:
    fields: dict[str, object] = {
        "call_id": f"call-{new_id()}",
        "caller_id": CALLER,
        "call_started_at": NOW,
    }
    fields.update(overrides)
    return CallLog.model_validate(fields)


@pytest.mark.parametrize("status", list(CallStatus))
@pytest.mark.parametrize("action", ["complete", "fail"])
def test_call_moves_only_from_initiated(status, action):
    call = make_call(status=status)
    end = NOW + timedelta(seconds=95)
    if status is CallStatus.INITIATED:
        ended = getattr(call, action)(ended_at=end, transcript="hi")
        assert ended.status is (CallStatus.COMPLETED if action == "complete" else CallStatus.FAILED)
        assert (ended.duration_seconds, ended.call_ended_at, ended.transcript) == (95, end, "hi")
    else:
        with pytest.raises(InvalidStateTransitionError):
            getattr(call, action)(ended_at=end)


@pytest.mark.parametrize(
    "fields",
    [
        {"duration_seconds": -1},
        {"status": "ringing"},
        {"call_ended_at": NOW - timedelta(seconds=1)},
        {"call_id": ""},
    ],
)
def test_call_log_rejects_invalid_values(fields):
    with pytest.raises(ValidationError):
        make_call(**fields)


def test_call_cannot_end_before_it_started():
    with pytest.raises(ValidationError):
        make_call().complete(ended_at=NOW - timedelta(minutes=1))


def test_call_log_serializes_camel_case():
    api = make_call(threecx_call_id="3cx-1", metadata={"agent": "a"}).to_api()
    assert api["threecxCallId"] == "3cx-1"
    assert api["status"] == "initiated"
    assert api["callStartedAt"] == "2026-02-01T09:00:00Z"


def test_clone_log_rules():
    ok = VoiceCloneLog(
        caller_id=CALLER,
        cloned_voice_id="v",
        api_response_time_ms=850,
        sample_file_size_bytes=204800,
        status="success",
    )
    assert ok.to_api()["apiResponseTimeMs"] == 850
    failed = VoiceCloneLog.model_validate(
        {
            "callerId": CALLER,
            "apiResponseTimeMs": 0,
            "sampleFileSizeBytes": 0,
            "status": "failed",
            "errorMessage": "quota exceeded",
        }
    )
    assert failed.cloned_voice_id is None
    base = ok.model_dump()
    bad_fields: list[dict[str, object]] = [
        {"api_response_time_ms": -1},
        {"sample_file_size_bytes": -1},
        {"status": "partial"},
        {"cloned_voice_id": None},
    ]
    for bad in bad_fields:
        with pytest.raises(ValidationError):
            VoiceCloneLog.model_validate(base | bad)


def test_events_serialize_camel_case_and_validate():
    ready = CloneReadyEvent(
        caller_id=CALLER,
        greeting_call_id="g-1",
        cloned_voice_id="v",
        clone_duration_ms=4200,
        ready_at=NOW,
    )
    assert ready.to_api()["cloneDurationMs"] == 4200
    failed = CloneFailedEvent(
        caller_id=CALLER, greeting_call_id="g-1", error_message="timeout", failed_at=NOW
    )
    assert failed.to_api()["failedAt"] == "2026-02-01T09:00:00Z"
    transfer = CloneTransferEvent(
        greeting_call_id="g-1", agent_call_id="a-1", cloned_voice_id="v", transferred_at=NOW
    )
    assert transfer.to_api()["agentCallId"] == "a-1"
    with pytest.raises(ValidationError):
        CloneReadyEvent.model_validate(ready.model_dump() | {"clone_duration_ms": -5})
    with pytest.raises(ValidationError):
        CloneFailedEvent.model_validate(failed.model_dump() | {"caller_id": "anonymous"})


SEPARATORS = " \t\n\u00a0\u2009\u3000().-"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="+0123456789" + SEPARATORS + "a\x1c\ufeff", max_size=24))
def test_the_documented_phone_pattern_is_what_is_accepted(raw):
    # The OpenAPI document states the pattern a caller id must match (a generated client
    # checks it first): it accepts exactly what the platform accepts. Written with explicit
    # characters, it means the same to Python's `re` and to JavaScript's (JSON Schema's).
    pattern = CallerVoiceMapping.model_json_schema()["properties"]["callerId"]["pattern"]
    try:
        normalize_e164(raw)
        accepted = True
    except ValueError:
        accepted = False
    assert (re.search(pattern, raw) is not None) == accepted, raw


def test_a_documented_phone_number_takes_separators():
    schema = CallerVoiceMapping.model_json_schema()["properties"]["callerId"]
    for written in ("+14155550100", "+1 (415) 555-0100", "  +44 20 7946 0958 "):
        assert re.search(schema["pattern"], written), written
    assert "E.164" in schema["description"]
