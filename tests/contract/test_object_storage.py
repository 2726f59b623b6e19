"""One contract for object storage, run unchanged over the local folder and Cloud Storage.

The Cloud Storage side runs against ``gcp-storage-emulator``, which ignores preconditions
(``ifGenerationMatch``), page sizes (``maxResults``) and signatures. Tests of those
behaviours are parametrized over the local adapter only, each saying which gap it covers;
``tests/unit/blobs/test_gcs.py`` checks the Cloud Storage adapter sends them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import google_crc32c
import pytest
import requests
from werkzeug.test import Client

from local.blob_server import BlobServer
from shared.blobs.base import ObjectAlreadyExistsError, ObjectStorage
from shared.blobs.gcs import GcsObjectStorage
from shared.blobs.local import LocalObjectStorage
from shared.errors import (
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
)
from tests.support.processes import Emulator
from tests.support.storage_emulator import (
    new_bucket,
    new_storage_client,
    service_account_credentials,
    start_storage_emulator,
)

MAX_UPLOAD = 12 * 1024 * 1024
SIGNING_KEY = b"contract-test-signing-key-0123456789"
LOCAL_ONLY = ["local"]


@dataclass
class Env:
    """An adapter and two fresh, empty buckets."""

    kind: str
    storage: ObjectStorage
    bucket: str
    other: str

    def download(self, url: str) -> tuple[int, bytes]:
        """Fetch a signed URL the way a mobile app would."""
        if isinstance(self.storage, LocalObjectStorage):
            parts = urlsplit(url)
            served = Client(BlobServer(self.storage)).get(parts.path, query_string=parts.query)
            return served.status_code, served.get_data()
        response = requests.get(url, timeout=10)
        return response.status_code, response.content


@pytest.fixture(scope="session")
def storage_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """``gcp-storage-emulator`` in memory on a free port, stopped after the session."""
    emulator = start_storage_emulator(tmp_path_factory.mktemp("gcs") / "emulator.log")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(params=["local", "gcs"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """A fresh adapter of each kind with two new buckets."""
    if request.param == "local":
        storage: ObjectStorage = LocalObjectStorage(
            tmp_path / "blobs",
            signing_key=SIGNING_KEY,
            public_base_url="http://127.0.0.1:8080",
            max_upload_bytes=MAX_UPLOAD,
        )
        buckets = [f"local-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    else:
        client = new_storage_client(request.getfixturevalue("storage_emulator"))
        storage = GcsObjectStorage(
            client, max_upload_bytes=MAX_UPLOAD, signing_credentials=service_account_credentials()
        )
        buckets = [new_bucket(client) for _ in range(2)]
    try:
        yield Env(request.param, storage, *buckets)
    finally:
        storage.close()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


class OneWayStream(io.RawIOBase):
    """A stream that cannot seek or tell its size, like a request body."""

    def __init__(self, data: bytes) -> None:
        self._source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer):  # type: ignore[no-untyped-def, override]
        chunk = self._source.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# -- put, get, info -----------------------------------------------------------------------


def test_put_then_get_round_trips_bytes_and_metadata(env):
    data = b"RIFF....WAVEfmt " + bytes(range(256)) * 10
    before = datetime.now(UTC) - timedelta(seconds=5)
    info = env.storage.put(
        env.bucket,
        "samples/u1/take 1.wav",
        data,
        content_type="audio/wav",
        metadata={"owner": "u1", "note": "take one"},
    )
    assert env.storage.get(env.bucket, "samples/u1/take 1.wav") == data
    stored = env.storage.info(env.bucket, "samples/u1/take 1.wav")
    for got in (info, stored):
        assert got.bucket == env.bucket
        assert got.name == "samples/u1/take 1.wav"
        assert got.size == len(data)
        assert got.content_type == "audio/wav"
        assert got.md5_hash == md5_b64(data)
        assert got.crc32c == crc32c_b64(data)
        assert got.metadata == {"owner": "u1", "note": "take one"}
        assert got.generation > 0
        assert got.time_created.tzinfo is not None
        assert before <= got.time_created <= datetime.now(UTC) + timedelta(seconds=5)
        assert got.updated >= got.time_created
    assert stored.generation == info.generation


def test_unicode_metadata_is_kept(env):
    # Only read back through info and list: gcp-storage-emulator fails downloads of such
    # objects (it echoes metadata as latin-1 headers), a gap of the emulator alone.
    env.storage.put(env.bucket, "u", b"x", content_type="text/plain", metadata={"note": "Zoë 你好"})
    assert env.storage.info(env.bucket, "u").metadata == {"note": "Zoë 你好"}
    assert env.storage.list(env.bucket).items[0].metadata == {"note": "Zoë 你好"}


def test_put_reads_seekable_and_one_way_streams(env):
    data = b"stream me " * 1000
    env.storage.put(env.bucket, "seekable", io.BytesIO(data), content_type="text/plain")
    env.storage.put(env.bucket, "one-way", OneWayStream(data), content_type="text/plain")
    for name in ("seekable", "one-way"):
        assert env.storage.get(env.bucket, name) == data
        assert env.storage.info(env.bucket, name).md5_hash == md5_b64(data)


def test_empty_objects_are_objects(env):
    info = env.storage.put(env.bucket, "empty", b"", content_type="application/octet-stream")
    assert info.size == 0
    assert env.storage.get(env.bucket, "empty") == b""
    assert list(env.storage.stream(env.bucket, "empty")) == []
    assert env.storage.exists(env.bucket, "empty")


def test_a_large_object_streams_back_in_chunks(env):
    # Over 8 MiB, so the Cloud Storage adapter uses a resumable upload.
    data = hashlib.sha256(b"seed").digest() * (9 * 1024 * 1024 // 32 + 7)
    info = env.storage.put(
        env.bucket, "models/big.bin", OneWayStream(data), content_type="application/octet-stream"
    )
    assert info.size == len(data)
    assert info.md5_hash == md5_b64(data)
    chunks = list(env.storage.stream(env.bucket, "models/big.bin", chunk_size=1024 * 1024))
    assert all(len(chunk) <= 1024 * 1024 for chunk in chunks)
    assert b"".join(chunks) == data


def test_stream_keeps_reading_the_generation_it_started_with(env):
    env.storage.put(env.bucket, "a", b"1" * 100, content_type="text/plain")
    chunks = env.storage.stream(env.bucket, "a", chunk_size=10)
    first = next(chunks)
    env.storage.put(env.bucket, "a", b"2" * 100, content_type="text/plain")
    assert first + b"".join(chunks) == b"1" * 100


def test_overwrite_makes_a_new_generation(env):
    first = env.storage.put(env.bucket, "a", b"one", content_type="text/plain", metadata={"v": "1"})
    second = env.storage.put(env.bucket, "a", b"two", content_type="text/csv")
    assert second.generation > first.generation
    assert env.storage.get(env.bucket, "a") == b"two"
    info = env.storage.info(env.bucket, "a")
    assert (info.content_type, info.metadata) == ("text/csv", {})


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, b"0"),
        (2, 5, b"2345"),
        (7, None, b"789"),
        (None, 3, b"0123"),
        (8, 100, b"89"),
        (10, None, b""),
        (50, 60, b""),
    ],
)
def test_get_reads_inclusive_byte_ranges_clipped_to_the_object(env, start, end, expected):
    env.storage.put(env.bucket, "digits", b"0123456789", content_type="text/plain")
    assert env.storage.get(env.bucket, "digits", start=start, end=end) == expected


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 2), (None, -3)])
def test_backward_or_negative_ranges_are_refused(env, start, end):
    env.storage.put(env.bucket, "digits", b"0123456789", content_type="text/plain")
    with pytest.raises(InvalidRequestError):
        env.storage.get(env.bucket, "digits", start=start, end=end)


def test_missing_objects_are_not_found(env):
    assert not env.storage.exists(env.bucket, "nope")
    with pytest.raises(NotFoundError):
        env.storage.get(env.bucket, "nope")
    with pytest.raises(NotFoundError):
        env.storage.info(env.bucket, "nope")
    with pytest.raises(NotFoundError):
        env.storage.stream(env.bucket, "nope")
    with pytest.raises(NotFoundError):
        env.storage.copy(env.bucket, "nope", env.bucket, "there")
    with pytest.raises(NotFoundError):
        env.storage.move(env.bucket, "nope", env.bucket, "there")


# -- names, content types, metadata, sizes ------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../escape",
        "a/../../etc/passwd",
        "a/..",
        "./a",
        "a/./b",
        "/absolute",
        "a//b",
        "nul\x00byte",
        "back\\slash",
        "..\\windows",
        "line\nbreak",
        "carriage\rreturn",
        "x" * 1025,
        "é" * 513,
    ],
)
def test_unsafe_object_names_are_refused_everywhere(env, name):
    calls = [
        lambda: env.storage.put(env.bucket, name, b"x", content_type="text/plain"),
        lambda: env.storage.get(env.bucket, name),
        lambda: env.storage.info(env.bucket, name),
        lambda: env.storage.exists(env.bucket, name),
        lambda: env.storage.delete(env.bucket, name),
        lambda: env.storage.copy(env.bucket, "src", env.bucket, name),
        lambda: env.storage.signed_url(env.bucket, name, expires_in=timedelta(minutes=5)),
    ]
    env.storage.put(env.bucket, "src", b"x", content_type="text/plain")
    for call in calls:
        with pytest.raises(InvalidRequestError):
            call()


@pytest.mark.parametrize(
    "name",
    [
        "plain",
        "with space",
        "Zoë/你好/🎤.wav",
        "a/b/",
        "100%~!$&'()*+,;=:@.txt",
        "x" * 1024,
        "..hidden",
        "a..b",
    ],
)
def test_unusual_but_valid_names_round_trip(env, name):
    env.storage.put(env.bucket, name, name.encode(), content_type="text/plain")
    assert env.storage.get(env.bucket, name) == name.encode()
    assert [item.name for item in env.storage.list(env.bucket).items] == [name]


@pytest.mark.parametrize("bucket", ["", "UPPER", "a", "-leading", "has/slash", "a..b", "x" * 64])
def test_bad_bucket_names_are_refused(env, bucket):
    with pytest.raises(InvalidRequestError):
        env.storage.put(bucket, "a", b"x", content_type="text/plain")


@pytest.mark.parametrize(
    "content_type",
    ["", "text", "text/", "/plain", "text/plain\r\nX-Evil: 1", "a b/c", "text/plain; charset"],
)
def test_malformed_content_types_are_refused(env, content_type):
    with pytest.raises(InvalidRequestError):
        env.storage.put(env.bucket, "a", b"x", content_type=content_type)
    assert not env.storage.exists(env.bucket, "a")


# Emulator gap: gcp-storage-emulator drops content-type parameters; Cloud Storage keeps them.
@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_content_type_parameters_are_kept(env):
    env.storage.put(env.bucket, "a", b"x", content_type="text/plain; charset=utf-8")
    assert env.storage.info(env.bucket, "a").content_type == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "metadata", [{"": "x"}, {"k": 1}, {"k\n": "v"}, {"k": "v\r\n"}, {"big": "x" * 9000}]
)
def test_unusable_metadata_is_refused(env, metadata):
    with pytest.raises(InvalidRequestError):
        env.storage.put(env.bucket, "a", b"x", content_type="text/plain", metadata=metadata)


def test_uploads_over_the_limit_are_refused_and_leave_nothing(env):
    too_big = b"x" * (MAX_UPLOAD + 1)
    with pytest.raises(PayloadTooLargeError):
        env.storage.put(env.bucket, "big", too_big, content_type="application/octet-stream")
    with pytest.raises(PayloadTooLargeError):
        env.storage.put(
            env.bucket, "big", io.BytesIO(too_big), content_type="application/octet-stream"
        )
    with pytest.raises(PayloadTooLargeError):
        env.storage.put(
            env.bucket, "big", OneWayStream(too_big), content_type="application/octet-stream"
        )
    assert not env.storage.exists(env.bucket, "big")
    exact = env.storage.put(
        env.bucket, "exact", OneWayStream(too_big[:-1]), content_type="application/octet-stream"
    )
    assert exact.size == MAX_UPLOAD


# -- listing ------------------------------------------------------------------------------


def seed(env: Env, names: list[str]) -> None:
    for name in names:
        env.storage.put(env.bucket, name, name.encode(), content_type="text/plain")


def all_names(env: Env, prefix: str = "", page_size: int = 1000) -> list[str]:
    names: list[str] = []
    cursor = None
    for _ in range(100):
        page = env.storage.list(env.bucket, prefix, page_size=page_size, cursor=cursor)
        names.extend(item.name for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return names
    raise AssertionError("the listing never ended")


def test_list_by_prefix_sorts_by_utf8_bytes(env):
    # "a" and "a/b" coexist, as in Cloud Storage; "é" (C3 A9) sorts after "z".
    seed(env, ["z", "a/b", "a", "é", "a/c/d", "ab", "b/a", "A"])
    assert all_names(env) == ["A", "a", "a/b", "a/c/d", "ab", "b/a", "z", "é"]
    assert all_names(env, "a/") == ["a/b", "a/c/d"]
    assert all_names(env, "a") == ["a", "a/b", "a/c/d", "ab"]
    assert all_names(env, "é") == ["é"]
    assert all_names(env, "nothing") == []


def test_list_items_carry_full_metadata(env):
    env.storage.put(env.bucket, "m", b"abc", content_type="audio/mpeg", metadata={"k": "v"})
    [item] = env.storage.list(env.bucket).items
    assert (item.name, item.size, item.content_type, item.metadata) == (
        "m",
        3,
        "audio/mpeg",
        {"k": "v"},
    )
    assert item.md5_hash == md5_b64(b"abc")


def test_paged_listing_returns_every_object_once(env):
    names = [f"p/{i:02d}" for i in range(7)]
    seed(env, [*names, "q/other"])
    assert all_names(env, "p/", page_size=3) == names


# Emulator gap: gcp-storage-emulator ignores maxResults and returns every object in one
# page; tests/unit/blobs/test_gcs.py checks the adapter sends maxResults and pageToken.
@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_pages_hold_at_most_page_size_objects(env):
    seed(env, [f"p/{i:02d}" for i in range(7)])
    first = env.storage.list(env.bucket, "p/", page_size=3)
    assert [item.name for item in first.items] == ["p/00", "p/01", "p/02"]
    second = env.storage.list(env.bucket, "p/", page_size=3, cursor=first.next_cursor)
    assert [item.name for item in second.items] == ["p/03", "p/04", "p/05"]
    third = env.storage.list(env.bucket, "p/", page_size=3, cursor=second.next_cursor)
    assert [item.name for item in third.items] == ["p/06"]
    assert third.next_cursor is None
    exact = env.storage.list(env.bucket, "p/", page_size=7)
    assert exact.next_cursor is None


@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_garbage_cursors_are_refused(env):
    with pytest.raises(InvalidRequestError):
        env.storage.list(env.bucket, cursor="%%%not base64")


def test_page_size_must_be_sensible(env):
    with pytest.raises(InvalidRequestError):
        env.storage.list(env.bucket, page_size=0)
    with pytest.raises(InvalidRequestError):
        env.storage.list(env.bucket, page_size=1001)


# -- copy, move, delete -------------------------------------------------------------------


def test_copy_makes_an_independent_object_with_the_same_content(env):
    source = env.storage.put(
        env.bucket, "src", b"voice", content_type="audio/wav", metadata={"k": "v"}
    )
    copied = env.storage.copy(env.bucket, "src", env.other, "dst/copy.wav")
    assert (copied.bucket, copied.name) == (env.other, "dst/copy.wav")
    assert (copied.size, copied.content_type, copied.metadata) == (5, "audio/wav", {"k": "v"})
    assert (copied.md5_hash, copied.crc32c) == (source.md5_hash, source.crc32c)
    assert env.storage.get(env.other, "dst/copy.wav") == b"voice"
    env.storage.put(env.bucket, "src", b"changed", content_type="audio/wav")
    assert env.storage.get(env.other, "dst/copy.wav") == b"voice"
    env.storage.delete(env.bucket, "src")
    assert env.storage.get(env.other, "dst/copy.wav") == b"voice"


def test_copy_replaces_an_existing_destination(env):
    env.storage.put(env.bucket, "src", b"new", content_type="text/plain")
    old = env.storage.put(env.bucket, "dst", b"old", content_type="text/plain")
    copied = env.storage.copy(env.bucket, "src", env.bucket, "dst")
    assert copied.generation > old.generation
    assert env.storage.get(env.bucket, "dst") == b"new"


def test_move_renames_and_removes_the_source(env):
    env.storage.put(
        env.bucket, "incoming/a.wav", b"abc", content_type="audio/wav", metadata={"k": "v"}
    )
    moved = env.storage.move(env.bucket, "incoming/a.wav", env.other, "done/a.wav")
    assert (moved.bucket, moved.name, moved.size, moved.metadata) == (
        env.other,
        "done/a.wav",
        3,
        {"k": "v"},
    )
    assert not env.storage.exists(env.bucket, "incoming/a.wav")
    assert env.storage.get(env.other, "done/a.wav") == b"abc"


def test_move_onto_itself_is_refused(env):
    env.storage.put(env.bucket, "a", b"abc", content_type="text/plain")
    with pytest.raises(InvalidRequestError):
        env.storage.move(env.bucket, "a", env.bucket, "a")
    assert env.storage.get(env.bucket, "a") == b"abc"


def test_delete_reports_whether_there_was_an_object(env):
    env.storage.put(env.bucket, "a", b"abc", content_type="text/plain")
    assert env.storage.delete(env.bucket, "a") is True
    assert env.storage.delete(env.bucket, "a") is False
    assert not env.storage.exists(env.bucket, "a")
    assert env.storage.list(env.bucket).items == []


def test_delete_at_the_current_generation_deletes(env):
    first = env.storage.put(env.bucket, "a", b"one", content_type="text/plain")
    current = env.storage.put(env.bucket, "a", b"two", content_type="text/plain")
    assert current.generation != first.generation
    assert env.storage.delete(env.bucket, "a", if_generation_match=current.generation) is True
    assert not env.storage.exists(env.bucket, "a")


def test_delete_at_a_generation_of_a_missing_object_reports_none(env):
    gone = env.storage.put(env.bucket, "a", b"one", content_type="text/plain")
    env.storage.delete(env.bucket, "a")
    assert env.storage.delete(env.bucket, "a", if_generation_match=gone.generation) is False
    assert env.storage.delete(env.bucket, "never", if_generation_match=gone.generation) is False


def test_delete_prefix_removes_exactly_the_objects_under_it(env):
    names = [f"models/ann/m{i}/file.bin" for i in range(5)] + ["models/anna/keep", "models/bob/x"]
    for name in names:
        env.storage.put(env.bucket, name, b"x" * 10, content_type="application/octet-stream")
    assert env.storage.delete_prefix(env.bucket, "models/ann/") == 5
    left = [info.name for info in env.storage.list(env.bucket).items]
    assert left == ["models/anna/keep", "models/bob/x"]
    assert env.storage.delete_prefix(env.bucket, "models/ann/") == 0
    with pytest.raises(InvalidRequestError):
        env.storage.delete_prefix(env.bucket, "")


# -- signed URLs --------------------------------------------------------------------------


def test_signed_urls_download_the_object(env):
    env.storage.put(env.bucket, "audio/out 1.mp3", b"ID3 audio", content_type="audio/mpeg")
    url = env.storage.signed_url(env.bucket, "audio/out 1.mp3", expires_in=timedelta(minutes=15))
    assert url.startswith("http")
    assert env.download(url) == (200, b"ID3 audio")


@pytest.mark.parametrize(
    ("expires_in", "method"),
    [(timedelta(0), "GET"), (timedelta(days=8), "GET"), (timedelta(minutes=1), "DELETE")],
)
def test_signed_url_requests_out_of_bounds_are_refused(env, expires_in, method):
    with pytest.raises(InvalidRequestError):
        env.storage.signed_url(env.bucket, "a", expires_in=expires_in, method=method)


# Emulator gap: gcp-storage-emulator serves any URL, signed or not. The local blob server
# checks signatures; tests/unit/blobs/test_blob_server.py covers it further.
@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_forged_or_expired_signed_urls_are_refused(env, monkeypatch):
    env.storage.put(env.bucket, "secret", b"private", content_type="text/plain")
    env.storage.put(env.bucket, "other", b"other", content_type="text/plain")
    url = env.storage.signed_url(env.bucket, "secret", expires_in=timedelta(seconds=60))
    assert env.download(url)[0] == 200
    assert env.download(url.replace("/secret?", "/other?"))[0] == 403
    assert env.download(url[:-4] + "0000")[0] == 403
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    monkeypatch.setattr(time, "time", lambda: expires + 1.0)
    assert env.download(url)[0] == 403


def upload(env: Env, url: str, data: bytes, headers: dict[str, str]) -> int:
    """PUT ``data`` to a signed upload URL the way a mobile app would; return the status."""
    if isinstance(env.storage, LocalObjectStorage):
        parts = urlsplit(url)
        served = Client(BlobServer(env.storage)).put(
            parts.path, query_string=parts.query, data=data, headers=headers
        )
        return served.status_code
    return requests.put(url, data=data, headers=headers, timeout=10).status_code


def test_signed_upload_urls_store_the_object_sent_with_the_signed_headers(env):
    signed = env.storage.signed_upload_url(
        env.bucket,
        "samples/u1/s1/audio",
        expires_in=timedelta(minutes=10),
        content_type="audio/wav",
        max_bytes=1000,
    )
    assert signed.method == "PUT"
    assert signed.max_bytes == 1000
    assert signed.headers["Content-Type"] == "audio/wav"
    assert signed.expires_at > datetime.now(UTC) + timedelta(minutes=9)
    assert upload(env, signed.url, b"RIFF upload", signed.headers) in (200, 201)
    assert env.storage.get(env.bucket, "samples/u1/s1/audio") == b"RIFF upload"
    assert env.storage.info(env.bucket, "samples/u1/s1/audio").content_type == "audio/wav"


@pytest.mark.parametrize(
    ("expires_in", "content_type", "max_bytes"),
    [
        (timedelta(0), "audio/wav", 10),
        (timedelta(days=8), "audio/wav", 10),
        (timedelta(minutes=1), "not a type", 10),
        (timedelta(minutes=1), "audio/wav", 0),
    ],
)
def test_signed_upload_requests_out_of_bounds_are_refused(env, expires_in, content_type, max_bytes):
    with pytest.raises(InvalidRequestError):
        env.storage.signed_upload_url(
            env.bucket, "a", expires_in=expires_in, content_type=content_type, max_bytes=max_bytes
        )


# -- preconditions ------------------------------------------------------------------------
# Emulator gap: gcp-storage-emulator ignores ifGenerationMatch (on DELETE too: it deletes
# a newer generation), so these run on the local adapter; tests/unit/blobs/test_gcs.py
# checks the Cloud Storage adapter sends the precondition and maps a 412 to the same errors.


@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_generation_zero_creates_only_when_absent(env):
    first = env.storage.put(
        env.bucket, "a", b"one", content_type="text/plain", if_generation_match=0
    )
    with pytest.raises(ObjectAlreadyExistsError):
        env.storage.put(env.bucket, "a", b"two", content_type="text/plain", if_generation_match=0)
    assert env.storage.get(env.bucket, "a") == b"one"
    assert env.storage.info(env.bucket, "a").generation == first.generation


@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_generation_match_guards_read_modify_write(env):
    first = env.storage.put(env.bucket, "a", b"one", content_type="text/plain")
    second = env.storage.put(
        env.bucket, "a", b"two", content_type="text/plain", if_generation_match=first.generation
    )
    with pytest.raises(PreconditionFailedError) as caught:
        env.storage.put(
            env.bucket,
            "a",
            b"three",
            content_type="text/plain",
            if_generation_match=first.generation,
        )
    assert not isinstance(caught.value, ObjectAlreadyExistsError)
    with pytest.raises(PreconditionFailedError):
        env.storage.put(
            env.bucket,
            "missing",
            b"x",
            content_type="text/plain",
            if_generation_match=second.generation,
        )
    assert env.storage.get(env.bucket, "a") == b"two"


@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_delete_at_a_stale_generation_leaves_the_newer_object(env):
    first = env.storage.put(env.bucket, "a", b"one", content_type="text/plain")
    current = env.storage.put(env.bucket, "a", b"two", content_type="text/plain")
    with pytest.raises(PreconditionFailedError) as caught:
        env.storage.delete(env.bucket, "a", if_generation_match=first.generation)
    assert not isinstance(caught.value, ObjectAlreadyExistsError)
    assert env.storage.get(env.bucket, "a") == b"two"
    assert env.storage.info(env.bucket, "a").generation == current.generation
    with pytest.raises(InvalidRequestError):
        env.storage.delete(env.bucket, "a", if_generation_match=-1)


@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_copy_and_move_honour_the_destination_precondition(env):
    env.storage.put(env.bucket, "src", b"src", content_type="text/plain")
    env.storage.put(env.bucket, "taken", b"taken", content_type="text/plain")
    with pytest.raises(ObjectAlreadyExistsError):
        env.storage.copy(env.bucket, "src", env.bucket, "taken", if_generation_match=0)
    with pytest.raises(ObjectAlreadyExistsError):
        env.storage.move(env.bucket, "src", env.bucket, "taken", if_generation_match=0)
    assert env.storage.get(env.bucket, "taken") == b"taken"
    assert env.storage.get(env.bucket, "src") == b"src"
    env.storage.move(env.bucket, "src", env.bucket, "free", if_generation_match=0)
    assert env.storage.get(env.bucket, "free") == b"src"


@pytest.mark.parametrize("env", LOCAL_ONLY, indirect=True)
def test_concurrent_exclusive_creates_have_exactly_one_winner(env):
    threads = 8
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create(index: int) -> None:
        barrier.wait()
        try:
            env.storage.put(
                env.bucket,
                "lock",
                f"writer {index}".encode(),
                content_type="text/plain",
                if_generation_match=0,
            )
            result = f"won {index}"
        except ObjectAlreadyExistsError:
            result = "lost"
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=create, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1
    assert outcomes.count("lost") == threads - 1
    assert env.storage.get(env.bucket, "lock") == f"writer {winners[0].split()[1]}".encode()
