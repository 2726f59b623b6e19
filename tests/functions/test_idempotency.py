"""Idempotency-Key: a client's retry of a POST gets the first answer, not a second effect."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from shared import idempotency
from shared.bootstrap import get_container
from shared.errors import TransactionContentionError
from shared.voice_models import crud as voice_models_service
from tests.functions.conftest import bearer

BODY = {"provider": "espeak", "modelPath": "models/ann/model.pth", "qualityScore": 0.7}


@pytest.fixture
def client(function_client, monkeypatch):
    monkeypatch.setenv("VOICE_RATE_LIMIT_MODEL_CREATES_PER_HOUR", "1000")
    return function_client("voice_models")


def post(client, token, key, body=BODY, user="ann"):
    headers = (
        {**bearer(token(user)), "Idempotency-Key": key} if key is not None else bearer(token(user))
    )
    return client.post(
        "/voice-models", data=json.dumps(body), headers=headers, content_type="application/json"
    )


def models_of(client, token, user="ann"):
    listed = client.get(f"/voice-models/user/{user}", headers=bearer(token(user))).get_json()
    return [model["id"] for model in listed["models"]]


def test_a_retry_with_the_same_key_gets_the_first_answer_and_makes_nothing_new(client, token):
    first = post(client, token, "create-model-1")
    assert first.status_code == 201
    assert idempotency.REPLAYED_HEADER not in first.headers
    again = post(client, token, "create-model-1")
    assert again.status_code == 201
    assert again.headers[idempotency.REPLAYED_HEADER] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert models_of(client, token) == [first.get_json()["id"]]
    # Without a key, or with another, a POST does it again.
    assert post(client, token, None).status_code == 201
    assert post(client, token, "create-model-2").status_code == 201
    assert len(models_of(client, token)) == 3


def test_a_key_is_the_callers_own(client, token):
    ann = post(client, token, "shared-key")
    bob = post(client, token, "shared-key", {**BODY, "modelPath": "models/bob/model.pth"}, "bob")
    assert (ann.status_code, bob.status_code) == (201, 201)
    assert idempotency.REPLAYED_HEADER not in bob.headers
    assert ann.get_json()["id"] != bob.get_json()["id"]


def test_the_same_key_with_another_request_is_a_422(client, token):
    assert post(client, token, "k-reuse").status_code == 201
    other = post(client, token, "k-reuse", {**BODY, "qualityScore": 0.9})
    assert other.status_code == 422
    assert other.get_json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(models_of(client, token)) == 1


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there", "caf\u00e9"])
def test_a_malformed_key_is_a_400(client, token, key):
    response = post(client, token, key)
    assert response.status_code == 400
    assert response.get_json()["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert models_of(client, token) == []


def test_an_error_is_not_kept_and_a_key_in_use_is_a_409(client, token):
    # An error did nothing (and a 429 or a 409 passes): the retry runs again.
    refused = post(client, token, "k-bad", {**BODY, "qualityScore": 7})
    assert refused.status_code == 400
    again = post(client, token, "k-bad", {**BODY, "qualityScore": 7})
    assert again.status_code == 400
    assert idempotency.REPLAYED_HEADER not in again.headers
    assert again.get_json()["requestId"] != refused.get_json()["requestId"]

    keys = idempotency.IdempotencyKeys(get_container().store)
    request = idempotency.fingerprint("POST", "/voice-models", b"", json.dumps(BODY).encode())
    held = keys.claim("ann", "k-running", request, datetime.now(UTC))
    assert isinstance(held, idempotency.Claim)  # another instance is running it right now
    busy = post(client, token, "k-running")
    assert busy.status_code == 409
    assert busy.get_json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert busy.headers["Retry-After"] == "1"
    assert models_of(client, token) == []


def test_a_claim_whose_request_died_is_taken_over_once_its_lease_lapses(client, token):
    # Its instance died (killed, out of memory, scaled in): nothing renews its claim, so a
    # retry runs a lease later, not after the longest a request may run.
    keys = idempotency.IdempotencyKeys(get_container().store)
    request = idempotency.fingerprint("POST", "/voice-models", b"", json.dumps(BODY).encode())
    lapsed = datetime.now(UTC) - idempotency.CLAIM_LEASE - timedelta(seconds=1)
    assert isinstance(keys.claim("ann", "k-died", request, lapsed), idempotency.Claim)
    taken = post(client, token, "k-died")
    assert taken.status_code == 201
    assert post(client, token, "k-died").headers[idempotency.REPLAYED_HEADER] == "true"
    assert len(models_of(client, token)) == 1


def test_a_request_running_longer_than_its_lease_keeps_its_key(client, token, monkeypatch):
    # The running request renews its claim (shared.store.leases.Heartbeat): a retry while it
    # runs, however long, is a 409 and never a second model.
    # Renewed five times a lease, so that only a renewal 0.8 s late (a loaded machine) lets
    # it lapse.
    monkeypatch.setattr(idempotency, "CLAIM_LEASE", timedelta(seconds=1.0))
    monkeypatch.setattr(idempotency, "RENEW_EVERY", timedelta(seconds=0.2))
    entered, release = threading.Event(), threading.Event()
    create = voice_models_service.create_voice_model

    def held_create(*args, **kwargs):
        if not entered.is_set():  # the first request is held; a retry that ran would not be
            entered.set()
            assert release.wait(10)
        return create(*args, **kwargs)

    monkeypatch.setattr(voice_models_service, "create_voice_model", held_create)
    answers: list = []
    first = threading.Thread(target=lambda: answers.append(post(client, token, "k-long")))
    first.start()
    try:
        assert entered.wait(10)
        time.sleep(2.5)  # more than two leases
        busy = post(client, token, "k-long")
        assert busy.status_code == 409, busy.get_json()
        assert busy.get_json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
    finally:
        release.set()
        first.join(10)
    assert answers[0].status_code == 201
    replayed = post(client, token, "k-long")
    assert replayed.headers[idempotency.REPLAYED_HEADER] == "true"
    assert replayed.get_json() == answers[0].get_json()
    assert models_of(client, token) == [answers[0].get_json()["id"]]


def test_retries_racing_each_other_make_one_model(client, token):
    answers: list[int] = []

    def send() -> None:
        answers.append(post(client, token, "k-race").status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(answers)) <= [201, 409]
    assert 201 in answers
    assert len(models_of(client, token)) == 1


def test_a_post_without_a_body_replays_too(client, token):
    post(client, token, None)
    headers = {**bearer(token("ann")), "Idempotency-Key": "backup-1"}
    first = client.post("/voice-models/user/ann/backup", headers=headers)
    assert first.status_code == 201, first.get_json()
    again = client.post("/voice-models/user/ann/backup", headers=headers)
    assert (again.status_code, again.headers[idempotency.REPLAYED_HEADER]) == (201, "true")
    assert again.get_json() == first.get_json()
    other = client.post("/voice-models/user/ann/backup", headers=bearer(token("ann")))
    assert other.get_json()["backupPath"] != first.get_json()["backupPath"]


def test_an_answer_the_store_could_not_keep_still_reaches_the_client(client, token, monkeypatch):
    # The model exists once the handler answered: the client gets that answer even when
    # recording it for replays fails (contention, the store unavailable). The key stays
    # claimed, so a retry meanwhile is a 409, never a second model; a lease after the answer
    # (its renewals stopped) the claim counts as dead and a retry runs again (the documented
    # cost of this case).
    def store_fails(self, claim, answer):
        raise TransactionContentionError("The store is busy")

    with monkeypatch.context() as patched:
        patched.setattr(idempotency.IdempotencyKeys, "finish", store_fails)
        first = post(client, token, "k-unkept")
    assert first.status_code == 201

    retry = post(client, token, "k-unkept")
    assert retry.status_code == 409
    assert retry.get_json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert models_of(client, token) == [first.get_json()["id"]]
