"""Callers' recordings (``PUT /precall/samples/{name}``) go on request and with the account.

A recording is a caller's voice: biometric data. ``DELETE /precall/samples/{name}`` deletes
one of the caller's account (204); one that live mappings use is refused (409
``PRECALL_SAMPLE_IN_USE``, naming them) until they are deleted or pointed elsewhere, and a
missing one is 404. A clone made from it that is still cached expires. Deleting the account
(``DELETE /users/me``) deletes every recording of the account, and no other account's.
New audio uploaded while the recording or the account is being deleted is refused (409
``PRECALL_SAMPLE_BEING_DELETED``), never answered stored and then deleted. Races with
mappings saved, and uploads, at other moments are in ``tests/contract``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.bootstrap import get_container
from shared.model import utcnow
from shared.precall.model import VoiceCloneCache
from shared.precall.repository import CLONE_CACHE
from tests.functions.precall_support import espeak_wav, headers_for, ok

CALLER = "+14155550100"


@pytest.fixture
def clients(function_client: Any) -> dict[str, Any]:
    return {
        "precall": function_client("precall"),
        "synthesis": function_client("synthesis"),
        "users": function_client("users"),
    }


@pytest.fixture
def acme(token: Any) -> dict[str, str]:
    """A member of account acme (the accountId claim)."""
    return headers_for(token, "agent-1", "acme")


def upload(precall: Any, headers: dict[str, str], name: str) -> str:
    """Upload a recording as ``name``; return its URL."""
    stored = precall.put(
        f"/precall/samples/{name}",
        data=espeak_wav(),
        headers=headers | {"Content-Type": "audio/wav"},
    )
    return str(ok(stored)["voiceSampleUrl"])


def map_caller(precall: Any, headers: dict[str, str], caller: str, url: str) -> Any:
    body = {"callerId": caller, "voiceSampleUrl": url, "voiceName": "Ann"}
    return ok(precall.post("/precall/mappings", json=body, headers=headers), 201)


def stored(account: str, name: str) -> bool:
    """Return whether the recording's object is in the samples bucket."""
    container = get_container()
    return container.blobs.exists(container.settings.samples_bucket, f"precall/{account}/{name}")


def test_a_recording_no_mapping_uses_is_deleted_and_then_unknown(clients, acme):
    precall = clients["precall"]
    url = upload(precall, acme, "ann.wav")
    upload(precall, acme, "bob.wav")

    deleted = precall.delete("/precall/samples/ann.wav", headers=acme)
    assert deleted.status_code == 204, deleted.get_json()
    assert deleted.get_data() == b""
    assert not stored("acme", "ann.wav")
    assert stored("acme", "bob.wav")

    again = precall.delete("/precall/samples/ann.wav", headers=acme)
    body = ok(again, 404)
    assert body["code"] == "PRECALL_SAMPLE_NOT_FOUND"
    assert set(body) >= {"error", "code", "timestamp", "requestId"}
    assert ok(precall.delete("/precall/samples/never.wav", headers=acme), 404)["code"] == (
        "PRECALL_SAMPLE_NOT_FOUND"
    )
    refused = precall.post(
        "/precall/mappings",
        json={"callerId": CALLER, "voiceSampleUrl": url, "voiceName": "Ann"},
        headers=acme,
    )
    assert ok(refused, 400)["code"] == "SAMPLE_UNREACHABLE"
    # The name is free: new audio under it is a new recording.
    assert upload(precall, acme, "ann.wav") == url


def test_a_recording_live_mappings_use_is_refused_naming_them_until_they_let_go(clients, acme):
    precall = clients["precall"]
    url = upload(precall, acme, "ann.wav")
    other = upload(precall, acme, "bob.wav")
    first = map_caller(precall, acme, CALLER, url)
    second = map_caller(precall, acme, "+14155550101", url)
    unrelated = map_caller(precall, acme, "+14155550102", other)

    refused = ok(precall.delete("/precall/samples/ann.wav", headers=acme), 409)
    assert refused["code"] == "PRECALL_SAMPLE_IN_USE"
    assert first["id"] in refused["error"]
    assert second["id"] in refused["error"]
    assert unrelated["id"] not in refused["error"]
    assert {d["mappingId"] for d in refused["details"]} == {first["id"], second["id"]}
    assert stored("acme", "ann.wav")

    ok(precall.delete(f"/precall/mappings/{first['id']}", headers=acme))
    still = ok(precall.delete("/precall/samples/ann.wav", headers=acme), 409)
    assert first["id"] not in still["error"]
    assert second["id"] in still["error"]
    ok(
        precall.put(
            f"/precall/mappings/{second['id']}", json={"voiceSampleUrl": other}, headers=acme
        )
    )

    assert precall.delete("/precall/samples/ann.wav", headers=acme).status_code == 204
    assert not stored("acme", "ann.wav")
    assert ok(precall.get(f"/precall/mappings/{second['id']}", headers=acme))["voiceSampleUrl"] == (
        other
    )


def test_many_mappings_are_named_a_few_at_a_time(clients, acme):
    precall = clients["precall"]
    url = upload(precall, acme, "ann.wav")
    for n in range(8):
        map_caller(precall, acme, f"+1415555020{n}", url)
    refused = ok(precall.delete("/precall/samples/ann.wav", headers=acme), 409)
    assert refused["code"] == "PRECALL_SAMPLE_IN_USE"
    assert len(refused["details"]) == 5
    assert "and more" in refused["error"]


