"""Serves the local object storage's signed download URLs, as Cloud Storage serves V4 ones.

The gateway mounts ``BlobServer`` at ``/_blobs/``: a request for
``/_blobs/{bucket}/{name}?expires=…&signature=…`` is answered only when the HMAC signature
matches and has not expired (403 with the platform's error body otherwise), then the
object is streamed with its Content-Type, Content-Length, ETag and Last-Modified, and with
HTTP Range support (206 with Content-Range; 416 when unsatisfiable). Conditional requests
(If-None-Match, If-Modified-Since) get 304, as from Cloud Storage.

A ``PUT`` to a signed upload URL stores its body as the object when the signature covers
the request's ``Content-Type``, the body stays within the signed ``maxBytes`` (413
otherwise) and the object does not exist yet (409: a URL uploads once); the write
publishes the object-finalized event as every write does.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, cast

from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from shared.blobs.base import LimitedReader, check_bucket_name, check_object_name
from shared.blobs.local import LocalObjectStorage
from shared.blobs.signing import URL_PREFIX
from shared.errors import (
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PlatformError,
)
from shared.http import error_response

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_CHUNK = 256 * 1024


class BlobServer:
    """A WSGI app serving signed object downloads from a ``LocalObjectStorage``."""

    def __init__(self, storage: LocalObjectStorage, *, prefix: str = URL_PREFIX) -> None:
        self._storage = storage
        self._prefix = prefix.rstrip("/")

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        request_id = request.headers.get("X-Request-Id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = f"req-{uuid.uuid4().hex}"
        try:
            response = self._serve(request)
        except PlatformError as exc:
            response = _error(exc, request_id)
        except RequestedRangeNotSatisfiable as exc:
            response = _error(InvalidRequestError("Requested range not satisfiable"), request_id)
            response.status_code = 416
            if exc.length is not None:
                response.headers["Content-Range"] = f"bytes */{exc.length}"
        response.headers["X-Request-Id"] = request_id
        return response(environ, start_response)

    def _serve(self, request: Request) -> Response:
        if request.method == "PUT":
            return self._upload(request)
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowedError(f"{request.method} is not allowed on a signed URL")
        bucket, name = self._bucket_and_name(request.path)
        self._storage.signer.verify(
            request.method,
            bucket,
            name,
            request.args.get("expires"),
            request.args.get("signature"),
        )
        info, handle = self._storage.open(bucket, name)
        response = Response(
            wrap_file(request.environ, handle, _CHUNK),
            mimetype=None,
            content_type=info.content_type,
            direct_passthrough=True,
        )
        response.content_length = info.size
        response.set_etag(info.md5_hash or str(info.generation))
        response.last_modified = info.updated
        response.headers["Cache-Control"] = "private, max-age=0"
        response.headers["x-goog-generation"] = str(info.generation)
        response.headers["x-goog-hash"] = f"crc32c={info.crc32c},md5={info.md5_hash}"
        try:
            return response.make_conditional(request, accept_ranges=True, complete_length=info.size)
        except RequestedRangeNotSatisfiable:
            response.close()
            raise

    def _upload(self, request: Request) -> Response:
        bucket, name = self._bucket_and_name(request.path)
        content_type = request.headers.get("Content-Type", "")
        limit = self._storage.signer.verify_upload(
            bucket,
            name,
            expires=request.args.get("expires"),
            max_bytes=request.args.get("maxBytes"),
            content_type=content_type,
            signature=request.args.get("signature"),
        )
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLargeError(f"The upload exceeds its signed limit of {limit} bytes")
        # Typed as IO[bytes] and RawIOBase, both binary streams that put reads to their end.
        body = cast(BinaryIO, LimitedReader(cast(BinaryIO, request.stream), limit))
        info = self._storage.put(
            bucket, name, body, content_type=content_type, if_generation_match=0
        )
        response = Response(status=200)
        response.set_etag(info.md5_hash)
        response.headers["x-goog-generation"] = str(info.generation)
        response.headers["x-goog-hash"] = f"crc32c={info.crc32c},md5={info.md5_hash}"
        return response

    def _bucket_and_name(self, path: str) -> tuple[str, str]:
        if not path.startswith(self._prefix + "/"):
            raise NotFoundError(f"No object at {path}")
        bucket, _, name = path[len(self._prefix) + 1 :].partition("/")
        try:
            check_bucket_name(bucket)
            check_object_name(name)
        except InvalidRequestError:
            raise NotFoundError(f"No object at {path}") from None
        return bucket, name


def _error(error: PlatformError, request_id: str) -> Response:
    response = error_response(error, request_id)
    if response.status_code == 405:
        response.headers["Allow"] = "GET, HEAD, PUT"
    return response
