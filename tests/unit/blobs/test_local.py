"""The local object storage beyond the contract: its files, atomicity, and finalize events.

Events are checked down to delivery: the adapter's CloudEvent, posted in binary mode, is
received by a real functions-framework ``@cloud_event`` function, exactly as Eventarc
would deliver it in production.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import multiprocessing
import sqlite3
import textwrap
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import functions_framework
import google_crc32c
import pytest
import requests
from cloudevents.conversion import to_binary
from werkzeug.serving import make_server

from shared.blobs.base import (
    DEFAULT_CHUNK_SIZE,
    LimitedReader,
    ObjectAlreadyExistsError,
    PreconditionFailedError,
    check_object_name,
)
from shared.blobs.events import (
    FINALIZED_TYPE,
    EventPoster,
    bucket_of,
    finalized_event,
    post_binary_cloudevent,
)
from shared.blobs.local import INLINE_MAX_BYTES, LocalObjectStorage
from shared.errors import InvalidRequestError, PayloadTooLargeError, ServiceUnavailableError
from tests.support.processes import free_port

BUCKET = "voice-samples"
KEY = b"unit-test-signing-key-0123456789"
# The smallest object kept in a file of its own; anything up to INLINE_MAX_BYTES is inline.
FILE_SIZED = INLINE_MAX_BYTES + 1


def new_storage(root: Path, **kwargs: Any) -> LocalObjectStorage:
    options: dict[str, Any] = {
        "signing_key": KEY,
        "public_base_url": "http://127.0.0.1:8080",
        "max_upload_bytes": 1024 * 1024,
    }
    options.update(kwargs)
    return LocalObjectStorage(root, **options)


@pytest.fixture
def events() -> list[Any]:
    return []


@pytest.fixture
def storage(tmp_path: Path, events: list[Any]) -> Iterator[LocalObjectStorage]:
    storage = new_storage(tmp_path / "blobs", on_finalized=events.append)
    yield storage
    storage.close()


def data_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name != "index.sqlite3" and "index.sqlite3" not in p.name
    )


# -- files on disk ------------------------------------------------------------------------


def test_every_file_stays_inside_the_root(storage, tmp_path):
    storage.put(BUCKET, "a/b/c.wav", b"1" * FILE_SIZED, content_type="audio/wav")
    storage.put(BUCKET, "a", b"2" * FILE_SIZED, content_type="audio/wav")
    storage.put(BUCKET, "..hidden/..x", b"3" * FILE_SIZED, content_type="audio/wav")
    root = (tmp_path / "blobs").resolve()
    everything = list(tmp_path.rglob("*"))
    assert all(path.resolve().is_relative_to(root) for path in everything)
    assert len(data_files(root)) == 3


def test_only_the_current_generation_is_kept_on_disk(storage, tmp_path):
    for i in range(5):
        storage.put(BUCKET, "a", bytes([i]) * FILE_SIZED, content_type="text/plain")
    storage.copy(BUCKET, "a", BUCKET, "b")
    storage.move(BUCKET, "b", BUCKET, "c")
    storage.close()  # waits for the background removal of old generations
    assert len(data_files(tmp_path / "blobs")) == 2
    storage.delete(BUCKET, "a")
    storage.put(BUCKET, "c", b"after close" * FILE_SIZED, content_type="text/plain")
    storage.delete(BUCKET, "c")
    assert data_files(tmp_path / "blobs") == []


@pytest.mark.parametrize("sent_before_failing", [0, FILE_SIZED])
def test_a_failed_upload_leaves_the_old_object_and_no_temporary_file(
    storage, tmp_path, sent_before_failing
):
    old = b"o" * FILE_SIZED
    storage.put(BUCKET, "a", old, content_type="text/plain")

    class Broken(io.RawIOBase):
        """Sends some bytes (enough to start a file, or none), then fails."""

        sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            count = min(len(buffer), sent_before_failing - self.sent)
            if count <= 0:
                raise OSError("connection reset")
            buffer[:count] = b"n" * count
            self.sent += count
            return count

    with pytest.raises(OSError, match="connection reset"):
        storage.put(BUCKET, "a", Broken(), content_type="text/plain")
    assert storage.get(BUCKET, "a") == old
    assert not list((tmp_path / "blobs").rglob(".upload-*"))
    assert len(data_files(tmp_path / "blobs")) == 1


def test_an_oversized_stream_leaves_no_temporary_file(storage, tmp_path):
    with pytest.raises(PayloadTooLargeError):
        storage.put(BUCKET, "a", io.BytesIO(b"x" * (1024 * 1024 + 1)), content_type="text/plain")
    assert data_files(tmp_path / "blobs") == []


def test_objects_survive_a_new_adapter_on_the_same_folder(tmp_path):
    first = new_storage(tmp_path / "blobs")
    info = first.put(BUCKET, "a", b"kept", content_type="text/plain", metadata={"k": "v"})
    first.close()
    second = new_storage(tmp_path / "blobs", durable=False)
    assert second.get(BUCKET, "a") == b"kept"
    assert second.info(BUCKET, "a") == info


def _exclusive_create(root: str, index: int) -> str:
    storage = new_storage(Path(root))
    try:
        storage.put(
            BUCKET, "lock", str(index).encode(), content_type="text/plain", if_generation_match=0
        )
    except ObjectAlreadyExistsError:
        return "lost"
    return "won"


def test_exclusive_creates_from_several_processes_have_one_winner(tmp_path):
    new_storage(tmp_path / "blobs").close()
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        outcomes = pool.starmap(_exclusive_create, [(str(tmp_path / "blobs"), i) for i in range(8)])
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def _put_into_new_folder(root: str, index: int) -> bytes:
    storage = new_storage(Path(root))
    try:
        storage.put(BUCKET, f"p{index}", str(index).encode(), content_type="text/plain")
        return storage.get(BUCKET, f"p{index}")
    finally:
        storage.close()


def test_processes_creating_one_new_folder_at_once_all_succeed(tmp_path):
    root = str(tmp_path / "fresh")
    context = multiprocessing.get_context("fork")
    with context.Pool(6) as pool:
        got = pool.starmap(_put_into_new_folder, [(root, i) for i in range(12)])
    assert got == [str(i).encode() for i in range(12)]


def test_stream_chunk_size_must_be_positive(storage):
    storage.put(BUCKET, "a", b"abc", content_type="text/plain")
    with pytest.raises(InvalidRequestError):
        storage.stream(BUCKET, "a", chunk_size=0)


@pytest.mark.parametrize(
    "name", ["a/../b", "\\\\server\\share", "/etc/passwd", "a\x00b", "..", "."]
)
def test_the_shared_name_check_refuses_path_tricks(name):
    with pytest.raises(InvalidRequestError):
        check_object_name(name)


def test_limited_reader_stops_one_byte_past_the_limit():
    reader = LimitedReader(io.BytesIO(b"x" * 10), 10)
    assert reader.read(100) == b"x" * 10
    assert reader.read(100) == b""
    over = LimitedReader(io.BytesIO(b"x" * 11), 10)
    with pytest.raises(PayloadTooLargeError):
        over.read(100)


# -- small objects inline in the index ----------------------------------------------------


def stored_inline(root: Path) -> dict[str, bool]:
    """Each object's name, and whether its bytes are in its index row."""
    with closing(sqlite3.connect(root / "index.sqlite3")) as conn:
        rows = conn.execute("SELECT bucket, name, inline_data IS NOT NULL FROM objects")
        return {f"{bucket}/{bytes(name).decode()}": bool(inline) for bucket, name, inline in rows}