def test_a_clone_still_cached_from_a_deleted_recording_expires(clients, acme):
    precall, synthesis = clients["precall"], clients["synthesis"]
    url = upload(precall, acme, "ann.wav")
    mapping = map_caller(precall, acme, CALLER, url)
    ok(precall.delete(f"/precall/mappings/{mapping['id']}", headers=acme))
    # A clone of the mapping that was being made as the mapping went, saved afterwards.
    now = utcnow()
    landed = VoiceCloneCache.for_new_clone(
        caller_id=CALLER,
        cloned_voice_id="vm-landed-late",
        now=now,
        ttl=timedelta(hours=24),
        account_id="acme",
        mapping_id=mapping["id"],
        provider="espeak",
        provider_voice_id="en-US+f3",
        language="en-US",
    )
    get_container().store.create(CLONE_CACHE, landed.id, landed.to_document())
    speak = {"text": "Hello.", "voice": "clone:vm-landed-late"}
    assert ok(synthesis.post("/synthesize", json=speak, headers=acme))["status"] == "completed"

    assert precall.delete("/precall/samples/ann.wav", headers=acme).status_code == 204
    assert ok(synthesis.post("/synthesize", json=speak, headers=acme), 410)["code"] == (
        "CLONE_EXPIRED"
    )


def test_only_the_accounts_own_recording_is_reached(clients, acme, token):
    precall = clients["precall"]
    upload(precall, acme, "ann.wav")
    globex = headers_for(token, "zed", "globex")
    missing = ok(precall.delete("/precall/samples/ann.wav", headers=globex), 404)
    assert missing["code"] == "PRECALL_SAMPLE_NOT_FOUND"
    named = ok(precall.delete("/precall/samples/ann.wav?accountId=acme", headers=globex), 403)
    assert named["code"] == "ACCESS_DENIED"
    assert stored("acme", "ann.wav")
    colleague = headers_for(token, "agent-2", "acme")
    assert precall.delete("/precall/samples/ann.wav", headers=colleague).status_code == 204
    assert not stored("acme", "ann.wav")

    upload(precall, acme, "ann.wav")
    admin = {"Authorization": f"Bearer {token('root', admin=True)}"}
    assert (
        precall.delete("/precall/samples/ann.wav?accountId=acme", headers=admin).status_code == 204
    )
    assert not stored("acme", "ann.wav")


def test_new_audio_while_the_recording_is_being_deleted_is_refused(clients, acme, monkeypatch):
    precall = clients["precall"]
    upload(precall, acme, "ann.wav")
    blobs = get_container().blobs
    answers = []

    def delete(bucket: str, name: str) -> bool:
        # The deletion has marked the recording; the object goes next.
        answers.append(
            precall.put(
                "/precall/samples/ann.wav",
                data=espeak_wav(pitch=1.2),
                headers=acme | {"Content-Type": "audio/wav"},
            )
        )
        return original(bucket, name)

    original = blobs.delete
    with monkeypatch.context() as patched:
        patched.setattr(blobs, "delete", delete)
        assert precall.delete("/precall/samples/ann.wav", headers=acme).status_code == 204

    refused = ok(answers[0], 409)
    assert refused["code"] == "PRECALL_SAMPLE_BEING_DELETED"
    assert "being deleted" in refused["error"]
    assert set(refused) >= {"error", "code", "timestamp", "requestId"}
    assert not stored("acme", "ann.wav")
    upload(precall, acme, "ann.wav")  # once deleted, the name takes new audio
    assert stored("acme", "ann.wav")


def test_new_audio_while_the_account_is_being_deleted_is_refused(clients, token, monkeypatch):
    precall, users = clients["precall"], clients["users"]
    dana = headers_for(token, "dana")
    upload(precall, dana, "mum.wav")
    blobs = get_container().blobs
    answers = []

    def delete_prefix(bucket: str, prefix: str) -> int:
        deleted = original(bucket, prefix)
        if prefix == "precall/dana/" and not answers:
            answers.append(
                precall.put(
                    "/precall/samples/dad.wav",
                    data=espeak_wav(),
                    headers=dana | {"Content-Type": "audio/wav"},
                )
            )
        return deleted

    original = blobs.delete_prefix
    with monkeypatch.context() as patched:
        patched.setattr(blobs, "delete_prefix", delete_prefix)
        assert users.delete("/users/me", headers=dana).status_code == 204

    assert ok(answers[0], 409)["code"] == "PRECALL_SAMPLE_BEING_DELETED"
    assert not stored("dana", "mum.wav")
    assert not stored("dana", "dad.wav")


def test_a_bad_name_is_refused(clients, acme):
    precall = clients["precall"]
    bad = precall.delete("/precall/samples/-ann.wav", headers=acme)
    assert ok(bad, 400)["code"] == "VALIDATION_ERROR"


def test_deleting_the_account_deletes_its_recordings_and_no_one_elses(clients, token):
    precall, users = clients["precall"], clients["users"]
    dana, other = headers_for(token, "dana"), headers_for(token, "dana2")
    url = upload(precall, dana, "mum.wav")
    map_caller(precall, dana, CALLER, url)  # a recording in use goes all the same
    upload(precall, dana, "dad.wav")
    upload(precall, other, "mum.wav")
    settings = get_container().settings
    get_container().blobs.put(
        settings.samples_bucket, "samples/dana2/raw.wav", b"RIFF", content_type="audio/wav"
    )

    assert users.delete("/users/me", headers=dana).status_code == 204

    assert not stored("dana", "mum.wav")
    assert not stored("dana", "dad.wav")
    assert stored("dana2", "mum.wav")  # an account whose id begins with dana's
    assert get_container().blobs.exists(settings.samples_bucket, "samples/dana2/raw.wav")
