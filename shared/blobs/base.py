"""The object storage port: what the platform may ask of Cloud Storage or its stand-in.

Every call names its bucket (the platform has several: models, audio, samples, backups).
Semantics follow Cloud Storage, since that is production: objects are immutable blobs
replaced whole, each write makes a new ``generation``, names sort by their UTF-8 bytes,
``if_generation_match=0`` means "only if absent", a copy or move makes a new object at the
destination (new generation, new creation time). Decisions of our own, which both adapters
keep: ``delete`` of a missing object is not an error (it returns False), so cleanups can
be retried; byte ranges are inclusive and clipped to the object (a range past the end
reads as ``b""``); object names are checked by ``check_object_name`` before any I/O.
"""

from __future__ import annotations

import abc
import io
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import BinaryIO, ClassVar, NamedTuple

from shared.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
)

MAX_NAME_BYTES = 1024
MAX_METADATA_BYTES = 8 * 1024
MAX_SIGNED_URL_EXPIRY = timedelta(days=7)
DEFAULT_CHUNK_SIZE = 1024 * 1024
SIGNED_URL_METHODS = frozenset(["GET", "HEAD"])

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")
_MIME_CHARS = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_CONTENT_TYPE = re.compile(
    rf"^{_MIME_CHARS}/{_MIME_CHARS}"
    rf"(\s*;\s*{_MIME_CHARS}=({_MIME_CHARS}|\"[^\"\\\r\n]*\"))*$"
)
_FORBIDDEN_NAME_CHARS = ("\x00", "\\", "\r", "\n")


class ObjectAlreadyExistsError(ConflictError, PreconditionFailedError):
    """A write with ``if_generation_match=0`` found the object already there (HTTP 409)."""

    code: ClassVar[str] = "OBJECT_ALREADY_EXISTS"
    default_message: ClassVar[str] = "Object already exists"


class ObjectInfo(NamedTuple):
    """An object's metadata, as Cloud Storage reports it.

    ``md5_hash`` and ``crc32c`` are base64 of the big-endian digest, exactly the strings
    of the Cloud Storage JSON API. Times are timezone-aware UTC.
    """

    bucket: str
    name: str
    size: int
    content_type: str
    md5_hash: str
    crc32c: str
    generation: int
    metageneration: int
    time_created: datetime
    updated: datetime
    metadata: Mapping[str, str] = MappingProxyType({})


class SignedUpload(NamedTuple):
    """A URL letting its holder ``PUT`` one object, and the headers the upload must carry.

    The signature covers the content type and the size limit: an upload with another
    ``Content-Type``, or more than ``max_bytes``, is refused by the storage service. The
    upload only creates the object (as ``if_generation_match=0``): once it exists, the
    URL cannot replace it.
    """

    url: str
    headers: dict[str, str]
    max_bytes: int
    expires_at: datetime
    method: str = "PUT"


class ObjectPage(NamedTuple):
    """One page of a listing, sorted by name; ``next_cursor`` is None on the last page."""

    items: list[ObjectInfo]
    next_cursor: str | None = None


Data = bytes | bytearray | memoryview | BinaryIO


