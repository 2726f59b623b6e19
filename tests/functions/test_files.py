"""The files function: file details, owner-only downloads with Range, public files, cleanup."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.audio.encode import encode
from shared.bootstrap import Container, get_container, reset_container
from shared.errors import PayloadTooLargeError
from shared.files.cache import SYNTHESIS_CACHE
from shared.files.deps import AudioDeps
from shared.files.model import checksum_of
from shared.files.repository import AUDIO_FILES, AudioFileRepository
from shared.files.storage import cleanup_expired_files, delete_file, upload_audio
from shared.model import utcnow
from shared.store.base import Query
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.conftest import bearer
from tests.functions.test_synthesis import say

# The shared fixtures, registered in this module.
ann = fx.ann
bob = fx.bob
espeak = fx.espeak
synthesis_client = fx.synthesis_client


@pytest.fixture
def files(function_client, espeak):
    return function_client("files")


@pytest.fixture
def users(function_client):
    return function_client("users")


def storage_used(users: Any, headers: dict[str, str]) -> int:
    return int(users.get("/users/me", headers=headers).get_json()["storageUsedBytes"])


def test_info_and_download_are_owner_only(synthesis_client, files, ann, bob):
    made = say(synthesis_client, ann)
    file_id = made["audioFileId"]
    info = files.get(f"/files/{file_id}/info", headers=ann).get_json()
    assert info["checksum"] == made["checksum"]
    assert info["size"] == made["size"]
    assert info["format"] == "wav"
    assert info["sampleRate"] == 22_050
    assert info["isPublic"] is False
    assert info["expiresAt"] > info["createdAt"]
    response = files.get(f"/files/audio/{file_id}", headers=ann)
    assert response.status_code == 200
    assert response.mimetype == "audio/wav"
    assert checksum_of(response.data) == made["checksum"]
    assert response.headers["Accept-Ranges"] == "bytes"
    # Someone else's private file does not exist for them; nor for anonymous callers.
    for headers in (bob, {}):
        assert files.get(f"/files/audio/{file_id}", headers=headers).status_code == 404
    assert files.get(f"/files/{file_id}/info", headers=bob).status_code == 404
    assert files.get("/files/audio/no-such-file", headers=ann).status_code == 404
    assert files.get(f"/files/{file_id}/info", headers=bob).get_json()["code"] == (
        "AUDIO_FILE_NOT_FOUND"
    )


def test_range_requests_and_download_count(synthesis_client, files, ann):
    made = say(synthesis_client, ann)
    file_id, size = made["audioFileId"], made["size"]
    whole = files.get(f"/files/audio/{file_id}", headers=ann).data
    part = files.get(f"/files/audio/{file_id}", headers={**ann, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.data == whole[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}"
    tail = files.get(f"/files/audio/{file_id}", headers={**ann, "Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.data == whole[-10:]
    head = files.get(f"/files/audio/{file_id}", headers={**ann, "Range": "bytes=0-43"})
    assert head.data == whole[:44]
    beyond = files.get(f"/files/audio/{file_id}", headers={**ann, "Range": f"bytes={size + 5}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"  # RFC 9110: the length
    info = files.get(f"/files/{file_id}/info", headers=ann).get_json()
    # The full download and the range from byte 0 count; later ranges of a player do not.
    assert info["downloadCount"] == 2
    assert info["lastAccessedAt"] is not None


def test_public_files_can_be_downloaded_by_anyone(synthesis_client, files, ann, bob):
    file_id = say(synthesis_client, ann)["audioFileId"]
    assert files.patch(f"/files/{file_id}", json={"isPublic": True}, headers=bob).status_code == 404
    changed = files.patch(f"/files/{file_id}", json={"isPublic": True}, headers=ann)
    assert changed.status_code == 200
    assert changed.get_json()["isPublic"] is True
    assert files.get(f"/files/audio/{file_id}").status_code == 200
    assert files.get(f"/files/audio/{file_id}", headers=bob).status_code == 200
    assert files.get(f"/files/{file_id}/info", headers=bob).status_code == 200
    bad_token = files.get(f"/files/audio/{file_id}", headers=bearer("not-a-token"))
    assert bad_token.status_code == 401


def test_a_public_file_can_be_changed_by_its_owner_only(synthesis_client, files, ann, bob):
    file_id = say(synthesis_client, ann)["audioFileId"]
    assert files.patch(f"/files/{file_id}", json={"isPublic": True}, headers=ann).status_code == 200
    # Bob may read it now, but it is not his to make private again.
    refused = files.patch(f"/files/{file_id}", json={"isPublic": False}, headers=bob)
    assert refused.status_code == 404
    assert refused.get_json()["code"] == "AUDIO_FILE_NOT_FOUND"
    assert files.get(f"/files/{file_id}/info", headers=ann).get_json()["isPublic"] is True
    assert files.get(f"/files/audio/{file_id}").status_code == 200


def test_cleanup_deletes_expired_files_and_frees_storage(synthesis_client, files, users, ann, bob):
    for headers, email in ((ann, "ann@example.com"), (bob, "bob@example.com")):
        assert users.post("/users", json={"email": email}, headers=headers).status_code == 201
    first = say(synthesis_client, ann)
    hit = say(synthesis_client, ann)  # a cache hit: a second record naming the same object
    own = say(synthesis_client, ann, text="Something else entirely.")
    bobs = say(synthesis_client, bob)  # another user's identical text: his own object
    assert hit["cacheHit"] is True
    assert bobs["cacheHit"] is False
    assert storage_used(users, ann) == first["size"] + hit["size"] + own["size"]
    assert storage_used(users, bob) == bobs["size"]
    container = get_container()
    store, blobs, bucket = container.store, container.blobs, container.settings.audio_bucket
    past = utcnow() - timedelta(seconds=1)
    for made in (first, own):
        store.update(AUDIO_FILES, made["audioFileId"], {"expires_at": past})
    removed = cleanup_expired_files(AudioDeps(store, blobs, container.settings))
    assert removed == 2
    assert storage_used(users, ann) == hit["size"]
    assert storage_used(users, bob) == bobs["size"]
    for made in (first, own):
        assert files.get(f"/files/{made['audioFileId']}/info", headers=ann).status_code == 404
    # The hit's record still names the object: it stays, and so does its cache entry.
    assert files.get(f"/files/audio/{hit['audioFileId']}", headers=ann).status_code == 200
    assert say(synthesis_client, ann)["cacheHit"] is True
    own_path = f"audio/{own['audioFileId']}.wav"
    assert not blobs.exists(bucket, own_path)
    assert not blobs.exists(bucket, own_path + ".timestamps.json")
    entries = list(store.stream(Query(SYNTHESIS_CACHE)))
    assert entries
    assert all(d.data.get("file_path") != own_path for d in entries)


def test_a_file_deleted_again_frees_its_storage_once(synthesis_client, users, ann):
    # A retried cleanup, or a cleanup racing the owner's delete, deletes a record again.
    assert users.post("/users", json={"email": "ann@example.com"}, headers=ann).status_code == 201
    first = say(synthesis_client, ann)
    second = say(synthesis_client, ann, text="Something else entirely.")
    container = get_container()
    deps = AudioDeps(container.store, container.blobs, container.settings)
    record = AudioFileRepository(container.store).get(first["audioFileId"])
    assert record is not None
    delete_file(deps, record)
    delete_file(deps, record)
    assert storage_used(users, ann) == second["size"]
    assert not container.blobs.exists(deps.bucket, record.file_path)


def test_cleanup_runs_daily_from_the_scheduler(platform):
    from shared.config import Settings

    jobs = {job.name: job for job in Container(Settings(_env_file=None)).scheduled_jobs()}
    assert jobs["audio-file-cleanup"].task_type == "audio_files.cleanup"
    assert jobs["audio-file-cleanup"].cron == "30 3 * * *"
    # The platform's task runtime has handlers for the cleanup and the long-job tasks.
    names = get_container().tasks.registry.names()
    assert {"audio_files.cleanup", "synthesis.chunk", "synthesis.assemble"} <= set(names)


def test_deleting_an_account_purges_its_audio_files(synthesis_client, files, users, ann):
    assert users.post("/users", json={"email": "ann@example.com"}, headers=ann).status_code == 201
    file_id = say(synthesis_client, ann)["audioFileId"]
    deleted = users.delete("/users/me", headers=ann)
    assert deleted.status_code in (200, 204)
    assert get_container().store.get(AUDIO_FILES, file_id) is None


def test_upload_audio_deletes_the_audio_when_its_timestamps_cannot_be_stored(platform, monkeypatch):
    monkeypatch.setenv("VOICE_MAX_UPLOAD_BYTES", "4096")
    reset_container()
    container = get_container()
    deps = AudioDeps(container.store, container.blobs, container.settings)
    encoded = encode(b"\x00\x01" * 1000, 22_050, "wav")  # 2 KB: within the limit
    timestamps = {"words": [{"text": "x" * 5000, "start": 0.0, "end": 1.0}]}  # beyond it
    with pytest.raises(PayloadTooLargeError):
        upload_audio(deps, user_id="ann", encoded=encoded, timestamps=timestamps)
    assert [info.name for info in container.blobs.list(deps.bucket, prefix="audio/").items] == []
    assert list(container.store.stream(Query(AUDIO_FILES))) == []


def test_upload_audio_deletes_the_timestamps_when_the_audio_cannot_be_stored(platform, monkeypatch):
    monkeypatch.setenv("VOICE_MAX_UPLOAD_BYTES", "4096")
    reset_container()
    container = get_container()
    deps = AudioDeps(container.store, container.blobs, container.settings)
    encoded = encode(b"\x00\x01" * 4000, 22_050, "wav")  # 8 KB: beyond the limit
    timestamps = {"words": [{"text": "short", "start": 0.0, "end": 0.1}]}
    with pytest.raises(PayloadTooLargeError):
        upload_audio(deps, user_id="ann", encoded=encoded, timestamps=timestamps)
    assert [info.name for info in container.blobs.list(deps.bucket, prefix="audio/").items] == []
    assert list(container.store.stream(Query(AUDIO_FILES))) == []


def test_upload_audio_computes_the_timestamps_while_the_audio_is_written(platform):
    container = get_container()
    deps = AudioDeps(container.store, container.blobs, container.settings)
    encoded = encode(b"\x00\x01" * 1000, 22_050, "wav")
    writers: list[str] = []
    real_put = container.blobs.put

    def put(bucket: str, name: str, *args: Any, **kwargs: Any) -> Any:
        writers.append(threading.current_thread().name)
        return real_put(bucket, name, *args, **kwargs)

    container.blobs.put = put  # type: ignore[method-assign]  # records which thread writes
    try:
        stored = upload_audio(
            deps,
            user_id="ann",
            encoded=encoded,
            timestamps=lambda: {"words": [{"text": "x", "start": 0.0, "end": 0.1}]},
        )
    finally:
        del container.blobs.put
    assert stored.timestamps == {"words": [{"text": "x", "start": 0.0, "end": 0.1}]}
    assert len(writers) == 2
    assert writers[0] != writers[1]  # the audio on another thread than the timestamps
    assert container.blobs.get(deps.bucket, stored.cached.timestamps_path or "")


def test_an_apple_players_two_byte_probe_is_not_a_download(synthesis_client, files, ann):
    # Safari and iOS AVPlayer ask for bytes 0-1 first, then for the file: one play.
    file_id = say(synthesis_client, ann)["audioFileId"]
    probe = files.get(f"/files/audio/{file_id}", headers={**ann, "Range": "bytes=0-1"})
    assert (probe.status_code, len(probe.data)) == (206, 2)
    assert files.get(f"/files/{file_id}/info", headers=ann).get_json()["downloadCount"] == 0
    played = files.get(f"/files/audio/{file_id}", headers={**ann, "Range": "bytes=0-"})
    assert played.status_code == 206
    assert files.get(f"/files/{file_id}/info", headers=ann).get_json()["downloadCount"] == 1


def test_a_head_request_is_not_a_download(synthesis_client, files, ann):
    file_id = say(synthesis_client, ann)["audioFileId"]
    head = files.head(f"/files/audio/{file_id}", headers=ann)
    assert head.status_code == 200
    assert files.get(f"/files/{file_id}/info", headers=ann).get_json()["downloadCount"] == 0


def test_a_range_in_an_unknown_unit_or_malformed_is_ignored(synthesis_client, files, ann):
    made = say(synthesis_client, ann)
    file_id = made["audioFileId"]
    for header in ("items=0-9", "bytes=abc"):
        response = files.get(f"/files/audio/{file_id}", headers={**ann, "Range": header})
        assert response.status_code == 200, header
        assert checksum_of(response.data) == made["checksum"]


def test_info_shows_the_access_time_it_records(synthesis_client, files, ann):
    file_id = say(synthesis_client, ann)["audioFileId"]
    before = utcnow()
    shown = files.get(f"/files/{file_id}/info", headers=ann).get_json()["lastAccessedAt"]
    assert shown is not None
    assert datetime.fromisoformat(shown) >= before
    stored = AudioFileRepository(get_container().store).get(file_id)
    assert stored is not None
    assert datetime.fromisoformat(shown) == stored.last_accessed_at


def test_files_made_before_registering_count_in_storage_used(synthesis_client, users, ann):
    early = say(synthesis_client, ann)
    registered = users.post("/users", json={"email": "ann@example.com"}, headers=ann)
    assert registered.status_code == 201
    assert registered.get_json()["storageUsedBytes"] == early["size"]
    later = say(synthesis_client, ann, text="Something else entirely.")
    assert storage_used(users, ann) == early["size"] + later["size"]
    # Deleting the early file frees exactly its bytes: the counter never drifts below.
    container = get_container()
    record = AudioFileRepository(container.store).get(early["audioFileId"])
    assert record is not None
    delete_file(AudioDeps(container.store, container.blobs, container.settings), record)
    assert storage_used(users, ann) == later["size"]


def test_a_404_echoes_the_beginning_of_a_very_long_id_only(files, ann):
    long_id = (uuid.uuid4().hex * 100)[:3000]
    for response in (
        files.get(f"/files/{long_id}/info", headers=ann),
        files.patch(f"/files/{long_id}", json={"isPublic": True}, headers=ann),
        files.get(f"/files/audio/{long_id}", headers=ann),
        files.get(f"/files/audio/{long_id}"),
    ):
        body = response.get_json()
        assert response.status_code == 404, body
        assert body["code"] == "AUDIO_FILE_NOT_FOUND"
        assert len(body["error"]) < 200, body["error"]
        assert body["error"].startswith("Audio file not found: " + long_id[:64])
    unknown = uuid.uuid4().hex
    body = files.get(f"/files/{unknown}/info", headers=ann).get_json()
    assert body["error"] == f"Audio file not found: {unknown}"


def test_a_416_echoes_the_beginning_of_a_very_long_range_only(synthesis_client, files, ann):
    made = say(synthesis_client, ann)
    far = "bytes=" + "9" * 3000 + "-"
    response = files.get(f"/files/audio/{made['audioFileId']}", headers={**ann, "Range": far})
    body = response.get_json()
    assert response.status_code == 416, body
    assert len(body["error"]) < 200, body["error"]
    assert body["error"].startswith("Range " + far[:64])