def checksums(data: bytes) -> tuple[str, str]:
    md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    crc = base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    return md5, crc


class Trickle:
    """A one-way stream that answers at most ``most`` bytes a read and records each ask."""

    def __init__(self, data: bytes, most: int = 1000) -> None:
        self._data = io.BytesIO(data)
        self._most = most
        self.asked: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        return self._data.read(min(size, self._most) if size >= 0 else self._most)

    def seekable(self) -> bool:
        return False


def test_objects_up_to_the_limit_are_inline_and_larger_ones_are_files(storage, tmp_path):
    root = tmp_path / "blobs"
    storage.put(BUCKET, "small", b"s" * INLINE_MAX_BYTES, content_type="application/json")
    storage.put(BUCKET, "empty", b"", content_type="application/json")
    assert not (root / BUCKET).exists()
    assert data_files(root) == []
    storage.put(BUCKET, "large", b"l" * FILE_SIZED, content_type="audio/wav")
    assert len(data_files(root)) == 1
    assert stored_inline(root) == {
        f"{BUCKET}/small": True,
        f"{BUCKET}/empty": True,
        f"{BUCKET}/large": False,
    }


@pytest.mark.parametrize(("limit", "inline"), [(0, False), (2 * FILE_SIZED, True)])
def test_the_inline_limit_can_be_moved(tmp_path, limit, inline):
    # bench.blobs times the same puts through a store that keeps everything inline and one
    # that keeps everything in files; either answers as the default store does.
    root = tmp_path / "blobs"
    storage = new_storage(root, inline_max_bytes=limit)
    for name, size in (("small", 1), ("large", FILE_SIZED)):
        data = bytes(i % 251 for i in range(size))
        info = storage.put(BUCKET, name, data, content_type="audio/wav")
        assert (info.size, info.md5_hash) == (size, checksums(data)[0])
        assert storage.get(BUCKET, name) == data
    assert stored_inline(root) == {f"{BUCKET}/small": inline, f"{BUCKET}/large": inline}
    assert len(data_files(root)) == (0 if inline else 2)
    storage.close()


