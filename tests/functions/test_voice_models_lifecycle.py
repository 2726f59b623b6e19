"""Voice models over their life: usage, compare, select-best, sharing, export, backup and
restore, cleanup and expiry, rate limits."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.bootstrap import get_container, reset_container
from shared.model import utcnow
from shared.voice_models.cleanup import CLEANUP_TASK
from tests.functions import test_voice_models as base
from tests.functions.conftest import bearer
from tests.functions.test_voice_models import active_ids, create, use

# The fixtures of test_voice_models, shared by name.
client, activation, generous_limits = base.client, base.activation, base.generous_limits


def backdate(model, *, days):
    """Make a model look created ``days`` ago (the store only; cleanup reads the store)."""
    get_container().store.update(
        "voice_models", model["id"], {"created_at": utcnow() - timedelta(days=days)}
    )


# -- usage, analytics, compare, select-best ----------------------------------------------


def test_usage_stats_and_analytics_follow_recorded_usage(client, token):
    ann = token("ann")
    blobs, bucket = get_container().blobs, get_container().settings.models_bucket
    blobs.put(
        bucket, "models/ann/a.pth", b"x" * 1024 * 1024, content_type="application/octet-stream"
    )
    a = create(client, ann, "ann", modelPath="models/ann/a.pth", qualityScore=0.9)
    b = create(client, ann, "ann", provider="openai-tts", qualityScore=0.7)
    use(a, cost=2.5, latency=600, rating=4)
    use(a, cost=1.0, latency=700, rating=5)
    use(b, cost=0.25, latency=300)
    stats = client.get(f"/voice-models/{a['id']}/usage-stats", headers=bearer(ann)).get_json()
    assert stats["modelId"] == a["id"]
    assert (stats["usageCount"], stats["totalCost"], stats["averageLatency"]) == (2, 3.5, 650)
    assert stats["qualityRating"] == 4.5
    assert stats["lastUsed"].endswith("Z")
    analytics = client.get("/voice-models/user/ann/analytics", headers=bearer(ann)).get_json()
    assert analytics == {
        "totalModels": 2,
        "activeModels": 1,
        "modelsByProvider": {"xtts-v2": 1, "openai-tts": 1},
        "averageQualityScore": 0.8,
        "totalUsageCount": 3,
        "totalCost": 3.75,
        "storageUsedMb": 1.0,
        "lastUsed": analytics["lastUsed"],
    }
    assert client.get("/voice-models/user/bob/analytics", headers=bearer(ann)).status_code == 403


def test_compare_shows_only_readable_models_side_by_side(client, token):
    ann, bob = token("ann"), token("bob")
    a = create(client, ann, "ann", qualityScore=0.9)
    b = create(client, ann, "ann", qualityScore=0.6)
    hidden = create(client, bob, "bob")
    use(b, cost=1.0, latency=100)
    response = client.post(
        "/voice-models/compare",
        json={"modelIds": [a["id"], b["id"], hidden["id"], "missing"], "userId": "ann"},
        headers=bearer(ann),
    )
    assert response.status_code == 200
    body = response.get_json()
    assert [entry["model"]["id"] for entry in body["models"]] == [a["id"], b["id"]]
    assert [entry["usageStats"]["usageCount"] for entry in body["models"]] == [0, 1]
    assert body["notFound"] == [hidden["id"], "missing"]
    too_many = {"modelIds": [str(i) for i in range(21)]}
    assert (
        client.post("/voice-models/compare", json=too_many, headers=bearer(ann)).status_code == 400
    )


def test_select_best_honours_criteria_and_says_why_none_qualifies(client, token):
    ann = token("ann")
    fast = create(client, ann, "ann", provider="openai-tts", qualityScore=0.82)
    slow = create(client, ann, "ann", qualityScore=0.95)
    create(client, ann, "ann", qualityScore=0.99, status="failed")
    use(fast, latency=400)
    use(slow, latency=1500)

    def best(criteria):
        return client.post(
            "/voice-models/select-best",
            json={"userId": "ann", "criteria": criteria},
            headers=bearer(ann),
        )

    assert best({}).get_json()["model"]["id"] == slow["id"]
    chosen = best({"minQualityScore": 0.8, "maxLatency": 1000}).get_json()
    assert chosen["model"]["id"] == fast["id"]
    assert chosen["usageStats"]["averageLatency"] == 400
    preferred = best({"preferredProvider": "openai-tts"}).get_json()
    assert (preferred["model"]["id"], preferred["matchedPreferredProvider"]) == (fast["id"], True)
    fallback = best({"preferredProvider": "elevenlabs"}).get_json()
    assert (fallback["model"]["id"], fallback["matchedPreferredProvider"]) == (slow["id"], False)
    none = best({"minQualityScore": 0.9, "maxLatency": 1000})
    assert none.status_code == 404
    body = none.get_json()
    assert body["code"] == "NO_QUALIFYING_VOICE_MODEL"
    assert "1 below minQualityScore 0.9" in body["error"]
    assert "1 over maxLatency 1000.0 ms" in body["error"]
    assert best({"minQualityScore": 1.5}).status_code == 400
    empty = client.post("/voice-models/select-best", json={}, headers=bearer(token("bob")))
    assert empty.get_json()["code"] == "NO_QUALIFYING_VOICE_MODEL"


# -- sharing and export ------------------------------------------------------------------


def test_share_list_shared_and_revoke(client, token):
    ann, bob, cid = token("ann"), token("bob"), token("cid")
    model = create(client, ann, "ann")
    response = client.post(
        f"/voice-models/{model['id']}/share",
        json={"ownerId": "ann", "targetUserIds": ["bob", "cid", "bob"], "permissions": "use"},
        headers=bearer(ann),
    )
    assert response.status_code == 200
    assert sorted(s["targetUserId"] for s in response.get_json()["shares"]) == ["bob", "cid"]
    shared = client.get("/voice-models/user/bob/shared", headers=bearer(bob)).get_json()["models"]
    assert [(s["model"]["id"], s["ownerId"], s["permission"]) for s in shared] == [
        (model["id"], "ann", "use")
    ]
    assert client.get("/voice-models/user/ann/shared", headers=bearer(bob)).status_code == 403
    bad = [
        {"targetUserIds": ["ann"]},
        {"targetUserIds": []},
        {"targetUserIds": ["bob"], "permissions": "edit"},
        {"targetUserIds": ["me"]},  # "me" names the caller, here the owner
    ]
    for body in bad:
        assert (
            client.post(
                f"/voice-models/{model['id']}/share", json=body, headers=bearer(ann)
            ).status_code
            == 400
        )
    by_bob = client.post(
        f"/voice-models/{model['id']}/share", json={"targetUserIds": ["dan"]}, headers=bearer(bob)
    )
    assert by_bob.status_code == 403
    assert (
        client.delete(f"/voice-models/{model['id']}/share/bob", headers=bearer(ann)).status_code
        == 204
    )
    assert client.get(f"/voice-models/{model['id']}", headers=bearer(bob)).status_code == 404
    assert client.get(f"/voice-models/{model['id']}", headers=bearer(cid)).status_code == 200
    assert (
        client.get("/voice-models/user/bob/shared", headers=bearer(bob)).get_json()["models"] == []
    )


def test_me_names_the_caller_and_a_grantee_may_give_up_their_own_grant(client, token):
    ann, bob, cid, dan, eve = (token(u) for u in ("ann", "bob", "cid", "dan", "eve"))
    model = create(client, ann, "ann")
    url = f"/voice-models/{model['id']}"
    shared = client.post(
        f"{url}/share", json={"targetUserIds": ["bob", "cid", "dan"]}, headers=bearer(ann)
    )
    assert shared.status_code == 200

    # A grantee may not take anyone else's grant away, nor the owner's model.
    for other in ("cid", "ann", "eve"):
        assert client.delete(f"{url}/share/{other}", headers=bearer(dan)).status_code == 403
    assert client.get(url, headers=bearer(cid)).status_code == 200
    # Who has no grant cannot see the model: naming themselves changes nothing to that.
    for named in ("me", "eve", "bob"):
        assert client.delete(f"{url}/share/{named}", headers=bearer(eve)).status_code == 404
    assert client.get(url, headers=bearer(bob)).status_code == 200

    assert client.delete(f"{url}/share/me", headers=bearer(bob)).status_code == 204
    assert client.get(url, headers=bearer(bob)).status_code == 404
    assert client.get("/voice-models/user/bob/shared", headers=bearer(bob)).get_json() == {
        "models": []
    }
    assert client.delete(f"{url}/share/cid", headers=bearer(cid)).status_code == 204
    assert client.get(url, headers=bearer(cid)).status_code == 404
    assert client.get(url, headers=bearer(dan)).status_code == 200

    # The owner has no grant to give up: "me" is the owner, as when sharing with "me".
    refused = client.delete(f"{url}/share/me", headers=bearer(ann))
    assert refused.status_code == 400
    assert refused.get_json()["code"] == "VALIDATION_ERROR"
    assert client.delete(f"{url}/share/dan", headers=bearer(ann)).status_code == 204
    assert client.get(url, headers=bearer(dan)).status_code == 404

    log = client.get(f"{url}/access-log", headers=bearer(ann)).get_json()["entries"]
    revokes = [(e["actorId"], e["action"]) for e in log if e["action"].startswith("revoke")]
    assert revokes == [("ann", "revoke:dan"), ("cid", "revoke:cid"), ("bob", "revoke:bob")]


def test_export_returns_model_usage_analytics_and_signed_urls(client, token):
    ann = token("ann")
    blobs, bucket = get_container().blobs, get_container().settings.models_bucket
    blobs.put(
        bucket, "models/ann/exported.pth", b"weights", content_type="application/octet-stream"
    )
    model = create(client, ann, "ann", modelPath="models/ann/exported.pth", metadata={"v": 2})
    use(model, cost=0.5, latency=100)
    response = client.get(f"/voice-models/{model['id']}/export?userId=ann", headers=bearer(ann))
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"]["id"] == model["id"]
    assert body["metadata"] == {"v": 2}
    assert body["usageStats"]["usageCount"] == 1
    assert body["analytics"]["totalModels"] == 1
    assert [f["name"] for f in body["files"]] == ["models/ann/exported.pth"]
    assert body["signedUrl"] == body["files"][0]["signedUrl"]
    assert "exported.pth" in body["signedUrl"]
    assert body["expiresAt"] > model["createdAt"]


# -- backup and restore ------------------------------------------------------------------


def test_backup_delete_all_restore_gives_back_identical_models(client, activation, token):
    ann = token("ann")
    blobs, bucket = get_container().blobs, get_container().settings.models_bucket
    blobs.put(bucket, "models/ann/one.pth", b"one", content_type="application/octet-stream")
    create(client, ann, "ann", modelPath="models/ann/one.pth", qualityScore=0.7, metadata={"k": 1})
    second = create(client, ann, "ann", provider="espeak", qualityScore=0.6)
    third = create(client, ann, "ann", provider="elevenlabs", qualityScore=0.4)
    activation.post(f"/voice-models/{second['id']}/activate", headers=bearer(ann))
    use(third, cost=1.25, latency=300, rating=3)
    client.post(
        f"/voice-models/{third['id']}/share", json={"targetUserIds": ["bob"]}, headers=bearer(ann)
    )
    before = client.get("/voice-models/user/ann?limit=100", headers=bearer(ann)).get_json()[
        "models"
    ]
    stats_before = client.get(
        f"/voice-models/{third['id']}/usage-stats", headers=bearer(ann)
    ).get_json()

    backup = client.post("/voice-models/user/ann/backup", headers=bearer(ann))
    assert backup.status_code == 201
    path = backup.get_json()["backupPath"]
    assert path.startswith(f"gs://{bucket}/backups/ann/backup_")
    assert path.endswith(".json")
    assert backup.get_json()["modelCount"] == 3
    saved = json.loads(blobs.get(bucket, path.removeprefix(f"gs://{bucket}/")))
    assert {m["model"]["id"] for m in saved["models"]} == {m["id"] for m in before}
    assert [s["targetUserId"] for m in saved["models"] for s in m["shares"]] == ["bob"]

    for model in before:
        assert client.delete(f"/voice-models/{model['id']}", headers=bearer(ann)).status_code == 200
    assert client.get("/voice-models/user/ann", headers=bearer(ann)).get_json()["total"] == 0
    assert blobs.exists(bucket, "deleted/ann/one.pth")

    restored = client.post(
        "/voice-models/user/ann/restore",
        json={"backupPath": path, "overwriteExisting": False, "activateRestored": True},
        headers=bearer(ann),
    )
    assert restored.status_code == 200, restored.get_json()
    assert sorted(restored.get_json()["restored"]) == sorted(m["id"] for m in before)
    assert restored.get_json()["activeModelId"] == second["id"]
    after = client.get("/voice-models/user/ann?limit=100", headers=bearer(ann)).get_json()["models"]
    assert after == before
    assert blobs.get(bucket, "models/ann/one.pth") == b"one"
    stats_after = client.get(
        f"/voice-models/{third['id']}/usage-stats", headers=bearer(ann)
    ).get_json()
    assert stats_after == stats_before
    assert (
        client.get(f"/voice-models/{third['id']}", headers=bearer(token("bob"))).status_code == 200
    )

    again = client.post(
        "/voice-models/user/ann/restore", json={"backupPath": path}, headers=bearer(ann)
    )
    assert again.get_json()["skipped"] == restored.get_json()["restored"]
    client.put(f"/voice-models/{third['id']}", json={"qualityScore": 0.1}, headers=bearer(ann))
    overwrite = client.post(
        "/voice-models/user/ann/restore",
        json={"backupPath": path, "overwriteExisting": True},
        headers=bearer(ann),
    )
    assert len(overwrite.get_json()["restored"]) == 3
    assert (
        client.get(f"/voice-models/{third['id']}", headers=bearer(ann)).get_json()["qualityScore"]
        == 0.4
    )
    assert active_ids(client, ann, "ann") == [second["id"]]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("backups/bob/backup_1.json", 403, "ACCESS_DENIED"),
        ("gs://voice-models/backups/bob/backup_1.json", 403, "ACCESS_DENIED"),
        ("backups/ann/../bob/backup_1.json", 400, "INVALID_BACKUP_PATH"),
        ("models/ann/backup_1.json", 400, "INVALID_BACKUP_PATH"),
        ("gs://elsewhere/backups/ann/backup_1.json", 400, "INVALID_BACKUP_PATH"),
        ("backups/ann/sub/backup_1.json", 400, "INVALID_BACKUP_PATH"),
        ("/etc/passwd", 400, "INVALID_BACKUP_PATH"),
        ("backups/ann/backup_missing.json", 404, "BACKUP_NOT_FOUND"),
    ],
)
def test_restore_reads_only_the_callers_own_backups(client, token, path, status, code):
    response = client.post(
        "/voice-models/user/ann/restore", json={"backupPath": path}, headers=bearer(token("ann"))
    )
    assert (response.status_code, response.get_json()["code"]) == (status, code)


def test_restore_never_activates_a_failed_model_a_backup_says_was_active(client, token):
    # A backup written before a failed model could no longer stay active says it was.
    ann = token("ann")
    blobs, bucket = get_container().blobs, get_container().settings.models_bucket
    good = create(client, ann, "ann", provider="espeak", qualityScore=0.6)
    bad = create(client, ann, "ann", provider="espeak", qualityScore=0.9)
    path = client.post("/voice-models/user/ann/backup", headers=bearer(ann)).get_json()
    name = path["backupPath"].removeprefix(f"gs://{bucket}/")
    saved = json.loads(blobs.get(bucket, name))
    for entry in saved["models"]:
        if entry["model"]["id"] == bad["id"]:
            assert entry["model"]["isActive"] is True
            entry["model"]["status"] = "failed"
    blobs.put(bucket, name, json.dumps(saved).encode(), content_type="application/json")
    for model in (good, bad):
        assert client.delete(f"/voice-models/{model['id']}", headers=bearer(ann)).status_code == 200
    restored = client.post(
        "/voice-models/user/ann/restore",
        json={"backupPath": name, "activateRestored": True},
        headers=bearer(ann),
    ).get_json()
    assert restored["activeModelId"] == good["id"]
    assert active_ids(client, ann, "ann") == [good["id"]]


def test_restore_refuses_a_file_that_is_not_this_users_backup(client, token):
    blobs, bucket = get_container().blobs, get_container().settings.models_bucket
    blobs.put(
        bucket,
        "backups/ann/backup_x.json",
        b'{"format": 1, "userId": "bob", "models": []}',
        content_type="application/json",
    )
    response = client.post(
        "/voice-models/user/ann/restore",
        json={"backupPath": "backups/ann/backup_x.json"},
        headers=bearer(token("ann")),
    )
    assert response.status_code == 400


# -- cleanup and expiry ------------------------------------------------------------------


def test_cleanup_removes_only_models_meeting_every_criterion(client, activation, token):
    ann, root = token("ann"), token("root", admin=True)
    blobs, bucket = get_container().blobs, get_container().settings.models_bucket
    keeper = create(client, ann, "ann", qualityScore=0.4)  # first: active
    blobs.put(bucket, "models/ann/stale.pth", b"s", content_type="application/octet-stream")
    stale = create(client, ann, "ann", modelPath="models/ann/stale.pth", qualityScore=0.4)
    young = create(client, ann, "ann", qualityScore=0.4)
    good = create(client, ann, "ann", qualityScore=0.5)
    recently_used = create(client, ann, "ann", qualityScore=0.2)
    long_unused = create(client, ann, "ann", qualityScore=0.2)
    for model in (keeper, stale, good, recently_used, long_unused):
        backdate(model, days=200)
    backdate(young, days=170)
    use(recently_used, now=utcnow() - timedelta(days=10))
    use(long_unused, now=utcnow() - timedelta(days=45))

    assert client.post("/voice-models/cleanup", json={}, headers=bearer(ann)).status_code == 403
    dry = client.post("/voice-models/cleanup", json={"dryRun": True}, headers=bearer(root))
    assert dry.status_code == 200
    expected = sorted([stale["id"], long_unused["id"]])
    assert sorted(c["modelId"] for c in dry.get_json()["wouldRemove"]) == expected
    assert dry.get_json()["removed"] == []
    assert client.get(f"/voice-models/{stale['id']}", headers=bearer(ann)).status_code == 200

    expiring = client.get("/voice-models/expiring?userId=ann", headers=bearer(ann)).get_json()
    soon = {c["modelId"]: c for c in expiring["models"]}
    # young is 170 days old: eligible in about 12 days; recently_used in about 20 days.
    assert set(soon) == {stale["id"], long_unused["id"], young["id"], recently_used["id"]}
    assert soon[young["id"]]["eligibleAt"] > utcnow().isoformat()
    assert client.get("/voice-models/expiring?userId=bob", headers=bearer(ann)).status_code == 403

    done = client.post("/voice-models/cleanup", headers=bearer(root)).get_json()
    assert sorted(c["modelId"] for c in done["removed"]) == expected
    assert client.get(f"/voice-models/{stale['id']}", headers=bearer(ann)).status_code == 404
    assert blobs.exists(bucket, "deleted/ann/stale.pth")
    assert not blobs.exists(bucket, "models/ann/stale.pth")
    left = client.get("/voice-models/user/ann?limit=100", headers=bearer(ann)).get_json()
    assert left["total"] == 4
    assert active_ids(client, ann, "ann") == [keeper["id"]]
    again = client.post("/voice-models/cleanup", json={"dryRun": False}, headers=bearer(root))
    assert again.get_json()["removed"] == []


def test_cleanup_runs_daily_as_a_scheduled_task(client, token):
    ann = token("ann")
    create(client, ann, "ann", qualityScore=0.9)
    old = create(client, ann, "ann", qualityScore=0.1)
    backdate(old, days=400)
    runtime = get_container().tasks
    assert CLEANUP_TASK in runtime.registry.names()
    job = runtime.jobs.get("voice-model-cleanup")
    assert (job.cron, job.task_type) == ("0 3 * * *", CLEANUP_TASK)
    from shared.tasks.base import TaskContext

    task = runtime.registry.get(CLEANUP_TASK)
    assert task is not None
    context = TaskContext("t1", job.queue, CLEANUP_TASK, 1, 5, utcnow(), get_container().store)
    task.handler(task.payload_model.model_validate(dict(job.payload)), context)
    assert client.get(f"/voice-models/{old['id']}", headers=bearer(ann)).status_code == 404


# -- rate limits -------------------------------------------------------------------------


@pytest.fixture
def seed_limits(function_client, platform, monkeypatch):
    # The production numbers (seed 001), but for analytics.
    monkeypatch.setenv("VOICE_RATE_LIMIT_MODEL_CREATES_PER_HOUR", "5")
    monkeypatch.setenv("VOICE_RATE_LIMIT_MODEL_UPDATES_PER_HOUR", "20")
    monkeypatch.setenv("VOICE_RATE_LIMIT_BACKUPS_PER_DAY", "2")
    monkeypatch.setenv("VOICE_RATE_LIMIT_ANALYTICS_PER_HOUR", "3")
    reset_container()
    return function_client("voice_models")


def test_rate_limits_answer_429_with_retry_after(seed_limits, token):
    limited_client, ann = seed_limits, token("ann")
    for _ in range(5):
        create(limited_client, ann, "ann")
    response = limited_client.post(
        "/voice-models",
        json={"provider": "xtts-v2", "modelPath": "models/ann/model.pth", "qualityScore": 0.6},
        headers=bearer(ann),
    )
    assert response.status_code == 429
    refused = response.get_json()
    assert refused["code"] == "RATE_LIMITED"
    assert "5 per hour" in refused["error"]
    # The first of the five calls leaves the hour in just under an hour: that is the wait.
    assert 3500 <= int(response.headers["Retry-After"]) <= 3600
    assert create(limited_client, token("bob"), "bob")["userId"] == "bob"

    for _ in range(3):
        assert (
            limited_client.get("/voice-models/user/ann/analytics", headers=bearer(ann)).status_code
            == 200
        )
    limited = limited_client.get("/voice-models/user/ann/analytics", headers=bearer(ann))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600

    for _ in range(2):
        assert (
            limited_client.post("/voice-models/user/ann/backup", headers=bearer(ann)).status_code
            == 201
        )
    third = limited_client.post("/voice-models/user/ann/backup", headers=bearer(ann))
    assert third.status_code == 429
    assert 1 <= int(third.headers["Retry-After"]) <= 86400


@pytest.fixture
def tight_limits(function_client, platform, monkeypatch):
    monkeypatch.setenv("VOICE_RATE_LIMIT_MODEL_CREATES_PER_HOUR", "3")
    monkeypatch.setenv("VOICE_RATE_LIMIT_MODEL_UPDATES_PER_HOUR", "2")
    monkeypatch.setenv("VOICE_RATE_LIMIT_BACKUPS_PER_DAY", "1")
    monkeypatch.setenv("VOICE_RATE_LIMIT_ANALYTICS_PER_HOUR", "1000")
    reset_container()
    return function_client("voice_models")


def test_refused_updates_do_not_use_up_the_update_limit(tight_limits, token):
    limited_client, ann = tight_limits, token("ann")
    kept = create(limited_client, ann, "ann")
    gone = create(limited_client, ann, "ann")
    assert (
        limited_client.delete(f"/voice-models/{gone['id']}", headers=bearer(ann)).status_code == 200
    )
    # The deleted model is refused inside the update's transaction, after the limit counted it.
    for _ in range(4):
        refused = limited_client.put(
            f"/voice-models/{gone['id']}", json={"name": "again"}, headers=bearer(ann)
        )
        assert refused.status_code == 404, refused.get_json()
    for name in ("first", "second"):
        changed = limited_client.put(
            f"/voice-models/{kept['id']}", json={"name": name}, headers=bearer(ann)
        )
        assert changed.status_code == 200, changed.get_json()
    third = limited_client.put(
        f"/voice-models/{kept['id']}", json={"name": "third"}, headers=bearer(ann)
    )
    assert third.status_code == 429


def test_refused_restores_do_not_use_up_the_backup_limit(tight_limits, token):
    limited_client, ann = tight_limits, token("ann")
    bucket = get_container().settings.models_bucket
    missing = {"backupPath": f"gs://{bucket}/backups/ann/backup_20260101T000000000000Z.json"}
    for _ in range(3):
        refused = limited_client.post(
            "/voice-models/user/ann/restore", json=missing, headers=bearer(ann)
        )
        assert refused.status_code == 404, refused.get_json()
    backup = limited_client.post("/voice-models/user/ann/backup", headers=bearer(ann))
    assert backup.status_code == 201, backup.get_json()
    again = limited_client.post("/voice-models/user/ann/backup", headers=bearer(ann))
    assert again.status_code == 429
