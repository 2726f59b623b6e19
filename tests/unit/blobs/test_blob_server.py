"""The gateway's signed-URL server: signatures and expiry checked, objects served with Range."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from werkzeug.test import Client, TestResponse

from local.blob_server import BlobServer
from shared.blobs.local import INLINE_MAX_BYTES, LocalObjectStorage

BUCKET = "voice-audio"
DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def storage(tmp_path: Path) -> LocalObjectStorage:
    storage = LocalObjectStorage(
        tmp_path / "blobs",
        signing_key=b"k" * 32,
        public_base_url="http://127.0.0.1:8080/",
        max_upload_bytes=1024 * 1024,
    )
    storage.put(BUCKET, "out/täst 1.wav", DATA, content_type="audio/wav")
    return storage


@pytest.fixture
def client(storage: LocalObjectStorage) -> Client:
    return Client(BlobServer(storage))


def fetch(client: Client, url: str, method: str = "GET", **headers: str) -> TestResponse:
    parts = urlsplit(url)
    return client.open(parts.path, method=method, query_string=parts.query, headers=headers)


def signed(storage: LocalObjectStorage, name: str = "out/täst 1.wav", **kwargs) -> str:
    return storage.signed_url(BUCKET, name, expires_in=timedelta(minutes=5), **kwargs)


def assert_error_body(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status
    body = json.loads(response.get_data())
    assert set(body) >= {"error", "code", "timestamp", "requestId"}
    assert body["code"] == code
    assert response.headers["X-Request-Id"] == body["requestId"]


def test_signed_url_points_at_the_gateway_with_expiry_and_signature(storage):
    url = signed(storage)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.1:8080"
    assert parts.path == "/_blobs/voice-audio/out/t%C3%A4st%201.wav"
    query = parse_qs(parts.query)
    assert abs(int(query["expires"][0]) - (time.time() + 300)) < 5
    assert len(query["signature"][0]) == 64


def test_a_valid_url_serves_the_object_with_its_headers(client, storage):
    response = fetch(client, signed(storage))
    info = storage.info(BUCKET, "out/täst 1.wav")
    assert response.status_code == 200
    assert response.get_data() == DATA
    assert response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{info.md5_hash}"'
    assert response.headers["x-goog-hash"] == f"crc32c={info.crc32c},md5={info.md5_hash}"
    assert "Last-Modified" in response.headers


def test_head_answers_headers_without_a_body(client, storage):
    response = fetch(client, signed(storage), method="HEAD")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.get_data() == b""


@pytest.mark.parametrize(
    ("header", "content_range", "body"),
    [
        ("bytes=0-9", "bytes 0-9/1024", DATA[:10]),
        ("bytes=1000-", "bytes 1000-1023/1024", DATA[1000:]),
        ("bytes=-4", "bytes 1020-1023/1024", DATA[-4:]),
        ("bytes=1020-5000", "bytes 1020-1023/1024", DATA[1020:]),
    ],
)
def test_ranges_answer_206_with_content_range(client, storage, header, content_range, body):
    response = fetch(client, signed(storage), Range=header)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == content_range
    assert response.headers["Content-Length"] == str(len(body))
    assert response.get_data() == body


@pytest.mark.parametrize("size", [INLINE_MAX_BYTES, INLINE_MAX_BYTES + 1])
def test_inline_and_file_objects_serve_alike(client, storage, tmp_path, size):
    data = bytes(i % 249 for i in range(size))
    info = storage.put(BUCKET, "timestamps.json", data, content_type="application/json")
    url = signed(storage, "timestamps.json")
    files = [p for p in (tmp_path / "blobs" / BUCKET).rglob("*") if p.is_file()]
    assert len(files) == (1 if size > INLINE_MAX_BYTES else 0)  # the fixture's DATA is inline
    whole = fetch(client, url)
    assert whole.status_code == 200
    assert whole.get_data() == data
    assert whole.headers["Content-Length"] == str(size)
    assert whole.headers["ETag"] == f'"{info.md5_hash}"'
    assert whole.headers["x-goog-generation"] == str(info.generation)
    part = fetch(client, url, Range="bytes=100-199")
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}"
    assert part.get_data() == data[100:200]
    tail = fetch(client, url, Range="bytes=-10")
    assert (tail.status_code, tail.get_data()) == (206, data[-10:])
    assert fetch(client, url, Range=f"bytes={size}-").status_code == 416
    assert fetch(client, url, **{"If-None-Match": whole.headers["ETag"]}).status_code == 304
    assert fetch(client, url, method="HEAD").headers["Content-Length"] == str(size)


def test_unsatisfiable_ranges_answer_416(client, storage):
    response = fetch(client, signed(storage), Range="bytes=5000-6000")
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */1024"


def test_conditional_requests_answer_304(client, storage):
    etag = fetch(client, signed(storage)).headers["ETag"]
    response = fetch(client, signed(storage), **{"If-None-Match": etag})
    assert response.status_code == 304
    assert response.get_data() == b""


def test_forged_signatures_answer_403(client, storage):
    url = signed(storage)
    forged = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert_error_body(fetch(client, forged), 403, "ACCESS_DENIED")


def test_a_signature_does_not_carry_over_to_another_object_or_expiry(client, storage):
    storage.put(BUCKET, "other", b"other", content_type="text/plain")
    url = signed(storage)
    query = parse_qs(urlsplit(url).query)
    other = f"/_blobs/{BUCKET}/other?{urlsplit(url).query}"
    assert_error_body(fetch(client, other), 403, "ACCESS_DENIED")
    later = urlencode(
        {"expires": int(query["expires"][0]) + 3600, "signature": query["signature"][0]}
    )
    assert_error_body(fetch(client, f"{urlsplit(url).path}?{later}"), 403, "ACCESS_DENIED")


def test_a_key_other_than_the_signers_is_refused(tmp_path, storage):
    impostor = LocalObjectStorage(
        tmp_path / "other",
        signing_key=b"x" * 32,
        public_base_url="http://127.0.0.1:8080",
        max_upload_bytes=1024,
    )
    url = impostor.signed_url(BUCKET, "out/täst 1.wav", expires_in=timedelta(minutes=5))
    assert_error_body(fetch(Client(BlobServer(storage)), url), 403, "ACCESS_DENIED")


@pytest.mark.parametrize(
    "query", ["", "expires=99999999999", "signature=abc", "expires=x&signature=abc"]
)
def test_missing_or_malformed_signatures_answer_403(client, query):
    response = client.get(f"/_blobs/{BUCKET}/out/t%C3%A4st%201.wav", query_string=query)
    assert_error_body(response, 403, "ACCESS_DENIED")


def test_expired_urls_answer_403(client, storage, monkeypatch):
    url = signed(storage)
    assert fetch(client, url).status_code == 200
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    monkeypatch.setattr(time, "time", lambda: expires + 1.0)
    response = fetch(client, url)
    assert_error_body(response, 403, "ACCESS_DENIED")
    assert "expired" in json.loads(response.get_data())["error"]


def test_a_valid_signature_for_a_missing_object_answers_404(client, storage):
    url = signed(storage, "not/there")
    assert_error_body(fetch(client, url), 404, "NOT_FOUND")


def test_other_methods_answer_405(client, storage):
    response = fetch(client, signed(storage), method="DELETE")
    assert_error_body(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "GET, HEAD, PUT"


def test_a_download_url_does_not_allow_an_upload(client, storage):
    response = client.open(
        urlsplit(signed(storage)).path,
        method="PUT",
        query_string=urlsplit(signed(storage)).query,
        data=b"overwrite",
        headers={"Content-Type": "audio/wav"},
    )
    assert_error_body(response, 403, "ACCESS_DENIED")
    assert storage.get(BUCKET, "out/täst 1.wav") == DATA


def upload_url(storage: LocalObjectStorage, name: str, max_bytes: int = 100) -> str:
    upload = storage.signed_upload_url(
        BUCKET, name, expires_in=timedelta(minutes=5), content_type="audio/wav", max_bytes=max_bytes
    )
    assert upload.headers == {"Content-Type": "audio/wav"}
    assert upload.method == "PUT"
    return upload.url


def put(client: Client, url: str, data: bytes, content_type: str = "audio/wav") -> TestResponse:
    parts = urlsplit(url)
    return client.put(
        parts.path, query_string=parts.query, data=data, headers={"Content-Type": content_type}
    )


def test_a_signed_upload_stores_the_object_with_its_content_type(client, storage):
    response = put(client, upload_url(storage, "up/take 1.wav"), b"RIFF-data")
    assert response.status_code == 200
    assert storage.get(BUCKET, "up/take 1.wav") == b"RIFF-data"
    info = storage.info(BUCKET, "up/take 1.wav")
    assert info.content_type == "audio/wav"
    assert response.headers["x-goog-generation"] == str(info.generation)


def test_a_signed_upload_refuses_another_content_type_a_larger_body_or_another_name(
    client, storage
):
    url = upload_url(storage, "up/a.wav", max_bytes=10)
    assert_error_body(put(client, url, b"x", content_type="text/html"), 403, "ACCESS_DENIED")
    assert_error_body(put(client, url, b"x" * 11), 413, "PAYLOAD_TOO_LARGE")
    assert_error_body(
        put(client, url.replace("/up/a.wav?", "/up/b.wav?"), b"x"), 403, "ACCESS_DENIED"
    )
    assert_error_body(
        put(client, url.replace("maxBytes=10", "maxBytes=99"), b"x" * 50), 403, "ACCESS_DENIED"
    )
    assert not storage.exists(BUCKET, "up/a.wav")
    assert not storage.exists(BUCKET, "up/b.wav")
    assert put(client, url, b"x" * 10).status_code == 200


def test_a_signed_upload_url_uploads_once(client, storage):
    url = upload_url(storage, "up/once.wav")
    assert put(client, url, b"first").status_code == 200
    assert_error_body(put(client, url, b"second"), 409, "OBJECT_ALREADY_EXISTS")
    assert storage.get(BUCKET, "up/once.wav") == b"first"


def test_a_signed_upload_expires(client, storage, monkeypatch):
    url = upload_url(storage, "up/late.wav")
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    monkeypatch.setattr(time, "time", lambda: expires + 1.0)
    assert_error_body(put(client, url, b"x"), 403, "ACCESS_DENIED")


def test_a_signed_upload_is_capped_by_the_storage_limit(storage):
    upload = storage.signed_upload_url(
        BUCKET,
        "up/big",
        expires_in=timedelta(minutes=5),
        content_type="audio/wav",
        max_bytes=10**12,
    )
    assert upload.max_bytes == storage.max_upload_bytes


@pytest.mark.parametrize(
    "path",
    ["/_blobs/voice-audio/../etc/passwd", "/_blobs/voice-audio/", "/_blobs/BAD/x", "/elsewhere/x"],
)
def test_paths_that_name_no_object_answer_404(client, path):
    assert client.get(path, query_string="expires=1&signature=x").status_code == 404


def test_request_ids_are_echoed(client, storage):
    response = fetch(client, signed(storage), **{"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
