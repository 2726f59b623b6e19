"""The voice_models function over HTTP: CRUD, identity, paging, bad input, cache, audit."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from shared.bootstrap import get_container, reset_container
from shared.store import Query
from shared.voice_models import CAPABILITY as VOICE_MODELS
from shared.voice_models.access_log import ACCESS_LOG
from shared.voice_models.model import VoiceModelUsageEvent
from shared.voice_models.usage import record_usage
from tests.functions.conftest import bearer

LIMIT_SETTINGS = (
    "VOICE_RATE_LIMIT_MODEL_CREATES_PER_HOUR",
    "VOICE_RATE_LIMIT_MODEL_UPDATES_PER_HOUR",
    "VOICE_RATE_LIMIT_ANALYTICS_PER_HOUR",
    "VOICE_RATE_LIMIT_BACKUPS_PER_DAY",
)


@pytest.fixture
def generous_limits(platform, monkeypatch):
    """Rate limits high enough that only the rate-limit tests meet them."""
    for name in LIMIT_SETTINGS:
        monkeypatch.setenv(name, "1000")
    reset_container()


@pytest.fixture
def client(function_client, generous_limits):
    return function_client("voice_models")


@pytest.fixture
def activation(function_client, generous_limits):
    return function_client("voice_model_activation")


def create(client, token, user, *, expect=201, **fields):
    body = {"provider": "xtts-v2", "modelPath": f"models/{user}/model.pth", "qualityScore": 0.6}
    body.update(fields)
    response = client.post("/voice-models", json=body, headers=bearer(token))
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def active_ids(client, token, user):
    listed = client.get(f"/voice-models/user/{user}?limit=100", headers=bearer(token)).get_json()
    return [m["id"] for m in listed["models"] if m["isActive"]]


def deps():
    return get_container().deps(VOICE_MODELS)


def use(model, *, cost=0.0, latency=0.0, rating=None, now=None):
    record_usage(
        get_container().store,
        model_id=model["id"],
        owner_id=model["userId"],
        event=VoiceModelUsageEvent(cost=cost, latency_ms=latency, quality_rating=rating),
        shards=get_container().settings.usage_counter_shards,
        cache=deps().cache,
        now=now,
    )


# -- create and read -------------------------------------------------------------------


def test_create_returns_the_seed_fields_and_stores_quality_components(client, token):
    ann = token("ann")
    model = create(
        client,
        ann,
        "ann",
        provider="google-cloud-tts",
        modelPath="gs://voice-models/models/ann/m/model.pth",
        sampleRate=24000,
        qualityScore=None,
        qualityComponents={
            "similarity": 0.9,
            "naturalness": 0.8,
            "clarity": 0.7,
            "consistency": 0.6,
        },
        metadata={"version": "1.0", "trainingDuration": "15min"},
    )
    assert model["userId"] == "ann"
    assert model["qualityScore"] == pytest.approx(0.8)
    assert (model["similarity"], model["naturalness"], model["clarity"], model["consistency"]) == (
        0.9,
        0.8,
        0.7,
        0.6,
    )
    assert model["status"] == "completed"
    assert model["metadata"]["trainingDuration"] == "15min"
    assert model["deletedAt"] is None
    fetched = client.get(f"/voice-models/{model['id']}?userId=ann", headers=bearer(ann))
    assert fetched.status_code == 200
    assert fetched.get_json() == model


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"qualityScore": 1.2}, "VALIDATION_ERROR"),
        ({"qualityScore": -0.1}, "VALIDATION_ERROR"),
        ({"provider": "festival"}, "VALIDATION_ERROR"),
        ({"nickname": "x"}, "VALIDATION_ERROR"),
        ({"modelPath": "models/bob/model.pth"}, "INVALID_MODEL_PATH"),
        ({"modelPath": "gs://other-bucket/models/ann/model.pth"}, "INVALID_MODEL_PATH"),
        ({"modelPath": "models/ann/../bob/model.pth"}, "INVALID_MODEL_PATH"),
        ({"modelPath": "models/ann/"}, "INVALID_MODEL_PATH"),
        ({"modelPath": "samples/ann/model.pth"}, "INVALID_MODEL_PATH"),
        ({"name": "n" * 256}, "VALIDATION_ERROR"),
        ({"voiceSampleId": "s" * 256}, "VALIDATION_ERROR"),
    ],
)
def test_bad_create_bodies_are_400(client, token, fields, code):
    body = create(client, token("ann"), "ann", expect=400, **fields)
    assert body["code"] == code


def test_user_id_must_be_the_callers_unless_admin(client, token):
    ann, root = token("ann"), token("root", admin=True)
    assert create(client, ann, "ann", expect=403, userId="bob")["code"] == "ACCESS_DENIED"
    assert client.get("/voice-models/user/bob", headers=bearer(ann)).status_code == 403
    made_for_bob = create(client, root, "bob", userId="bob")
    assert made_for_bob["userId"] == "bob"
    assert client.get("/voice-models/user/bob", headers=bearer(root)).get_json()["total"] == 1
    response = client.get(f"/voice-models/{made_for_bob['id']}?userId=bob", headers=bearer(ann))
    assert response.status_code == 403


def test_other_users_models_are_not_found(client, token, activation):
    model = create(client, token("ann"), "ann")
    bob = token("bob")
    for response in (
        client.get(f"/voice-models/{model['id']}", headers=bearer(bob)),
        client.put(f"/voice-models/{model['id']}", json={"name": "x"}, headers=bearer(bob)),
        client.delete(f"/voice-models/{model['id']}", headers=bearer(bob)),
        client.get(f"/voice-models/{model['id']}/usage-stats", headers=bearer(bob)),
        activation.post(f"/voice-models/{model['id']}/deactivate", headers=bearer(bob)),
    ):
        assert response.status_code == 404
        body = response.get_json()
        assert body["code"] == "VOICE_MODEL_NOT_FOUND"
        assert body["error"].startswith("Voice model not found or access denied")
    assert client.get("/voice-models/nope", headers=bearer(bob)).status_code == 404
    assert client.get(f"/voice-models/{model['id']}").status_code == 401


# -- list --------------------------------------------------------------------------------


def test_list_pages_with_limit_offset_and_cursor(client, token):
    ann = token("ann")
    made = [create(client, ann, "ann", qualityScore=0.1 + i * 0.01)["id"] for i in range(7)]
    newest_first = list(reversed(made))
    first = client.get("/voice-models/user/ann?limit=3", headers=bearer(ann)).get_json()
    assert (first["total"], first["limit"], first["offset"]) == (7, 3, 0)
    assert [m["id"] for m in first["models"]] == newest_first[:3]
    second = client.get(
        f"/voice-models/user/ann?limit=3&cursor={first['nextCursor']}", headers=bearer(ann)
    ).get_json()
    assert [m["id"] for m in second["models"]] == newest_first[3:6]
    by_offset = client.get("/voice-models/user/ann?limit=3&offset=6", headers=bearer(ann))
    assert [m["id"] for m in by_offset.get_json()["models"]] == newest_first[6:]
    assert by_offset.get_json()["nextCursor"] is None


def test_list_filters_like_the_seed(client, token):
    ann = token("ann")
    create(client, ann, "ann", qualityScore=0.6)
    create(client, ann, "ann", provider="openai-tts", qualityScore=0.75)
    create(client, ann, "ann", provider="openai-tts", qualityScore=0.9)

    def ids(query):
        response = client.get(f"/voice-models/user/ann?{query}", headers=bearer(ann))
        assert response.status_code == 200, response.get_json()
        return sorted(m["qualityScore"] for m in response.get_json()["models"])

    assert ids("provider=openai-tts") == [0.75, 0.9]
    assert ids("isActive=true") == [0.9]
    assert ids("isActive=false&minQualityScore=0.7") == [0.75]
    assert ids("provider=xtts-v2&isActive=true&minQualityScore=0.7&limit=20&offset=0") == []


def forged_cursor(offset):
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def test_a_cursor_is_held_to_the_offset_cap(client, token):
    ann = token("ann")
    create(client, ann, "ann")
    at_cap = client.get(
        f"/voice-models/user/ann?cursor={forged_cursor(100_000)}", headers=bearer(ann)
    )
    assert at_cap.status_code == 200
    assert (at_cap.get_json()["offset"], at_cap.get_json()["models"]) == (100_000, [])
    for query in (
        "offset=100001",
        f"cursor={forged_cursor(100_001)}",
        f"cursor={forged_cursor(10**15)}",
    ):
        response = client.get(f"/voice-models/user/ann?{query}", headers=bearer(ann))
        assert response.status_code == 400, query
        assert response.get_json()["code"] == "VALIDATION_ERROR"
    past = client.get(
        f"/voice-models/user/ann?cursor={forged_cursor(100_001)}", headers=bearer(ann)
    )
    assert "cursor" in past.get_json()["error"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "offset=-1",
        "color=red",
        "minQualityScore=2",
        "provider=nope",
        "cursor=%%%",
    ],
)
def test_bad_list_queries_are_400(client, token, query):
    response = client.get(f"/voice-models/user/ann?{query}", headers=bearer(token("ann")))
    assert response.status_code == 400
    assert response.get_json()["code"] == "VALIDATION_ERROR"


# -- update and delete -------------------------------------------------------------------


def test_update_changes_given_fields_and_bumps_version(client, token):
    ann = token("ann")
    model = create(client, ann, "ann")
    response = client.put(
        f"/voice-models/{model['id']}",
        json={"userId": "ann", "qualityScore": 0.9, "metadata": {"updated": True}},
        headers=bearer(ann),
    )
    assert response.status_code == 200
    updated = response.get_json()
    assert (updated["qualityScore"], updated["metadata"], updated["version"]) == (
        0.9,
        {"updated": True},
        2,
    )
    assert updated["updatedAt"] > model["updatedAt"]
    assert updated["provider"] == model["provider"]
    bad = client.put(
        f"/voice-models/{model['id']}", json={"modelPath": "models/bob/x"}, headers=bearer(ann)
    )
    assert bad.get_json()["code"] == "INVALID_MODEL_PATH"
    assert (
        client.put(f"/voice-models/{model['id']}", json={}, headers=bearer(ann)).status_code == 400
    )
    long_name = client.put(
        f"/voice-models/{model['id']}", json={"name": "n" * 256}, headers=bearer(ann)
    )
    assert long_name.status_code == 400


def test_delete_soft_deletes_moves_files_and_activates_next_best(client, token):
    ann = token("ann")
    blobs, bucket = get_container().blobs, get_container().settings.models_bucket
    blobs.put(
        bucket, "models/ann/best/model.pth", b"weights", content_type="application/octet-stream"
    )
    best = create(client, ann, "ann", modelPath="models/ann/best/model.pth", qualityScore=0.95)
    blobs.put(
        bucket, f"models/ann/{best['id']}/config.json", b"{}", content_type="application/json"
    )
    low = create(client, ann, "ann", qualityScore=0.5)
    used = create(client, ann, "ann", qualityScore=0.7)
    newer_same = create(client, ann, "ann", qualityScore=0.7)
    use(used)
    failed = create(client, ann, "ann", qualityScore=0.79, status="failed")
    assert active_ids(client, ann, "ann") == [best["id"]]

    response = client.delete(
        f"/voice-models/{best['id']}", json={"userId": "ann"}, headers=bearer(ann)
    )
    assert response.status_code == 200
    result = response.get_json()
    assert result["wasActive"] is True
    # Same quality: the more used wins over the newer; the failed one never takes over.
    assert result["activeModelId"] == used["id"]
    assert sorted(result["movedFiles"]) == sorted(
        [f"deleted/ann/{best['id']}/config.json", "deleted/ann/best/model.pth"]
    )
    assert not blobs.exists(bucket, "models/ann/best/model.pth")
    assert blobs.get(bucket, "deleted/ann/best/model.pth") == b"weights"
    stored = get_container().store.get("voice_models", best["id"])
    assert stored is not None
    assert stored.data["deleted_at"] is not None
    assert client.get(f"/voice-models/{best['id']}", headers=bearer(ann)).status_code == 404
    assert client.delete(f"/voice-models/{best['id']}", headers=bearer(ann)).status_code == 404
    assert active_ids(client, ann, "ann") == [used["id"]]

    client.delete(f"/voice-models/{used['id']}", headers=bearer(ann))
    assert active_ids(client, ann, "ann") == [newer_same["id"]]
    client.delete(f"/voice-models/{newer_same['id']}", headers=bearer(ann))
    assert active_ids(client, ann, "ann") == [low["id"]]
    client.delete(f"/voice-models/{low['id']}", headers=bearer(ann))
    assert active_ids(client, ann, "ann") == []
    assert failed["isActive"] is False


# -- cache coherence and audit -----------------------------------------------------------


def test_a_read_after_a_write_is_never_stale(client, token, activation):
    ann = token("ann")
    model = create(client, ann, "ann", qualityScore=0.6)
    url = f"/voice-models/{model['id']}"
    for _ in range(2):  # the second read is a cache hit
        assert client.get(url, headers=bearer(ann)).get_json()["qualityScore"] == 0.6
    client.put(url, json={"qualityScore": 0.65}, headers=bearer(ann))
    assert client.get(url, headers=bearer(ann)).get_json()["qualityScore"] == 0.65

    listing = "/voice-models/user/ann"
    assert client.get(listing, headers=bearer(ann)).get_json()["total"] == 1
    other = create(client, ann, "ann", qualityScore=0.3)
    assert client.get(listing, headers=bearer(ann)).get_json()["total"] == 2
    activation.post(f"/voice-models/{other['id']}/activate", headers=bearer(ann))
    assert active_ids(client, ann, "ann") == [other["id"]]
    assert client.get(url, headers=bearer(ann)).get_json()["isActive"] is False

    stats = f"/voice-models/{model['id']}/usage-stats"
    analytics = "/voice-models/user/ann/analytics"
    assert client.get(stats, headers=bearer(ann)).get_json()["usageCount"] == 0
    assert client.get(analytics, headers=bearer(ann)).get_json()["totalUsageCount"] == 0
    use(model, cost=1.5, latency=400)
    assert client.get(stats, headers=bearer(ann)).get_json()["usageCount"] == 1
    assert client.get(analytics, headers=bearer(ann)).get_json()["totalCost"] == 1.5
    client.delete(url, headers=bearer(ann))
    assert client.get(analytics, headers=bearer(ann)).get_json()["totalModels"] == 1


def test_access_log_records_who_read_or_changed_a_model(client, token):
    ann, root = token("ann"), token("root", admin=True)
    model = create(client, ann, "ann")
    client.get(f"/voice-models/{model['id']}", headers=bearer(ann))
    client.get("/voice-models/user/ann", headers=bearer(root))
    client.put(f"/voice-models/{model['id']}", json={"name": "Mine"}, headers=bearer(ann))
    response = client.get(f"/voice-models/{model['id']}/access-log", headers=bearer(ann))
    assert response.status_code == 200
    entries = response.get_json()["entries"]
    assert [(e["actorId"], e["action"]) for e in entries] == [
        ("ann", "update"),
        ("root", "list"),
        ("ann", "read"),
        ("ann", "create"),
    ]
    assert all(e["ownerId"] == "ann" and e["requestId"] for e in entries)
    store = get_container().store
    assert store.count(Query(ACCESS_LOG).where("actor_id", "==", "root")) == 1
    bob = token("bob")
    assert (
        client.get(f"/voice-models/{model['id']}/access-log", headers=bearer(bob)).status_code
        == 404
    )


def _deep(levels):
    value = {"leaf": 1}
    for _ in range(levels):
        value = {"k": value}
    return value


def test_free_form_metadata_is_bounded_on_update_and_nothing_is_stored(client, token):
    ann = token("ann")
    model = create(client, ann, "ann", metadata={"voiceId": "en-US"})
    for metadata in (_deep(300), _deep(9), {"k": "x" * 20_000}):
        response = client.put(
            f"/voice-models/{model['id']}", json={"metadata": metadata}, headers=bearer(ann)
        )
        assert response.status_code == 400, response.get_json()
    nan = client.put(
        f"/voice-models/{model['id']}",
        data='{"metadata": {"x": NaN}}',
        content_type="application/json",
        headers=bearer(ann),
    )
    assert nan.status_code == 400
    stored = client.get(f"/voice-models/{model['id']}", headers=bearer(ann)).get_json()
    assert stored["metadata"] == {"voiceId": "en-US"}


def test_an_old_record_with_unservable_metadata_reads_as_empty_for_everyone(
    client, token, activation
):
    ann, bob = token("ann"), token("bob")
    model = create(client, ann, "ann")
    client.post(
        f"/voice-models/{model['id']}/share", json={"targetUserIds": ["bob"]}, headers=bearer(ann)
    )
    # Written before the bounds existed: 300 levels deep, straight into the store's file.
    with sqlite3.connect(get_container().settings.sqlite_path) as conn:
        (data,) = conn.execute(
            'SELECT data FROM "c_voice_models" WHERE id = ?', (model["id"],)
        ).fetchone()
        document = json.loads(data)
        document["metadata"] = _deep(300)
        conn.execute(
            'UPDATE "c_voice_models" SET data = ? WHERE id = ?',
            (json.dumps(document), model["id"]),
        )
    deps().invalidate_models("ann", [model["id"]])
    for path, who in (
        (f"/voice-models/{model['id']}", ann),
        ("/voice-models/user/ann", ann),
        (f"/voice-models/{model['id']}/export", ann),
        ("/voice-models/user/bob/shared", bob),
    ):
        response = client.get(path, headers=bearer(who))
        assert response.status_code == 200, (path, response.get_json())
    one = client.get(f"/voice-models/{model['id']}", headers=bearer(ann)).get_json()
    assert one["metadata"] == {}
    backup = client.post("/voice-models/user/ann/backup", headers=bearer(ann))
    assert backup.status_code == 201
    compared = client.post(
        "/voice-models/compare", json={"modelIds": [model["id"]]}, headers=bearer(bob)
    )
    assert compared.status_code == 200, compared.get_json()