@pytest.mark.parametrize("size", [0, 1, 6 * 1024, INLINE_MAX_BYTES, FILE_SIZED, 300_000])
def test_inline_and_file_objects_answer_alike(storage, events, size):
    data = bytes(i % 251 for i in range(size))
    info = storage.put(BUCKET, "o", data, content_type="application/json", metadata={"k": "v"})
    md5, crc = checksums(data)
    assert (info.size, info.md5_hash, info.crc32c) == (size, md5, crc)
    assert storage.info(BUCKET, "o") == info
    assert storage.list(BUCKET, "o").items == [info]
    assert events[-1].data["md5Hash"] == md5
    assert events[-1].data["size"] == str(size)
    assert storage.get(BUCKET, "o") == data
    for start, end in [(0, 0), (1, 9), (size - 5, None), (None, 99), (size // 2, size + 10)]:
        first = max(start or 0, 0)
        last = size if end is None else end + 1
        assert storage.get(BUCKET, "o", start=first, end=end) == data[first:last]
    assert storage.get(BUCKET, "o", start=size + 1) == b""
    chunks = list(storage.stream(BUCKET, "o", chunk_size=4096))
    assert b"".join(chunks) == data
    assert all(len(chunk) <= 4096 for chunk in chunks)
    opened, handle = storage.open(BUCKET, "o")
    with handle:
        assert opened == info
        handle.seek(size // 3)
        assert handle.read() == data[size // 3 :]


@pytest.mark.parametrize(
    ("size", "inline"), [(INLINE_MAX_BYTES, True), (FILE_SIZED, False), (3_000_000, False)]
)
def test_stream_puts_fit_inline_only_up_to_the_limit(tmp_path, size, inline):
    storage = new_storage(tmp_path / "blobs", max_upload_bytes=4_000_000)
    data = bytes(i % 253 for i in range(size))
    stream = Trickle(data, most=4096)
    info = storage.put(BUCKET, "s", stream, content_type="application/octet-stream")  # type: ignore[arg-type]
    assert (info.size, info.md5_hash, info.crc32c) == (size, *checksums(data))
    assert storage.get(BUCKET, "s") == data
    assert stored_inline(tmp_path / "blobs") == {f"{BUCKET}/s": inline}
    assert len(data_files(tmp_path / "blobs")) == (0 if inline else 1)
    # Read in bounded pieces, never to the end at once: a large stream is not held in memory.
    assert all(0 < asked <= max(INLINE_MAX_BYTES + 1, DEFAULT_CHUNK_SIZE) for asked in stream.asked)
    storage.close()


def test_a_small_upload_limit_still_applies_to_inline_objects(tmp_path):
    storage = new_storage(tmp_path / "blobs", max_upload_bytes=100)
    with pytest.raises(PayloadTooLargeError):
        storage.put(BUCKET, "a", b"x" * 101, content_type="text/plain")
    with pytest.raises(PayloadTooLargeError):
        storage.put(BUCKET, "a", Trickle(b"x" * 101), content_type="text/plain")  # type: ignore[arg-type]
    assert storage.put(BUCKET, "a", Trickle(b"x" * 100), content_type="text/plain").size == 100  # type: ignore[arg-type]
    assert stored_inline(tmp_path / "blobs") == {f"{BUCKET}/a": True}
    storage.close()


@pytest.mark.parametrize(("first", "second"), [(10, FILE_SIZED), (FILE_SIZED, 10), (10, 20)])
def test_overwrites_switch_between_inline_and_file_and_drop_the_old_file(
    storage, tmp_path, first, second
):
    root = tmp_path / "blobs"
    old = storage.put(BUCKET, "a", b"1" * first, content_type="text/plain")
    new = storage.put(
        BUCKET, "a", b"2" * second, content_type="text/plain", if_generation_match=old.generation
    )
    with pytest.raises(PreconditionFailedError):
        storage.put(
            BUCKET, "a", b"3", content_type="text/plain", if_generation_match=old.generation
        )
    assert storage.get(BUCKET, "a") == b"2" * second
    assert storage.info(BUCKET, "a") == new
    storage.close()  # waits for the background removal of old generations
    assert len(data_files(root)) == (1 if second > INLINE_MAX_BYTES else 0)
    assert storage.delete(BUCKET, "a")
    assert data_files(root) == []


def test_inline_objects_copy_and_move_within_and_between_buckets(storage, tmp_path):
    root = tmp_path / "blobs"
    data = b'{"words": []}' * 400
    info = storage.put(BUCKET, "t.json", data, content_type="application/json", metadata={"a": "b"})
    copied = storage.copy(BUCKET, "t.json", BUCKET, "copy.json")
    moved = storage.move(BUCKET, "copy.json", "voice-audio", "moved.json")
    moved_again = storage.move("voice-audio", "moved.json", "voice-audio", "final.json")
    with pytest.raises(ObjectAlreadyExistsError):
        storage.copy(BUCKET, "t.json", "voice-audio", "final.json", if_generation_match=0)
    assert not storage.exists(BUCKET, "copy.json")
    assert not storage.exists("voice-audio", "moved.json")
    for result in (copied, moved, moved_again):
        assert (result.size, result.md5_hash, result.metadata) == (
            info.size,
            info.md5_hash,
            {"a": "b"},
        )
    assert moved_again.bucket == "voice-audio"
    assert storage.get("voice-audio", "final.json", start=13, end=25) == data[13:26]
    assert storage.get(BUCKET, "t.json") == data
    assert stored_inline(root) == {f"{BUCKET}/t.json": True, "voice-audio/final.json": True}
    assert data_files(root) == []


OLD_SCHEMA = """
CREATE TABLE objects (
    bucket TEXT NOT NULL,
    name BLOB NOT NULL,
    generation INTEGER NOT NULL,
    metageneration INTEGER NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    md5_hash TEXT NOT NULL,
    crc32c TEXT NOT NULL,
    metadata TEXT NOT NULL,
    time_created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (bucket, name)
) WITHOUT ROWID
"""


def old_data_folder(root: Path, objects: dict[str, bytes]) -> Path:
    """A folder as the adapter wrote it before inline objects: every object in a file."""
    root.mkdir(parents=True)
    with closing(sqlite3.connect(root / "index.sqlite3")) as conn, conn:
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: the old adapter set it too
        conn.execute(OLD_SCHEMA)
        for generation, (name, data) in enumerate(objects.items(), start=1_700_000_000_000_000):
            digest = hashlib.sha256(name.encode()).hexdigest()
            path = root / BUCKET / digest[:2] / f"{digest}.{generation}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            conn.execute(
                "INSERT INTO objects VALUES (?, ?, ?, 1, ?, 'text/plain', ?, ?, '{}', ?, ?)",
                (
                    BUCKET,
                    name.encode(),
                    generation,
                    len(data),
                    *checksums(data),
                    generation,
                    generation,
                ),
            )
    return root


def test_an_index_from_before_inline_objects_is_upgraded_and_its_files_still_read(tmp_path):
    root = old_data_folder(tmp_path / "blobs", {"old": b"old bytes", "other": b"o" * 20})
    storage = new_storage(root)
    old = storage.info(BUCKET, "old")
    assert (old.size, old.md5_hash) == (9, checksums(b"old bytes")[0])
    assert storage.get(BUCKET, "old") == b"old bytes"
    assert storage.get(BUCKET, "old", start=4, end=100) == b"bytes"
    assert b"".join(storage.stream(BUCKET, "old", chunk_size=2)) == b"old bytes"
    _, handle = storage.open(BUCKET, "old")
    with handle:
        assert handle.read() == b"old bytes"
    assert storage.copy(BUCKET, "old", BUCKET, "copied").size == 9  # a file, linked
    storage.put(BUCKET, "new", b"new", content_type="text/plain")
    storage.put(BUCKET, "other", b"replaced", content_type="text/plain")
    storage.close()  # waits for the removal of the replaced generation's file
    assert stored_inline(root) == {
        f"{BUCKET}/old": False,
        f"{BUCKET}/copied": False,
        f"{BUCKET}/new": True,
        f"{BUCKET}/other": True,
    }
    assert len(data_files(root)) == 2
    reopened = new_storage(root)  # the column is there now: nothing to add
    assert reopened.get(BUCKET, "other") == b"replaced"
    assert reopened.get(BUCKET, "copied") == b"old bytes"
    assert reopened.delete(BUCKET, "old")
    assert reopened.delete(BUCKET, "copied")
    assert data_files(root) == []
    reopened.close()


def _open_and_read(root: str) -> bytes:
    storage = new_storage(Path(root))
    try:
        return storage.get(BUCKET, "old")
    finally:
        storage.close()


def test_processes_opening_an_old_index_at_once_upgrade_it_once(tmp_path):
    root = old_data_folder(tmp_path / "blobs", {"old": b"old bytes"})
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        assert pool.map(_open_and_read, [str(root)] * 8) == [b"old bytes"] * 8


# -- finalize events ----------------------------------------------------------------------


def test_put_copy_and_move_publish_eventarc_finalized_events(storage, events):
    info = storage.put(
        BUCKET, "clips/a b.wav", b"RIFF", content_type="audio/wav", metadata={"user": "u1"}
    )
    copied = storage.copy(BUCKET, "clips/a b.wav", "voice-models", "copies/a.wav")
    moved = storage.move("voice-models", "copies/a.wav", "voice-models", "final/a.wav")
    storage.delete(BUCKET, "clips/a b.wav")
    assert [(e["source"], e["subject"]) for e in events] == [
        ("//storage.googleapis.com/projects/_/buckets/voice-samples", "objects/clips/a b.wav"),
        ("//storage.googleapis.com/projects/_/buckets/voice-models", "objects/copies/a.wav"),
        ("//storage.googleapis.com/projects/_/buckets/voice-models", "objects/final/a.wav"),
    ]
    first = events[0]
    assert first["type"] == FINALIZED_TYPE == "google.cloud.storage.object.v1.finalized"
    assert first["specversion"] == "1.0"
    assert first["datacontenttype"] == "application/json"
    assert first["time"].endswith("Z")
    assert len({e["id"] for e in events}) == 3
    data = first.data
    assert data["bucket"] == BUCKET
    assert data["name"] == "clips/a b.wav"
    assert data["contentType"] == "audio/wav"
    assert data["size"] == "4"
    assert data["md5Hash"] == info.md5_hash
    assert data["crc32c"] == info.crc32c
    assert data["generation"] == str(info.generation)
    assert data["metageneration"] == "1"
    assert data["metadata"] == {"user": "u1"}
    assert data["timeCreated"].endswith("Z")
    assert data["kind"] == "storage#object"
    assert events[1].data["generation"] == str(copied.generation)
    assert events[2].data["generation"] == str(moved.generation)
    assert bucket_of(events[1]) == "voice-models"


def test_a_failing_publisher_does_not_fail_the_write(tmp_path):
    def broken(event: Any) -> None:
        raise RuntimeError("gateway down")

    storage = new_storage(tmp_path / "blobs", on_finalized=broken)
    storage.put(BUCKET, "a", b"x", content_type="text/plain")
    assert storage.get(BUCKET, "a") == b"x"


FUNCTION_SOURCE = """
import json
import pathlib

import functions_framework


@functions_framework.cloud_event
def on_object_finalized(cloud_event):
    if cloud_event.data["name"] == "explode":
        raise RuntimeError("failing makes Eventarc retry")
    received = pathlib.Path(__file__).with_name("received.jsonl")
    record = {"attributes": dict(cloud_event.get_attributes()), "data": cloud_event.data}
    with received.open("a") as out:
        out.write(json.dumps(record) + "\\n")
"""


@pytest.fixture
def function_source(tmp_path: Path) -> Path:
    source = tmp_path / "function" / "main.py"
    source.parent.mkdir()
    source.write_text(textwrap.dedent(FUNCTION_SOURCE))
    return source


def received(function_source: Path) -> list[dict[str, Any]]:
    path = function_source.with_name("received.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_functions_framework_cloud_event_function_receives_the_event(
    storage, events, function_source
):
    info = storage.put(BUCKET, "training/u1/done.json", b"{}", content_type="application/json")
    app = functions_framework.create_app("on_object_finalized", str(function_source), "cloudevent")
    headers, body = to_binary(events[0])
    assert headers["ce-type"] == FINALIZED_TYPE
    assert headers["content-type"] == "application/json"
    response = app.test_client().post("/", headers=headers, data=body)
    assert response.status_code == 200
    [record] = received(function_source)
    assert record["attributes"]["type"] == FINALIZED_TYPE
    assert record["attributes"]["subject"] == "objects/training/u1/done.json"
    assert record["data"]["bucket"] == BUCKET
    assert record["data"]["name"] == "training/u1/done.json"
    assert record["data"]["contentType"] == "application/json"
    assert record["data"]["size"] == "2"
    assert record["data"]["md5Hash"] == info.md5_hash
    assert record["data"]["generation"] == str(info.generation)
    assert record["data"]["timeCreated"]


@pytest.fixture
def function_server(function_source: Path) -> Iterator[str]:
    """The function served over real HTTP on a free port, as the gateway would."""
    app = functions_framework.create_app("on_object_finalized", str(function_source), "cloudevent")
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_the_event_poster_delivers_writes_to_the_function_over_http(
    tmp_path, function_server, function_source
):
    poster = EventPoster(lambda event: function_server if bucket_of(event) == BUCKET else None)
    storage = new_storage(tmp_path / "blobs", on_finalized=poster)
    try:
        storage.put(BUCKET, "a.wav", b"RIFF", content_type="audio/wav")
        storage.put("voice-backups", "unsubscribed", b"x", content_type="text/plain")
        storage.copy(BUCKET, "a.wav", BUCKET, "b.wav")
        poster.join()
    finally:
        poster.close()
    assert [r["data"]["name"] for r in received(function_source)] == ["a.wav", "b.wav"]


def test_post_binary_cloudevent_sends_ce_headers_and_json(storage, events):
    storage.put(BUCKET, "a", b"x", content_type="text/plain")
    sent: list[requests.PreparedRequest] = []

    class Capture(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def, override]
            sent.append(request)
            response = requests.Response()
            response.status_code = 204
            response.raw = io.BytesIO(b"")
            return response

        def close(self) -> None:
            pass

    session = requests.Session()
    session.mount("http://", Capture())
    post_binary_cloudevent("http://gateway/_events/storage", events[0], session=session)
    [request] = sent
    assert request.headers["ce-specversion"] == "1.0"
    assert request.headers["ce-type"] == FINALIZED_TYPE
    assert request.headers["ce-source"] == f"//storage.googleapis.com/projects/_/buckets/{BUCKET}"
    assert request.headers["ce-subject"] == "objects/a"
    assert request.headers["ce-id"] == events[0]["id"]
    assert request.headers["ce-time"] == events[0]["time"]
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body)["name"] == "a"


def test_post_binary_cloudevent_reports_refusals_as_unavailable(storage, events, function_server):
    storage.put(BUCKET, "explode", b"x", content_type="text/plain")
    with pytest.raises(ServiceUnavailableError):
        post_binary_cloudevent(function_server, events[0])
    with pytest.raises(ServiceUnavailableError):
        post_binary_cloudevent(f"http://127.0.0.1:{free_port()}/", events[0], timeout=2)


def test_the_event_poster_retries_then_gives_up(tmp_path, function_server, function_source):
    poster = EventPoster(lambda event: function_server, attempts=3, backoff_seconds=0.01)
    storage = new_storage(tmp_path / "blobs", on_finalized=poster)
    try:
        storage.put(BUCKET, "explode", b"x", content_type="text/plain")
        storage.put(BUCKET, "fine", b"x", content_type="text/plain")
        poster.join()
    finally:
        poster.close()
    assert [r["data"]["name"] for r in received(function_source)] == ["fine"]


def test_finalized_event_ids_can_be_given(storage):
    info = storage.put(BUCKET, "a", b"x", content_type="text/plain")
    assert finalized_event(info, event_id="e-1")["id"] == "e-1"