class ObjectStorage(abc.ABC):
    """The port. Adapters: ``LocalObjectStorage`` (embedded) and ``GcsObjectStorage``."""

    def __init__(self, *, max_upload_bytes: int) -> None:
        if max_upload_bytes < 1:
            raise ValueError("max_upload_bytes must be positive")
        self.max_upload_bytes = max_upload_bytes

    @abc.abstractmethod
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
        """Store ``data`` (bytes or a binary stream read to its end) as the object.

        Returns the new object's info. Raises InvalidRequestError (bad name, content type
        or metadata), PayloadTooLargeError (more than ``max_upload_bytes``),
        ObjectAlreadyExistsError (``if_generation_match=0`` and it exists) or
        PreconditionFailedError (another generation than ``if_generation_match``).
        """

    @abc.abstractmethod
    def get(
        self, bucket: str, name: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        """Return the object's bytes, or bytes ``start..end`` inclusive; raise NotFoundError."""

    @abc.abstractmethod
    def stream(
        self, bucket: str, name: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Return an iterator over the object's bytes in chunks of at most ``chunk_size``.

        The object is looked up at once (NotFoundError is raised by this call, not by the
        iteration) and the iterator reads that generation even if the object is replaced.
        """

    @abc.abstractmethod
    def info(self, bucket: str, name: str) -> ObjectInfo:
        """Return the object's metadata; raise NotFoundError."""

    def exists(self, bucket: str, name: str) -> bool:
        """Return True when the object exists."""
        try:
            self.info(bucket, name)
        except NotFoundError:
            return False
        return True

    @abc.abstractmethod
    def list(
        self, bucket: str, prefix: str = "", *, page_size: int = 1000, cursor: str | None = None
    ) -> ObjectPage:
        """Return one page of the objects whose names start with ``prefix``, by name."""

    @abc.abstractmethod
    def copy(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        *,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        """Copy the object (content, content type, metadata); return the new object's info.

        ``if_generation_match`` applies to the destination. Raises NotFoundError for a
        missing source, and the precondition errors of ``put``.
        """

    @abc.abstractmethod
    def move(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        *,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        """Copy the object, then delete the source; return the new object's info."""

    @abc.abstractmethod
    def delete(self, bucket: str, name: str, *, if_generation_match: int | None = None) -> bool:
        """Delete the object; return False when there was none (not an error).

        With ``if_generation_match``, delete it only at that generation: a cleanup that
        deletes what it wrote leaves newer content under the name alone. Raises
        PreconditionFailedError (the object is at another generation; it stays).
        """

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object whose name starts with ``prefix``; return how many went.

        ``prefix`` must not be empty (a whole bucket is never deleted this way).
        """
        if not prefix:
            raise InvalidRequestError("delete_prefix needs a non-empty prefix")
        removed = 0
        while True:
            page = self.list(bucket, prefix)
            for info in page.items:
                removed += self.delete(bucket, info.name)
            if not page.items or page.next_cursor is None:
                return removed

    @abc.abstractmethod
    def signed_url(
        self, bucket: str, name: str, *, expires_in: timedelta, method: str = "GET"
    ) -> str:
        """Return a URL that lets anyone holding it ``method`` the object until it expires.

        Raises InvalidRequestError for an expiry outside (0, 7 days] or another method than
        GET or HEAD. The object need not exist yet.
        """

    @abc.abstractmethod
    def signed_upload_url(
        self,
        bucket: str,
        name: str,
        *,
        expires_in: timedelta,
        content_type: str,
        max_bytes: int,
    ) -> SignedUpload:
        """Return a URL that lets anyone holding it upload the object once, until it expires.

        The upload must send ``content_type`` and at most ``max_bytes`` (also capped by
        ``max_upload_bytes``), and succeeds only while the object does not exist, so one
        URL stores one object once; storing it publishes the object-finalized event like
        any write. Raises InvalidRequestError for a bad name, content type, expiry outside
        (0, 7 days] or a size limit below 1.
        """

    def close(self) -> None:  # noqa: B027 - adapters without resources need not override
        """Release clients and background workers."""


def check_bucket_name(bucket: str) -> None:
    """Raise InvalidRequestError unless ``bucket`` follows Cloud Storage's bucket rules."""
    if not isinstance(bucket, str) or not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidRequestError(f"Invalid bucket name: {bucket!r}")


def check_object_name(name: str) -> None:
    """Raise InvalidRequestError unless ``name`` is a safe Cloud Storage object name.

    Cloud Storage's rules (1 to 1024 bytes of UTF-8, no CR or LF) plus ours, so that no
    name can reach outside a folder or mean two things: no NUL, no backslash, no leading
    ``/``, no ``.`` or ``..`` segment, no empty segment except a trailing one.
    """
    if not isinstance(name, str):
        raise InvalidRequestError("Object name must be a string")
    _check_name_text(name, allow_empty=False)
    segments = name.split("/")
    if name.startswith("/"):
        raise InvalidRequestError("Object name must not start with '/'")
    if any(segment in (".", "..") for segment in segments):
        raise InvalidRequestError("Object name must not contain '.' or '..' segments")
    if any(segment == "" for segment in segments[:-1]):
        raise InvalidRequestError("Object name must not contain '//'")


def check_prefix(prefix: str) -> None:
    """Raise InvalidRequestError unless ``prefix`` could begin a valid object name."""
    if not isinstance(prefix, str):
        raise InvalidRequestError("Prefix must be a string")
    _check_name_text(prefix, allow_empty=True)
    if prefix.startswith("/"):
        raise InvalidRequestError("Prefix must not start with '/'")


def _check_name_text(text: str, *, allow_empty: bool) -> None:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequestError("Object name must be valid UTF-8") from None
    if (size == 0 and not allow_empty) or size > MAX_NAME_BYTES:
        raise InvalidRequestError(f"Object name must be 1 to {MAX_NAME_BYTES} bytes of UTF-8")
    if any(char in text for char in _FORBIDDEN_NAME_CHARS):
        raise InvalidRequestError("Object name must not contain NUL, backslash, CR or LF")


def check_content_type(content_type: str) -> None:
    """Raise InvalidRequestError unless ``content_type`` reads ``type/subtype[; k=v]``."""
    if (
        not isinstance(content_type, str)
        or len(content_type) > 256
        or not _CONTENT_TYPE.match(content_type)
    ):
        raise InvalidRequestError(f"Invalid content type: {content_type!r}")


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Return ``metadata`` as a plain dict; raise InvalidRequestError when it is unusable.

    Keys are non-empty strings, values strings, at most 8 KiB in all (Cloud Storage's limit).
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidRequestError("Object metadata must be a mapping of strings")
    result: dict[str, str] = {}
    total = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key.strip():
            raise InvalidRequestError("Object metadata must map non-empty strings to strings")
        if any(char in key for char in "\r\n\x00:") or any(c in value for c in "\r\n\x00"):
            raise InvalidRequestError("Object metadata must not contain control characters")
        total += len(key.encode()) + len(value.encode())
        result[key] = value
    if total > MAX_METADATA_BYTES:
        raise InvalidRequestError(f"Object metadata exceeds {MAX_METADATA_BYTES} bytes")
    return result


def check_generation(if_generation_match: int | None) -> None:
    """Raise InvalidRequestError for a negative or non-integer precondition."""
    if if_generation_match is None:
        return
    if isinstance(if_generation_match, bool) or not isinstance(if_generation_match, int):
        raise InvalidRequestError("if_generation_match must be an integer")
    if if_generation_match < 0:
        raise InvalidRequestError("if_generation_match must not be negative")


def check_range(start: int | None, end: int | None) -> None:
    """Raise InvalidRequestError unless ``start..end`` is a forward, non-negative range."""
    for value in (start, end):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidRequestError("Range bounds must be integers")
    if start is not None and start < 0:
        raise InvalidRequestError("Range start must not be negative")
    if end is not None and (end < 0 or end < (start or 0)):
        raise InvalidRequestError("Range end must not come before its start")


def check_chunk_size(chunk_size: int) -> None:
    """Raise InvalidRequestError unless ``chunk_size`` is a positive integer."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidRequestError("chunk_size must be a positive integer")


def check_signed_url_request(expires_in: timedelta, method: str) -> None:
    """Raise InvalidRequestError for an expiry outside (0, 7 days] or an unsigned method."""
    if not isinstance(expires_in, timedelta) or not (
        timedelta(0) < expires_in <= MAX_SIGNED_URL_EXPIRY
    ):
        raise InvalidRequestError("A signed URL must expire within 7 days")
    if method not in SIGNED_URL_METHODS:
        raise InvalidRequestError(f"Signed URLs allow only {', '.join(sorted(SIGNED_URL_METHODS))}")


def check_signed_upload_request(
    expires_in: timedelta, content_type: str, max_bytes: int, limit: int
) -> int:
    """Return the size limit of a signed upload: ``max_bytes``, at most ``limit``.

    Raises InvalidRequestError for an expiry outside (0, 7 days], a bad content type or a
    size limit below 1.
    """
    check_signed_url_request(expires_in, "GET")
    check_content_type(content_type)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise InvalidRequestError("A signed upload must allow at least one byte")
    return min(max_bytes, limit)


def known_size(data: Data) -> int | None:
    """Return how many bytes ``data`` will yield, when that can be known without reading."""
    if isinstance(data, bytes | bytearray | memoryview):
        return memoryview(data).nbytes
    try:
        if data.seekable():
            position = data.tell()
            end = data.seek(0, io.SEEK_END)
            data.seek(position)
            return max(0, end - position)
    except (OSError, AttributeError, ValueError):
        return None
    return None


def check_upload_size(size: int | None, limit: int) -> None:
    """Raise PayloadTooLargeError when ``size`` is known and exceeds ``limit``."""
    if size is not None and size > limit:
        raise PayloadTooLargeError(f"Object exceeds the {limit}-byte upload limit")


class LimitedReader(io.RawIOBase):
    """A read-only stream over ``source`` that raises PayloadTooLargeError past ``limit``."""

    def __init__(self, source: BinaryIO, limit: int) -> None:
        self._source = source
        self._limit = limit
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        """Return how many bytes were read (resumable uploads ask where the stream is)."""
        return self.bytes_read

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        # Ask for one byte more than allowed, so an oversized stream is caught even when
        # its excess arrives in the same read as the last allowed byte.
        wanted = min(len(buffer), self._limit - self.bytes_read + 1)
        chunk = self._source.read(wanted) if wanted > 0 else b""
        count = len(chunk)
        self.bytes_read += count
        if self.bytes_read > self._limit:
            raise PayloadTooLargeError(f"Object exceeds the {self._limit}-byte upload limit")
        buffer[:count] = chunk
        return count
