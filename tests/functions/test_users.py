"""The users function over HTTP: registration, profile, deletion, and who may do what."""

from __future__ import annotations

import threading

import pytest

from shared.bootstrap import get_container
from shared.store import Query
from shared.users.accounts import ACCOUNT_DELETIONS
from tests.functions.conftest import bearer


@pytest.fixture
def client(function_client):
    return function_client("users")


def register(client, token, email="ann@example.com", **extra):
    return client.post("/users", json={"email": email, **extra}, headers=bearer(token))


def test_register_then_read_own_profile(client, token):
    ann = token("ann")
    created = register(client, ann, email="Ann@Example.COM", firstName="Ann")
    assert created.status_code == 201
    body = created.get_json()
    assert body["id"] == "ann"
    assert body["email"] == "ann@example.com"
    assert body["firstName"] == "Ann"
    assert body["storageUsedBytes"] == 0
    assert body["createdAt"].endswith("Z")
    me = client.get("/users/me", headers=bearer(ann))
    assert me.status_code == 200
    assert me.get_json() == body


def test_registering_twice_is_a_conflict(client, token):
    ann = token("ann")
    assert register(client, ann).status_code == 201
    again = register(client, ann, email="other@example.com")
    assert again.status_code == 409
    assert again.get_json()["code"] == "USER_ALREADY_EXISTS"


def test_email_is_unique_across_users_even_when_racing(client, token):
    results: list[int] = []

    def attempt(user: str) -> None:
        results.append(register(client, token(user), email="same@example.com").status_code)

    threads = [threading.Thread(target=attempt, args=(f"user{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201, 409, 409, 409, 409, 409]


def test_profile_update_changes_only_given_fields(client, token):
    ann = token("ann")
    register(client, ann, firstName="Ann", lastName="Lee")
    response = client.patch("/users/me", json={"lastName": "Smith"}, headers=bearer(ann))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["firstName"], body["lastName"]) == ("Ann", "Smith")
    assert body["updatedAt"] >= body["createdAt"]


@pytest.mark.parametrize(
    "payload",
    [{}, {"firstName": 5}, {"nickname": "x"}, {"firstName": "x" * 101}],
)
def test_bad_updates_are_400_with_field_details(client, token, payload):
    ann = token("ann")
    register(client, ann)
    response = client.patch("/users/me", json=payload, headers=bearer(ann))
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "VALIDATION_ERROR"
    assert body["details"]


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "@example.com", None])
def test_bad_emails_are_refused(client, token, email):
    response = client.post("/users", json={"email": email}, headers=bearer(token("ann")))
    assert response.status_code == 400
    assert response.get_json()["details"][0]["field"] == "email"


def test_unregistered_user_gets_404(client, token):
    response = client.get("/users/me", headers=bearer(token("ghost")))
    assert response.status_code == 404
    assert response.get_json()["code"] == "USER_NOT_FOUND"


def test_users_only_ever_reach_their_own_profile(client, token):
    register(client, token("ann"), email="ann@example.com", firstName="Ann")
    register(client, token("bob"), email="bob@example.com", firstName="Bob")
    assert client.get("/users/me", headers=bearer(token("bob"))).get_json()["firstName"] == "Bob"
    # There is no route that names another user's id.
    assert client.get("/users/ann", headers=bearer(token("bob"))).status_code == 404


def test_delete_account_removes_user_models_and_samples(client, token):
    ann = token("ann")
    register(client, ann)
    register(client, token("bob"), email="bob@example.com")
    store = get_container().store
    for i in range(3):
        store.create("voice_models", f"ann-model-{i}", {"user_id": "ann"})
    store.create("voice_samples", "ann-sample", {"user_id": "ann"})
    store.create("voice_models", "bob-model", {"user_id": "bob"})

    response = client.delete("/users/me", headers=bearer(ann))
    assert response.status_code == 204
    assert client.get("/users/me", headers=bearer(ann)).status_code == 404
    assert store.count(Query("voice_models").where("user_id", "==", "ann")) == 0
    assert store.count(Query("voice_samples").where("user_id", "==", "ann")) == 0
    assert store.get("voice_models", "bob-model") is not None
    deletions = store.query(Query(ACCOUNT_DELETIONS).where("user_id", "==", "ann")).documents
    assert len(deletions) == 1
    assert deletions[0].data["status"] == "completed"
    assert deletions[0].data["purged"] == {
        "users": 1,
        "voice_models": 3,
        "synthesis_jobs": 0,
        "audio_files": 0,
        "lexicons": 0,
        "voice_samples": 1,
        "precall": 0,
        "voice_sessions": 0,
    }
    assert "email" not in deletions[0].data
    # The email is free again.
    assert register(client, token("ann2")).status_code == 201


def test_storage_used_is_tracked_on_the_user(client, token):
    from shared.users.accounts import add_storage_used

    ann = token("ann")
    register(client, ann)
    store = get_container().store
    assert add_storage_used(store=store, user_id="ann", delta_bytes=1500) == 1500
    assert add_storage_used(store=store, user_id="ann", delta_bytes=-2000) == 0
    add_storage_used(store=store, user_id="ann", delta_bytes=42)
    assert client.get("/users/me", headers=bearer(ann)).get_json()["storageUsedBytes"] == 42
