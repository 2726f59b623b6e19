"""Deleting an account erases every document and object of the user, whatever created them.

Dave uses every feature (profile, voice models with files, updates, shares, backups,
exports and deletes; syntheses short and long, dialogue, OpenAI speech; files; voice
samples with their embeddings, a signed upload never used, a trained model), while
Carol, who keeps her account, uses Dave's shared model. After ``DELETE /users/me`` no
document anywhere in the store holds Dave's id, no object he made is left, his signed URLs
stop working, and Carol still has all of hers. The check reads the embedded store's file
and the object index directly, so a collection or bucket nobody thought of is caught too.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
from io import BytesIO
from typing import Any

import pytest

from functions.training_completed import training_completed
from shared.blobs.events import finalized_event
from shared.bootstrap import get_container
from shared.store import Query
from shared.synthesis.repository import SYNTHESIS_JOBS
from shared.users.accounts import ACCOUNT_DELETIONS
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.conftest import bearer
from tests.support.voice_samples import sample_file

espeak = fx.espeak
LONG = "This sentence is one of many in a long text. " * 60


@pytest.fixture
def clients(function_client, espeak, monkeypatch):
    for name in (
        "VOICE_RATE_LIMIT_MODEL_CREATES_PER_HOUR",
        "VOICE_RATE_LIMIT_MODEL_UPDATES_PER_HOUR",
        "VOICE_RATE_LIMIT_ANALYTICS_PER_HOUR",
        "VOICE_RATE_LIMIT_BACKUPS_PER_DAY",
    ):
        monkeypatch.setenv(name, "1000")
    container = get_container()
    container.tasks.start()
    names = ("users", "voice_models", "voice_model_activation", "synthesis", "files", "samples")
    return {name: function_client(name) for name in names} | {
        "openai": function_client("openai_speech")
    }


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def objects() -> set[tuple[str, str]]:
    index = get_container().settings.blobs_path / "index.sqlite3"
    with sqlite3.connect(index) as conn:
        return {
            (bucket, bytes(name).decode())
            for bucket, name in conn.execute("SELECT bucket, name FROM objects")
        }


def documents_naming(user_id: str) -> list[tuple[str, str]]:
    """Every (table, document id) whose id or data holds ``user_id``, in any collection."""
    found = []
    with sqlite3.connect(get_container().settings.sqlite_path) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            if not table.startswith("c_") or table == f"c_{ACCOUNT_DELETIONS}":
                continue
            for doc_id, data in conn.execute(f'SELECT id, data FROM "{table}"'):  # noqa: S608
                if user_id in doc_id or f'"{user_id}"' in data or f":{user_id}" in data:
                    found.append((table, doc_id))
    return found


def fetch_status(url: str) -> int:
    parts = urllib.parse.urlsplit(url)
    bucket, _, name = parts.path.removeprefix("/_blobs/").partition("/")
    return 200 if get_container().blobs.exists(bucket, urllib.parse.unquote(name)) else 404


def wait_for_job(client: Any, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = ok(client.get(f"/synthesis/jobs/{job_id}", headers=headers))
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError("the long job did not finish")


def use_samples(samples: Any, dave: dict[str, str]) -> None:
    """Dave uploads samples (one public, one by signed URL never used), searches, trains."""
    sample_ids = []
    for index, public in ((0, "false"), (1, "true")):
        created = ok(
            samples.post(
                "/samples",
                data={
                    "file": (BytesIO(sample_file("en-US+m2", index)), "t.wav"),
                    "isPublic": public,
                },
                headers=dave,
                content_type="multipart/form-data",
            ),
            201,
        )
        sample_ids.append(created["id"])
    ok(
        samples.post(
            "/samples/upload-url",
            json={"contentType": "audio/wav", "sizeBytes": 1000},
            headers=dave,
        ),
        201,
    )
    deadline = time.monotonic() + 60
    while not all(
        ok(samples.get(f"/samples/{i}", headers=dave))["status"] == "ready" for i in sample_ids
    ):
        assert time.monotonic() < deadline, "the samples were not processed"
        time.sleep(0.1)
    ok(samples.get(f"/samples/{sample_ids[0]}/similar?scope=public", headers=dave))
    container = get_container()
    container.tasks.stop()  # an external trainer writes this model's artifacts
    model = ok(
        samples.post("/voice-models/train", json={"sampleIds": sample_ids}, headers=dave), 202
    )
    folder = f"models/dave/{model['id']}/"
    bucket = container.settings.models_bucket
    container.blobs.put(bucket, folder + "model.pth", b"w" * 64, content_type="application/x")
    info = container.blobs.put(
        bucket,
        folder + "metadata.json",
        json.dumps(
            {
                "status": "completed",
                "voice": {"voiceId": "speaker-1"},
                "qualityComponents": dict.fromkeys(
                    ("similarity", "naturalness", "clarity", "consistency"), 0.5
                ),
            }
        ).encode(),
        content_type="application/json",
    )
    training_completed(finalized_event(info))
    container.tasks.start()


def test_nothing_of_a_deleted_user_remains(clients, token):
    dave, carol = bearer(token("dave")), bearer(token("carol"))
    users, models = clients["users"], clients["voice_models"]
    synthesis, files = clients["synthesis"], clients["files"]
    container = get_container()
    bucket = container.settings.models_bucket

    ok(users.post("/users", json={"email": "carol@example.com"}, headers=carol), 201)
    carols_own = ok(
        synthesis.post(
            "/synthesize", json={"text": "Carol here.", "voice": "espeak:en-US"}, headers=carol
        )
    )
    before = objects()

    # Dave uses everything.
    ok(
        users.post("/users", json={"email": "dave@example.com", "firstName": "Dave"}, headers=dave),
        201,
    )
    container.blobs.put(
        bucket, "models/dave/m1/model.bin", b"w" * 100, content_type="application/octet-stream"
    )
    first = ok(
        models.post(
            "/voice-models",
            json={
                "provider": "espeak",
                "modelPath": "models/dave/m1/model.bin",
                "qualityScore": 0.9,
                "metadata": {"voiceId": "en-US"},
            },
            headers=dave,
        ),
        201,
    )
    second = ok(
        models.post(
            "/voice-models",
            json={
                "provider": "espeak",
                "modelPath": "models/dave/m2/model.bin",
                "qualityScore": 0.5,
            },
            headers=dave,
        ),
        201,
    )
    ok(models.put(f"/voice-models/{second['id']}", json={"name": "Second"}, headers=dave))
    ok(models.get(f"/voice-models/{first['id']}", headers=dave))
    ok(models.get("/voice-models/user/dave", headers=dave))
    ok(models.get("/voice-models/user/dave/analytics", headers=dave))
    ok(models.get(f"/voice-models/{first['id']}/usage-stats", headers=dave))
    ok(models.get(f"/voice-models/{first['id']}/export", headers=dave))
    ok(models.post("/voice-models/user/dave/backup", headers=dave), 201)
    ok(
        models.post(
            f"/voice-models/{first['id']}/share", json={"targetUserIds": ["carol"]}, headers=dave
        )
    )
    ok(models.delete(f"/voice-models/{second['id']}", headers=dave))
    said = ok(
        synthesis.post(
            "/synthesize", json={"text": "Hello from Dave.", "voice": first["id"]}, headers=dave
        )
    )
    plain = ok(
        synthesis.post(
            "/synthesize", json={"text": "Carol here.", "voice": "espeak:en-US"}, headers=dave
        )
    )
    started = ok(
        synthesis.post("/synthesize", json={"text": LONG, "voice": "espeak:en-US"}, headers=dave),
        202,
    )
    wait_for_job(synthesis, dave, started["jobId"])
    ok(
        synthesis.post(
            "/synthesize/dialogue",
            json={
                "turns": [
                    {"speaker": "A", "voice": "espeak:en-US", "text": "Hi."},
                    {"speaker": "B", "voice": "espeak:en-US+f3", "text": "Hello."},
                ]
            },
            headers=dave,
        )
    )
    speech = clients["openai"].post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": "Hi there."},
        headers=dave,
    )
    assert speech.status_code == 200
    use_samples(clients["samples"], dave)
    ok(files.get(f"/files/{said['audioFileId']}/info", headers=dave))
    ok(files.patch(f"/files/{said['audioFileId']}", json={"isPublic": True}, headers=dave))

    # Carol uses Dave's shared model.
    ok(models.get("/voice-models/user/carol/shared", headers=carol))
    carols_use = ok(
        synthesis.post(
            "/synthesize",
            json={"text": "Carol speaks as Dave.", "voice": first["id"]},
            headers=carol,
        )
    )
    assert documents_naming("dave")  # the scan does see Dave's data

    response = users.delete("/users/me", headers=dave)
    assert response.status_code == 204

    assert documents_naming("dave") == []
    carols_files = {
        (container.settings.audio_bucket, path)
        for document in container.store.stream(Query("audio_files").where("user_id", "==", "carol"))
        for path in (document.data["file_path"], document.data["file_path"] + ".timestamps.json")
    }
    leftovers = objects() - before - carols_files
    assert leftovers == set()
    for made in (said, plain):
        assert fetch_status(made["downloadUrl"]) == 404
    assert container.store.count(Query(SYNTHESIS_JOBS).where("user_id", "==", "dave")) == 0
    # Carol keeps everything of hers, including audio she made with Dave's model.
    assert fetch_status(carols_own["downloadUrl"]) == 200
    assert fetch_status(carols_use["downloadUrl"]) == 200
    assert ok(users.get("/users/me", headers=carol))["email"] == "carol@example.com"
    assert ok(models.get("/voice-models/user/carol/shared", headers=carol))["models"] == []


def test_a_subject_without_a_profile_can_delete_what_it_made(clients, token):
    eve = bearer(token("eve"))
    made = ok(
        clients["synthesis"].post(
            "/synthesize", json={"text": "No profile.", "voice": "espeak:en-US"}, headers=eve
        )
    )
    assert clients["users"].get("/users/me", headers=eve).status_code == 404
    assert clients["users"].delete("/users/me", headers=eve).status_code == 204
    assert documents_naming("eve") == []
    assert fetch_status(made["downloadUrl"]) == 404
