"""The local object storage beyond the contract: its files, atomicity, and finalize events.

Events are checked down to delivery: the adapter's CloudEvent, posted in binary mode, is
received by a real functions-framework ``@cloud_event`` function, exactly as Eventarc
would deliver it in production.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
import requests
from cloudevents.conversion import to_binary
from werkzeug.serving import make_server

from shared.blobs.base import LimitedReader, ObjectAlreadyExistsError, check_object_name
from shared.blobs.events import (
    FINALIZED_TYPE,
    EventPoster,
    bucket_of,
    finalized_event,
    post_binary_cloudevent,
)
from shared.blobs.local import LocalObjectStorage
from shared.errors import InvalidRequestError, PayloadTooLargeError, ServiceUnavailableError
from tests.support.processes import free_port

BUCKET = "voice-samples"
KEY = b"unit-test-signing-key-0123456789"


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
    storage.put(BUCKET, "a/b/c.wav", b"1", content_type="audio/wav")
    storage.put(BUCKET, "a", b"2", content_type="audio/wav")
    storage.put(BUCKET, "..hidden/..x", b"3", content_type="audio/wav")
    root = (tmp_path / "blobs").resolve()
    everything = list(tmp_path.rglob("*"))
    assert all(path.resolve().is_relative_to(root) for path in everything)
    assert len(data_files(root)) == 3


def test_only_the_current_generation_is_kept_on_disk(storage, tmp_path):
    for i in range(5):
        storage.put(BUCKET, "a", f"v{i}".encode(), content_type="text/plain")
    storage.copy(BUCKET, "a", BUCKET, "b")
    storage.move(BUCKET, "b", BUCKET, "c")
    storage.close()  # waits for the background removal of old generations
    assert len(data_files(tmp_path / "blobs")) == 2
    storage.delete(BUCKET, "a")
    storage.put(BUCKET, "c", b"after close", content_type="text/plain")
    storage.delete(BUCKET, "c")
    assert data_files(tmp_path / "blobs") == []


def test_a_failed_upload_leaves_the_old_object_and_no_temporary_file(storage, tmp_path):
    storage.put(BUCKET, "a", b"old", content_type="text/plain")

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        storage.put(BUCKET, "a", Broken(), content_type="text/plain")
    assert storage.get(BUCKET, "a") == b"old"
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
