"""The Cloud Storage adapter's requests, where the emulator cannot tell right from wrong.

gcp-storage-emulator ignores preconditions, page sizes and signatures, so these tests put a
recording ``requests`` transport under a real ``storage.Client`` and check what the adapter
sends (``ifGenerationMatch``, resumable sessions, ``maxResults``/``pageToken``) and how it
reads Cloud Storage's answers (412, 404, 416, 503). Signed URLs are verified with the
public half of a key generated here, by rebuilding the V4 string-to-sign independently.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import google_crc32c
import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import storage
from requests.structures import CaseInsensitiveDict

from shared.blobs.base import ObjectAlreadyExistsError
from shared.blobs.gcs import RESUMABLE_THRESHOLD, GcsObjectStorage
from shared.errors import (
    ConfigurationError,
    NotFoundError,
    PreconditionFailedError,
    ServiceUnavailableError,
)
from tests.support.storage_emulator import (
    SERVICE_ACCOUNT_EMAIL,
    service_account_credentials,
    service_account_public_key,
)

BUCKET = "voice-audio"
Reply = tuple[int, Any, dict[str, str]]


def resource(name: str, *, generation: int = 111, size: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "storage#object",
        "bucket": BUCKET,
        "name": name,
        "generation": str(generation),
        "metageneration": "1",
        "contentType": "text/plain",
        "size": str(size),
        "md5Hash": "rL0Y20zC+Fzt72VPzMSk2A==",
        "crc32c": "N4dBGw==",
        "timeCreated": "2026-01-02T03:04:05.678Z",
        "updated": "2026-01-02T03:04:05.678Z",
        "mediaLink": f"https://storage.googleapis.com/download/storage/v1/b/{BUCKET}/o/{name}?alt=media",
        **extra,
    }


class Recorder(requests.adapters.BaseAdapter):
    """A transport that records every request and answers from ``respond``."""

    def __init__(self, respond: Callable[[requests.PreparedRequest], Reply]) -> None:
        super().__init__()
        self.respond = respond
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def, override]
        if request.method == "GET" and urlsplit(request.url).path == f"/storage/v1/b/{BUCKET}":
            # The client fetches bucket metadata in the background for its telemetry.
            status, body, headers = 200, {"name": BUCKET, "projectNumber": "1"}, {}
        else:
            self.sent.append(request)
            status, body, headers = self.respond(request)
        response = requests.Response()
        response.status_code = status
        response.raw = io.BytesIO(body if isinstance(body, bytes) else json.dumps(body).encode())
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
        response.request = request
        response.url = request.url or ""
        return response

    def close(self) -> None:
        pass

    def queries(self) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(r.url or "").query) for r in self.sent]


def adapter(
    respond: Callable[[requests.PreparedRequest], Reply],
    *,
    credentials: Credentials | None = None,
    max_upload_bytes: int = 64 * 1024 * 1024,
    signing_credentials: Credentials | None = None,
) -> tuple[GcsObjectStorage, Recorder]:
    recorder = Recorder(respond)
    session = requests.Session()
    session.mount("https://", recorder)
    client = storage.Client(
        project="p",
        credentials=credentials or AnonymousCredentials(),
        _http=session,
        client_options={"api_endpoint": "https://storage.googleapis.com"},
    )
    return (
        GcsObjectStorage(
            client,
            max_upload_bytes=max_upload_bytes,
            signing_credentials=signing_credentials,
            retry_timeout=0.5,
        ),
        recorder,
    )


def always(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> Callable[[requests.PreparedRequest], Reply]:
    return lambda request: (status, body if body is not None else {}, headers or {})


def rewritten(resource: dict[str, Any]) -> dict[str, Any]:
    size = resource["size"]
    return {"done": True, "totalBytesRewritten": size, "objectSize": size, "resource": resource}


def gcs_error(status: int) -> dict[str, Any]:
    return {"error": {"code": status, "message": "nope", "errors": [{"reason": "x"}]}}


# -- uploads ------------------------------------------------------------------------------


def test_small_put_is_one_multipart_request_carrying_the_precondition():
    storage_, recorder = adapter(always(200, resource("a.txt", generation=42)))
    info = storage_.put(
        BUCKET,
        "a.txt",
        b"abc",
        content_type="text/plain",
        metadata={"k": "v"},
        if_generation_match=0,
    )
    [request] = recorder.sent
    query = recorder.queries()[0]
    assert request.method == "POST"
    assert urlsplit(request.url).path == f"/upload/storage/v1/b/{BUCKET}/o"
    assert query["uploadType"] == ["multipart"]
    assert query["ifGenerationMatch"] == ["0"]
    body = request.body if isinstance(request.body, bytes) else b""
    assert b"content-type: text/plain" in body
    assert b'"metadata": {"k": "v"}' in body
    assert b"abc" in body
    assert (info.name, info.generation, info.size) == ("a.txt", 42, 3)


def test_large_put_uses_a_resumable_session_with_the_precondition():
    data = b"x" * (RESUMABLE_THRESHOLD + 1)
    # The client checks the finished object's checksums (and deletes it on a mismatch).
    checksums = {
        "md5Hash": base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
        "crc32c": base64.b64encode(google_crc32c.Checksum(data).digest()).decode(),
    }
    session_url = "https://storage.googleapis.com/upload/storage/v1/b/voice-audio/o?upload_id=U1"

    def respond(request: requests.PreparedRequest) -> Reply:
        if request.method == "POST":
            return 200, {}, {"Location": session_url}
        assert request.method == "PUT", (request.method, request.url, dict(request.headers))
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", request.headers["Content-Range"])
        assert match
        end, total = int(match.group(2)), match.group(3)
        if total != "*" and end + 1 == int(total):
            return 200, resource("big.bin", size=len(data), **checksums), {}
        return 308, b"", {"Range": f"bytes=0-{end}"}

    storage_, recorder = adapter(respond)
    info = storage_.put(
        BUCKET, "big.bin", data, content_type="application/octet-stream", if_generation_match=0
    )
    initiate = recorder.sent[0]
    query = recorder.queries()[0]
    assert initiate.method == "POST"
    assert query["uploadType"] == ["resumable"]
    assert query["ifGenerationMatch"] == ["0"]
    chunks = recorder.sent[1:]
    assert [c.method for c in chunks] == ["PUT", "PUT"]
    assert sum(len(c.body or b"") for c in chunks) == len(data)
    assert info.size == len(data)


@pytest.mark.parametrize(
    ("generation", "error"), [(0, ObjectAlreadyExistsError), (7, PreconditionFailedError)]
)
def test_a_412_becomes_a_precondition_error(generation, error):
    storage_, _ = adapter(always(412, gcs_error(412)))
    with pytest.raises(error) as caught:
        storage_.put(BUCKET, "a", b"x", content_type="text/plain", if_generation_match=generation)
    assert (type(caught.value) is ObjectAlreadyExistsError) == (generation == 0)


def test_a_503_on_upload_is_service_unavailable_with_retry_after():
    storage_, recorder = adapter(always(503, gcs_error(503)))
    with pytest.raises(ServiceUnavailableError) as caught:
        storage_.put(BUCKET, "a", b"x", content_type="text/plain")
    assert caught.value.retry_after == 5
    assert len(recorder.sent) >= 1


def test_oversized_streams_stop_the_upload_midway():
    session = "https://storage.googleapis.com/upload/storage/v1/b/voice-audio/o?upload_id=U"
    storage_, recorder = adapter(always(200, {}, {"Location": session}), max_upload_bytes=10)

    class Endless:
        def read(self, size: int = -1) -> bytes:
            return b"y" * (size if size > 0 else 1024)

        def seekable(self) -> bool:
            return False

    from shared.errors import PayloadTooLargeError

    with pytest.raises(PayloadTooLargeError):
        storage_.put(BUCKET, "a", Endless(), content_type="text/plain")  # type: ignore[arg-type]
    assert all(r.method == "POST" for r in recorder.sent)  # the session never got a byte


# -- reads, copies, moves, deletes --------------------------------------------------------


def test_list_sends_page_size_and_token_and_returns_the_next_token():
    body = {"items": [resource("p/1"), resource("p/2")], "nextPageToken": "tok-2"}
    storage_, recorder = adapter(always(200, body))
    page = storage_.list(BUCKET, "p/", page_size=2, cursor="tok-1")
    query = recorder.queries()[0]
    assert (query["maxResults"], query["pageToken"], query["prefix"]) == (["2"], ["tok-1"], ["p/"])
    assert [item.name for item in page.items] == ["p/1", "p/2"]
    assert page.next_cursor == "tok-2"
    assert len(recorder.sent) == 1


def test_last_page_has_no_cursor():
    storage_, _ = adapter(always(200, {"items": [resource("p/1")]}))
    assert storage_.list(BUCKET, page_size=5).next_cursor is None


def test_copy_rewrites_the_pinned_source_generation_with_the_precondition():
    def respond(request: requests.PreparedRequest) -> Reply:
        if request.method == "GET":
            return 200, resource("src", generation=5), {}
        return 200, rewritten(resource("dst", generation=9)), {}

    storage_, recorder = adapter(respond)
    info = storage_.copy(BUCKET, "src", BUCKET, "dst", if_generation_match=0)
    rewrite = recorder.sent[-1]
    query = recorder.queries()[-1]
    assert "/o/src/rewriteTo/b/voice-audio/o/dst" in (rewrite.url or "")
    assert query["ifGenerationMatch"] == ["0"]
    assert query["sourceGeneration"] == ["5"]
    assert info.generation == 9


def test_copy_follows_rewrite_tokens_until_done():
    replies = iter(
        [
            (200, resource("src", generation=5), {}),
            (
                200,
                {
                    "done": False,
                    "rewriteToken": "t1",
                    "totalBytesRewritten": "1",
                    "objectSize": "3",
                },
                {},
            ),
            (200, rewritten(resource("dst")), {}),
        ]
    )
    storage_, recorder = adapter(lambda request: next(replies))
    storage_.copy(BUCKET, "src", BUCKET, "dst")
    assert recorder.queries()[-1]["rewriteToken"] == ["t1"]


def test_move_deletes_only_the_copied_source_generation():
    def respond(request: requests.PreparedRequest) -> Reply:
        if request.method == "GET":
            return 200, resource("src", generation=5), {}
        if request.method == "DELETE":
            return 204, b"", {}
        return 200, rewritten(resource("dst", generation=9)), {}

    storage_, recorder = adapter(respond)
    storage_.move(BUCKET, "src", BUCKET, "dst")
    delete = recorder.sent[-1]
    assert delete.method == "DELETE"
    assert urlsplit(delete.url).path.endswith("/o/src")
    assert recorder.queries()[-1]["ifGenerationMatch"] == ["5"]


def test_move_leaves_a_source_replaced_meanwhile():
    def respond(request: requests.PreparedRequest) -> Reply:
        if request.method == "GET":
            return 200, resource("src", generation=5), {}
        if request.method == "DELETE":
            return 412, gcs_error(412), {}
        return 200, rewritten(resource("dst", generation=9)), {}

    storage_, _ = adapter(respond)
    assert storage_.move(BUCKET, "src", BUCKET, "dst").name == "dst"


def test_delete_of_a_missing_object_returns_false():
    storage_, _ = adapter(always(404, gcs_error(404)))
    assert storage_.delete(BUCKET, "gone") is False


def test_delete_at_a_generation_sends_the_precondition():
    storage_, recorder = adapter(always(204, b""))
    assert storage_.delete(BUCKET, "a", if_generation_match=7) is True
    assert recorder.sent[-1].method == "DELETE"
    assert recorder.queries()[-1]["ifGenerationMatch"] == ["7"]


def test_a_delete_at_a_stale_generation_is_a_precondition_error():
    storage_, _ = adapter(always(412, gcs_error(412)))
    with pytest.raises(PreconditionFailedError) as caught:
        storage_.delete(BUCKET, "a", if_generation_match=7)
    assert type(caught.value) is PreconditionFailedError


def test_a_delete_at_a_generation_of_a_missing_object_returns_false():
    storage_, _ = adapter(always(404, gcs_error(404)))
    assert storage_.delete(BUCKET, "gone", if_generation_match=7) is False


def test_missing_objects_raise_not_found():
    storage_, _ = adapter(always(404, gcs_error(404)))
    with pytest.raises(NotFoundError):
        storage_.info(BUCKET, "gone")
    with pytest.raises(NotFoundError):
        storage_.get(BUCKET, "gone")


def test_a_range_past_the_end_reads_as_empty():
    storage_, recorder = adapter(always(416, gcs_error(416)))
    assert storage_.get(BUCKET, "a", start=10) == b""
    assert recorder.sent[0].headers["Range"] == "bytes=10-"


def test_stream_checks_the_crc32c_of_what_arrived():
    def respond(request: requests.PreparedRequest) -> Reply:
        if "alt=media" in (request.url or ""):
            return 200, b"abd", {"Content-Type": "text/plain"}
        return 200, resource("a"), {}  # crc32c of b"abc"

    storage_, _ = adapter(respond)
    with pytest.raises(ServiceUnavailableError):
        b"".join(storage_.stream(BUCKET, "a"))


# -- signed URLs --------------------------------------------------------------------------


def test_v4_signed_url_carries_a_valid_rsa_signature():
    credentials = service_account_credentials()
    storage_, recorder = adapter(always(200, {}), signing_credentials=credentials)
    url = storage_.signed_url(BUCKET, "audio/out 1.mp3", expires_in=timedelta(minutes=15))
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.scheme == "https"
    assert parts.netloc == "storage.googleapis.com"
    assert parts.path == f"/{BUCKET}/audio/out%201.mp3"
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Expires"] == ["900"]
    assert query["X-Goog-SignedHeaders"] == ["host"]
    assert query["X-Goog-Credential"][0].startswith(f"{SERVICE_ACCOUNT_EMAIL}/")
    assert recorder.sent == []  # a key-file account signs offline

    # Rebuild the V4 string-to-sign independently and check it with the public key.
    canonical_query, _, signature = parts.query.rpartition("&X-Goog-Signature=")
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = unquote(query["X-Goog-Credential"][0]).split("/", 1)[1]
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            query["X-Goog-Date"][0],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    public_key = service_account_public_key()
    public_key.verify(
        bytes.fromhex(signature), string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_v4_signed_upload_url_signs_the_content_type_and_the_length_range():
    credentials = service_account_credentials()
    storage_, _ = adapter(always(200, {}), signing_credentials=credentials)
    upload = storage_.signed_upload_url(
        BUCKET,
        "samples/u/s/audio",
        expires_in=timedelta(minutes=10),
        content_type="audio/mpeg",
        max_bytes=5000,
    )
    parts = urlsplit(upload.url)
    query = parse_qs(parts.query)
    assert upload.method == "PUT"
    assert upload.headers == {
        "Content-Type": "audio/mpeg",
        "x-goog-content-length-range": "0,5000",
        "x-goog-if-generation-match": "0",
    }
    signed_headers = "content-type;host;x-goog-content-length-range;x-goog-if-generation-match"
    assert query["X-Goog-SignedHeaders"] == [signed_headers]

    canonical_query, _, signature = parts.query.rpartition("&X-Goog-Signature=")
    headers = (
        f"content-type:audio/mpeg\nhost:{parts.netloc}\nx-goog-content-length-range:0,5000\n"
        "x-goog-if-generation-match:0\n"
    )
    canonical_request = "\n".join(
        [
            "PUT",
            parts.path,
            canonical_query,
            headers,
            signed_headers,
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = unquote(query["X-Goog-Credential"][0]).split("/", 1)[1]
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            query["X-Goog-Date"][0],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    service_account_public_key().verify(
        bytes.fromhex(signature), string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_metadata_server_credentials_sign_through_iam(monkeypatch):
    class MetadataServerCredentials(Credentials):
        """Like Cloud Functions' credentials: a token and an email, but no private key."""

        service_account_email = "default"

        def refresh(self, request: Any) -> None:
            self.token = "access-token"
            self.service_account_email = "fn@p.iam.gserviceaccount.com"

    signed: list[tuple[str, str]] = []

    def fake_sign_message(message, access_token, service_account_email, universe_domain=None):
        signed.append((access_token, service_account_email))
        return base64.b64encode(b"\x01\x02").decode()

    monkeypatch.setattr("google.cloud.storage._signing._sign_message", fake_sign_message)
    storage_, _ = adapter(always(200, {}), credentials=MetadataServerCredentials())
    url = storage_.signed_url(BUCKET, "a.mp3", expires_in=timedelta(minutes=5))
    assert signed == [("access-token", "fn@p.iam.gserviceaccount.com")]
    assert "X-Goog-Signature=0102" in url
    assert "fn%40p.iam.gserviceaccount.com" in url


def test_anonymous_credentials_cannot_sign():
    storage_, _ = adapter(always(200, {}))
    with pytest.raises(ConfigurationError):
        storage_.signed_url(BUCKET, "a", expires_in=timedelta(minutes=5))
