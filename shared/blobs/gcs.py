"""The production object storage: Cloud Storage through ``google-cloud-storage``.

The adapter translates: our calls to the client's, the client's errors to ours. Uploads of
at most ``RESUMABLE_THRESHOLD`` bytes (the library's own multipart limit, 8 MiB) go in one
multipart request; larger or unknown-size uploads use a resumable session in
``RESUMABLE_CHUNK`` pieces, so memory stays bounded and a failed chunk is retried alone.
An upload stream that runs past ``max_upload_bytes`` raises in the middle of its session;
Cloud Storage never finalizes an incomplete session, so no object appears.

Signed URLs are V4. Key-file service-account credentials sign locally; the metadata-server
credentials of Cloud Functions and Cloud Run cannot, so for those the library signs through
the IAM ``signBlob`` API with the account's email and access token (the account needs
``roles/iam.serviceAccountTokenCreator`` on itself).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import google_crc32c
import requests
from google.api_core import exceptions as gexc
from google.auth import credentials as gauth_credentials
from google.auth.transport.requests import Request as AuthRequest
from google.cloud.storage import Client as StorageClient
from google.cloud.storage.retry import DEFAULT_RETRY

from shared.blobs.base import (
    DEFAULT_CHUNK_SIZE,
    Data,
    LimitedReader,
    ObjectAlreadyExistsError,
    ObjectInfo,
    ObjectPage,
    ObjectStorage,
    SignedUpload,
    check_bucket_name,
    check_chunk_size,
    check_content_type,
    check_generation,
    check_metadata,
    check_object_name,
    check_prefix,
    check_range,
    check_signed_upload_request,
    check_signed_url_request,
    check_upload_size,
    known_size,
)
from shared.errors import (
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    ServiceUnavailableError,
)

RESUMABLE_THRESHOLD = 8 * 1024 * 1024
RESUMABLE_CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as the resumable API requires
_TIMEOUT = 60.0


class GcsObjectStorage(ObjectStorage):
    """Object storage on Cloud Storage (or ``gcp-storage-emulator``).

    ``signing_credentials`` overrides the client's credentials for signing URLs (a
    service-account key, for instance); by default the client's own are used.
    """

    def __init__(
        self,
        client: StorageClient,
        *,
        max_upload_bytes: int,
        signing_credentials: gauth_credentials.Credentials | None = None,
        retry_timeout: float = 30.0,
    ) -> None:
        super().__init__(max_upload_bytes=max_upload_bytes)
        self._client = client
        self._signing_credentials = signing_credentials
        # The client retries transient errors (429, 5xx, resets) with backoff for 120 s by
        # default; a function has less time than that, so give up sooner and say so.
        self._retry = DEFAULT_RETRY.with_timeout(retry_timeout)

    def close(self) -> None:
        self._client.close()

    def _blob(self, bucket: str, name: str, *, generation: int | None = None) -> Any:
        check_bucket_name(bucket)
        check_object_name(name)
        return self._client.bucket(bucket).blob(name, generation=generation)

    # -- writes ------------------------------------------------------------------------

    def put(
        self,
        bucket: str,
        name: str,
        data: Data,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        blob = self._blob(bucket, name)
        check_content_type(content_type)
        custom = check_metadata(metadata)
        check_generation(if_generation_match)
        size = known_size(data)
        check_upload_size(size, self.max_upload_bytes)
        if isinstance(data, bytes | bytearray | memoryview):
            stream: Any = io.BytesIO(bytes(data))
        else:
            stream = LimitedReader(data, self.max_upload_bytes)
        if size is None or size > RESUMABLE_THRESHOLD:
            blob.chunk_size = RESUMABLE_CHUNK
        blob.metadata = custom or None
        with _translated_errors(bucket, name, if_generation_match):
            blob.upload_from_file(
                stream,
                size=size,
                content_type=content_type,
                if_generation_match=if_generation_match,
                retry=self._retry,
            )
        return _info(blob)

    def copy(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        *,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        return self._copy(bucket, name, dest_bucket, dest_name, if_generation_match)[0]

    def move(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        *,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        if (bucket, name) == (dest_bucket, dest_name):
            raise InvalidRequestError("An object cannot be moved onto itself")
        info, source_generation = self._copy(
            bucket, name, dest_bucket, dest_name, if_generation_match
        )
        # Delete only the generation that was copied: a newer upload to the source name,
        # landed meanwhile, is not ours to remove.
        with suppress(PreconditionFailedError):
            self.delete(bucket, name, if_generation_match=source_generation)
        return info

    def _copy(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        if_generation_match: int | None,
    ) -> tuple[ObjectInfo, int]:
        check_generation(if_generation_match)
        source_generation = self.info(bucket, name).generation
        source = self._blob(bucket, name, generation=source_generation)
        dest = self._blob(dest_bucket, dest_name)
        token: str | None = None
        with _translated_errors(dest_bucket, dest_name, if_generation_match):
            # Rewrite (not copyTo) works across locations and storage classes and for
            # objects of any size: large copies take several calls, each given the token.
            while True:
                token, _, _ = dest.rewrite(
                    source, token=token, if_generation_match=if_generation_match, retry=self._retry
                )
                if token is None:
                    break
        return _info(dest), source_generation

    def delete(self, bucket: str, name: str, *, if_generation_match: int | None = None) -> bool:
        blob = self._blob(bucket, name)
        check_generation(if_generation_match)
        try:
            with _translated_errors(bucket, name, if_generation_match):
                blob.delete(if_generation_match=if_generation_match, retry=self._retry)
        except NotFoundError:
            return False
        return True

    # -- reads -------------------------------------------------------------------------

    def info(self, bucket: str, name: str) -> ObjectInfo:
        blob = self._blob(bucket, name)
        with _translated_errors(bucket, name, None):
            blob.reload(retry=self._retry)
        return _info(blob)

    def get(
        self, bucket: str, name: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        check_range(start, end)
        blob = self._blob(bucket, name)
        try:
            with _translated_errors(bucket, name, None):
                data: bytes = blob.download_as_bytes(start=start, end=end, retry=self._retry)
        except _RangeNotSatisfiableError:
            return b""
        return data

    def stream(
        self, bucket: str, name: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_chunk_size(chunk_size)
        blob = self._blob(bucket, name)
        with _translated_errors(bucket, name, None):
            blob.reload(retry=self._retry)
        # One streamed request for the pinned generation: Cloud Storage serves a request
        # from one generation, whereas ranged requests could see an overwrite between
        # them and fail (without versioning the old generation is gone).
        try:
            response = self._client._http.get(blob.media_link, stream=True, timeout=_TIMEOUT)
        except requests.RequestException as exc:
            raise ServiceUnavailableError("Cloud Storage is unavailable", retry_after=5) from exc
        if response.status_code != 200:
            response.close()
            with _translated_errors(bucket, name, None):
                raise gexc.from_http_response(response)  # type: ignore[no-untyped-call]  # untyped helper
        return _verified_chunks(response, chunk_size, blob.crc32c, f"{bucket}/{name}")

    def list(
        self, bucket: str, prefix: str = "", *, page_size: int = 1000, cursor: str | None = None
    ) -> ObjectPage:
        check_bucket_name(bucket)
        check_prefix(prefix)
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= 1000
        ):
            raise InvalidRequestError("page_size must be between 1 and 1000")
        with _translated_errors(bucket, prefix, None):
            iterator = self._client.list_blobs(
                bucket,
                prefix=prefix or None,
                page_size=page_size,
                page_token=cursor,
                retry=self._retry,
            )
            page = next(iterator.pages, None)
            items = [_info(blob) for blob in page] if page is not None else []
        return ObjectPage(items, iterator.next_page_token or None)

    def signed_url(
        self, bucket: str, name: str, *, expires_in: timedelta, method: str = "GET"
    ) -> str:
        blob = self._blob(bucket, name)
        check_signed_url_request(expires_in, method)
        options = self._signing_options()
        with _translated_errors(bucket, name, None):
            url: str = blob.generate_signed_url(
                version="v4", expiration=expires_in, method=method, **options
            )
        return url

    def signed_upload_url(
        self,
        bucket: str,
        name: str,
        *,
        expires_in: timedelta,
        content_type: str,
        max_bytes: int,
    ) -> SignedUpload:
        blob = self._blob(bucket, name)
        limit = check_signed_upload_request(
            expires_in, content_type, max_bytes, self.max_upload_bytes
        )
        # Every header is signed: Cloud Storage refuses an upload with another content
        # type (403), outside the length range (400 EntityTooLarge) or onto an existing
        # object (412).
        signed = {"x-goog-content-length-range": f"0,{limit}", "x-goog-if-generation-match": "0"}
        options = self._signing_options()
        with _translated_errors(bucket, name, None):
            url: str = blob.generate_signed_url(
                version="v4",
                expiration=expires_in,
                method="PUT",
                content_type=content_type,
                headers=dict(signed),  # the client adds "host" to the dict it gets
                **options,
            )
        headers = {"Content-Type": content_type, **signed}
        return SignedUpload(
            url=url,
            headers=headers,
            max_bytes=limit,
            expires_at=datetime.now(UTC) + expires_in,
        )

    def _signing_options(self) -> dict[str, Any]:
        credentials = self._signing_credentials or self._client._credentials
        if isinstance(credentials, gauth_credentials.Signing):
            return {"credentials": credentials}
        return _iam_signing_options(credentials)


def _verified_chunks(
    response: requests.Response, chunk_size: int, crc32c: str | None, what: str
) -> Iterator[bytes]:
    """Yield the body in chunks and check it against the object's CRC32C at the end."""
    checksum = 0
    with response:
        try:
            for chunk in response.iter_content(chunk_size):
                checksum = google_crc32c.extend(checksum, chunk)
                yield chunk
        except requests.RequestException as exc:
            raise ServiceUnavailableError(f"Reading {what} was interrupted") from exc
    if crc32c and base64.b64encode(checksum.to_bytes(4, "big")).decode() != crc32c:
        raise ServiceUnavailableError(f"{what} arrived corrupted; read it again")


def _iam_signing_options(credentials: Any) -> dict[str, Any]:
    """Return the email and token that let IAM sign for metadata-server credentials."""
    if credentials is None or isinstance(credentials, gauth_credentials.AnonymousCredentials):
        raise ConfigurationError("These storage credentials cannot sign URLs")
    try:
        if (
            not credentials.valid
            or getattr(credentials, "service_account_email", "default") == "default"
        ):
            # Compute Engine credentials learn their real email when they first refresh.
            credentials.refresh(AuthRequest())
    except Exception as exc:
        raise ServiceUnavailableError("Could not obtain credentials to sign a URL") from exc
    email = getattr(credentials, "service_account_email", None)
    if not email or email == "default":
        raise ConfigurationError("These storage credentials name no service account")
    return {"service_account_email": email, "access_token": credentials.token}


def _info(blob: Any) -> ObjectInfo:
    return ObjectInfo(
        bucket=blob.bucket.name,
        name=blob.name,
        size=int(blob.size or 0),
        content_type=blob.content_type or "application/octet-stream",
        md5_hash=blob.md5_hash or "",
        crc32c=blob.crc32c or "",
        generation=int(blob.generation),
        metageneration=int(blob.metageneration or 1),
        time_created=_utc(blob.time_created),
        updated=_utc(blob.updated or blob.time_created),
        metadata=dict(blob.metadata or {}),
    )


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _RangeNotSatisfiableError(Exception):
    """A read started past the end of the object: the port answers ``b""``."""


@contextmanager
def _translated_errors(bucket: str, name: str, if_generation_match: int | None) -> Iterator[None]:
    """Turn the client's errors into the platform's."""
    what = f"{bucket}/{name}"
    try:
        yield
    except gexc.NotFound as exc:
        raise NotFoundError(f"Object {what} not found") from exc
    except gexc.PreconditionFailed as exc:
        if if_generation_match == 0:
            raise ObjectAlreadyExistsError(f"Object {what} already exists") from exc
        raise PreconditionFailedError(f"Object {what} changed") from exc
    except gexc.RequestRangeNotSatisfiable as exc:
        raise _RangeNotSatisfiableError() from exc
    except (gexc.Forbidden, gexc.Unauthorized) as exc:
        raise ConfigurationError("The platform may not use this bucket") from exc
    except gexc.BadRequest as exc:
        raise InvalidRequestError(f"Cloud Storage refused the request for {what}") from exc
    except (
        gexc.TooManyRequests,
        gexc.ServerError,
        gexc.DeadlineExceeded,
        gexc.ServiceUnavailable,
        gexc.RetryError,
        requests.RequestException,
    ) as exc:
        raise ServiceUnavailableError("Cloud Storage is unavailable", retry_after=5) from exc
