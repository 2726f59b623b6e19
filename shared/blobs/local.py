"""The embedded object storage: files under the data directory, indexed by SQLite.

Layout under ``root``: ``index.sqlite3`` holds one row per object (name, generation, size,
content type, checksums, custom metadata, times); the bytes of each generation larger than
``INLINE_MAX_BYTES`` live in ``{bucket}/{hh}/{sha256(name)}.{generation}``, a file written
once and never changed. Smaller objects (the timestamps JSON beside each audio file, say)
live in the index row itself, in ``inline_data``, with no file at all.
Why not a file at the object's own path with a JSON sidecar: Cloud Storage lets ``a`` and
``a/b`` both exist, allows 1024-byte names and lists in byte order with paging; a
filesystem path can do none of that. Hashed file names also mean no name can reach
outside the folder, whatever the validation missed.

A large write goes to a temporary file beside its target (fsynced when ``durable``), is
renamed into place and becomes visible when its index row commits; a small one is only
that row. ``BEGIN IMMEDIATE`` serializes writers across threads and processes, which makes
``if_generation_match`` race-safe for both. Old generations' files are removed after the
commit, on a worker thread; a reader that loses that race simply reads the index again.
A process crash can leave an orphan file, never a torn object: an inline object's bytes
commit in the same WAL transaction as its row, so they need no fsync of their own. Like
the SQLite document store, the index runs with ``synchronous=NORMAL`` and directories are
not fsynced, so a power loss may forget the last writes, inline or not: the usual trade
for a development store. Indexes written before ``inline_data`` existed gain the column
when opened; their rows (all NULL there) keep reading their files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import google_crc32c
from cloudevents.http import CloudEvent

from shared.blobs.base import (
    DEFAULT_CHUNK_SIZE,
    Data,
    ObjectAlreadyExistsError,
    ObjectInfo,
    ObjectPage,
    ObjectStorage,
    PreconditionFailedError,
    check_bucket_name,
    check_chunk_size,
    check_content_type,
    check_generation,
    check_metadata,
    check_object_name,
    check_prefix,
    check_range,
    check_signed_url_request,
    check_upload_size,
    known_size,
)
from shared.blobs.events import finalized_event
from shared.blobs.signing import UrlSigner
from shared.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from shared.store.sqlite_files import SqliteFile

logger = logging.getLogger(__name__)

Publisher = Callable[[CloudEvent], None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PARALLEL_HASH_BYTES = 256 * 1024
_READ_ATTEMPTS = 5
# Objects up to this size live in their index row rather than in a file of their own.
# SQLite writes small blobs faster than the filesystem creates, fsyncs and renames a file
# (``python -m bench.blobs`` times 6 KB puts against fsynced atomic writes), and the WAL
# commit makes the row and its bytes one atomic change, so no separate fsync is needed and
# a torn object is still impossible. Larger blobs gain less: each is written twice (WAL,
# then checkpoint) and brings the next fsynced checkpoint closer.
INLINE_MAX_BYTES = 64 * 1024
_SELECT = (
    "SELECT name, generation, metageneration, size, content_type, md5_hash, crc32c, "
    "metadata, time_created, updated FROM objects "
)
# _SELECT's columns and then the inline bytes (NULL when they are in a file).
_SELECT_WITH_DATA = (
    "SELECT name, generation, metageneration, size, content_type, md5_hash, crc32c, "
    "metadata, time_created, updated, inline_data FROM objects WHERE bucket = ? AND name = ?"
)
_LOCATE = "SELECT generation, size, inline_data FROM objects WHERE bucket = ? AND name = ?"
_CURRENT = "SELECT generation, inline_data IS NULL FROM objects WHERE bucket = ? AND name = ?"
_UPSERT = (
    "INSERT OR REPLACE INTO objects (bucket, name, generation, metageneration, size, "
    "content_type, md5_hash, crc32c, metadata, time_created, updated, inline_data) "
    "VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Names are UTF-8 bytes, which never hold 0xFF: b"\xff" sorts after every name, and
# name + b"\x00" is the least name after ``name``.
_AFTER_ALL = b"\xff"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
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
    inline_data BLOB,
    PRIMARY KEY (bucket, name)
) WITHOUT ROWID
"""


class LocalObjectStorage(ObjectStorage):
    """Object storage in a local folder; safe for many threads and several processes.

    ``signing_key`` signs download URLs served by the gateway at
    ``{public_base_url}/_blobs/``; ``on_finalized`` receives the Eventarc-shaped
    ``object.v1.finalized`` CloudEvent after every put, copy and move (it must not
    block: ``EventPoster`` queues). ``durable=False`` skips the fsync of each data file
    (objects stored inline have none).
    """

    def __init__(
        self,
        root: Path | str,
        *,
        signing_key: bytes,
        public_base_url: str,
        max_upload_bytes: int,
        on_finalized: Publisher | None = None,
        durable: bool = True,
    ) -> None:
        super().__init__(max_upload_bytes=max_upload_bytes)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self.signer = UrlSigner(signing_key, public_base_url)
        self._on_finalized = on_finalized
        self._durable = durable
        self._index = SqliteFile(self.root / "index.sqlite3")
        self._workers = ThreadPoolExecutor(thread_name_prefix="blobs")
        with self._write_transaction() as conn:
            conn.execute(_SCHEMA)
            # Indexes from before inline objects lack the column; in this transaction, so
            # that processes opening the same folder at once add it only once.
            columns = {row[1] for row in conn.execute("PRAGMA table_info(objects)")}
            if "inline_data" not in columns:
                conn.execute("ALTER TABLE objects ADD COLUMN inline_data BLOB")

    # -- index -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        return self._index.connection()

    def _write_transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._index.transaction()

    def _row(self, conn: sqlite3.Connection, bucket: str, name: str) -> ObjectInfo | None:
        row = conn.execute(
            _SELECT + "WHERE bucket = ? AND name = ?",
            (bucket, name.encode()),
        ).fetchone()
        return _info(bucket, row) if row else None

    def _row_with_data(self, bucket: str, name: str) -> tuple[ObjectInfo, bytes | None] | None:
        """Return the object's info and its inline bytes (None: they are in a file)."""
        row = self._conn().execute(_SELECT_WITH_DATA, (bucket, name.encode())).fetchone()
        return (_info(bucket, row[:-1]), row[-1]) if row else None

    def _current(self, conn: sqlite3.Connection, bucket: str, name: str) -> _Current | None:
        row = conn.execute(_CURRENT, (bucket, name.encode())).fetchone()
        return _Current(generation=row[0], in_file=bool(row[1])) if row else None

    def close(self) -> None:
        self._workers.shutdown(wait=True)
        self._index.close()

    # -- paths -------------------------------------------------------------------------

    # Paths are plain strings: pathlib's overhead is measurable on the 1 MB read path.

    def _object_dir(self, bucket: str, name: str) -> tuple[str, str]:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return f"{self._root}/{bucket}/{digest[:2]}", digest

    def _data_path(self, bucket: str, name: str, generation: int) -> str:
        folder, digest = self._object_dir(bucket, name)
        return f"{folder}/{digest}.{generation}"

    def _temp_file(self, bucket: str, name: str) -> tuple[str, BinaryIO]:
        folder, _ = self._object_dir(bucket, name)
        try:
            fd, path = tempfile.mkstemp(dir=folder, prefix=".upload-")
        except FileNotFoundError:  # the first object of its folder (256 per bucket)
            os.makedirs(folder, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=folder, prefix=".upload-")
        return path, os.fdopen(fd, "wb")

    def _in_background(self, function: Callable[..., None], *args: Any) -> Future[None]:
        try:
            return self._workers.submit(function, *args)
        except RuntimeError:  # closed: do it here and now
            done: Future[None] = Future()
            function(*args)
            done.set_result(None)
            return done

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
        check_bucket_name(bucket)
        check_object_name(name)
        check_content_type(content_type)
        custom = check_metadata(metadata)
        check_generation(if_generation_match)
        check_upload_size(known_size(data), self.max_upload_bytes)
        head: bytes | bytearray | memoryview
        if isinstance(data, bytes | bytearray | memoryview):
            head, rest = data, None
        else:
            # One byte past the inline limit tells whether the stream fits in its index row;
            # a larger one goes on from there to a file, never whole into memory.
            head, rest = _read_up_to(data, INLINE_MAX_BYTES + 1), data
        fields: dict[str, Any] = {"content_type": content_type, "metadata": custom}
        if memoryview(head).nbytes <= INLINE_MAX_BYTES:
            content = bytes(head)
            check_upload_size(len(content), self.max_upload_bytes)
            md5_hash, crc32c = _checksums(content)
            fields.update(size=len(content), md5_hash=md5_hash, crc32c=crc32c)
            info = self._commit_new(
                bucket, name, content, if_generation_match=if_generation_match, fields=fields
            )
        else:
            temp, handle = self._temp_file(bucket, name)
            try:
                with handle:
                    size, md5_hash, crc32c = self._write(handle, head, rest)
                fields.update(size=size, md5_hash=md5_hash, crc32c=crc32c)
                info = self._commit_new(
                    bucket, name, temp, if_generation_match=if_generation_match, fields=fields
                )
            finally:
                _remove(temp)
        self._publish(info)
        return info

    def _write(
        self, handle: BinaryIO, head: bytes | bytearray | memoryview, rest: BinaryIO | None
    ) -> tuple[int, str, str]:
        """Write ``head``, then what is left of ``rest``; return the size and checksums."""
        md5 = hashlib.md5(usedforsecurity=False)
        crc = 0
        size = 0
        chunks: Iterable[bytes | bytearray | memoryview] = [head]
        if rest is not None:
            chunks = itertools.chain(chunks, iter(lambda: rest.read(DEFAULT_CHUNK_SIZE), b""))
        hashing: Future[None] | None = None
        try:
            for chunk in chunks:
                size += memoryview(chunk).nbytes
                if size > self.max_upload_bytes:
                    raise PayloadTooLargeError(
                        f"Object exceeds the {self.max_upload_bytes}-byte upload limit"
                    )
                if hashing is not None:
                    hashing.result()
                    hashing = None
                # MD5 is the slowest step (about 600 MB/s, slower than a page-cache write):
                # it runs on another thread (hashlib releases the GIL) beside write and fsync.
                if len(chunk) >= _PARALLEL_HASH_BYTES:
                    hashing = self._in_background(md5.update, chunk)
                else:
                    md5.update(chunk)
                handle.write(chunk)
                crc = google_crc32c.extend(crc, chunk)
            handle.flush()
            if self._durable:
                os.fsync(handle.fileno())
        finally:
            if hashing is not None:
                hashing.result()
        return size, _b64(md5.digest()), _b64(crc.to_bytes(4, "big"))

    def _commit_new(
        self,
        bucket: str,
        name: str,
        content: bytes | str,
        *,
        if_generation_match: int | None,
        fields: dict[str, Any],
        remove_source: tuple[str, str, int] | None = None,
    ) -> ObjectInfo:
        """Make ``content`` the next generation of ``bucket/name`` and return its info.

        Bytes are stored inline in the index row; a str names a temporary file, renamed
        into place (the caller removes it on failure). ``remove_source`` names an object
        (bucket, name, generation) whose index row goes in the same commit (a move);
        _SourceChanged means it is at another generation.
        """
        old_files: list[str] = []
        with self._write_transaction() as conn:
            current = self._current(conn, bucket, name)
            _check_precondition(bucket, name, current, if_generation_match)
            if remove_source is not None:
                source_bucket, source_name, source_generation = remove_source
                moved = self._current(conn, source_bucket, source_name)
                if moved is None or moved.generation != source_generation:
                    raise _SourceChangedError()
                conn.execute(
                    "DELETE FROM objects WHERE bucket = ? AND name = ?",
                    (source_bucket, source_name.encode()),
                )
                if moved.in_file:
                    old_files.append(self._data_path(*remove_source))
            now = _now_micros()
            generation = max(now, current.generation + 1) if current else now
            target: str | None = None
            inline_data: bytes | None = None
            if isinstance(content, str):
                target = self._data_path(bucket, name, generation)
                os.replace(content, target)
            else:
                inline_data = content
            try:
                conn.execute(
                    _UPSERT,
                    (
                        bucket,
                        name.encode(),
                        generation,
                        fields["size"],
                        fields["content_type"],
                        fields["md5_hash"],
                        fields["crc32c"],
                        json.dumps(fields["metadata"], separators=(",", ":")),
                        now,
                        now,
                        inline_data,
                    ),
                )
            except BaseException:
                if target is not None:
                    _remove(target)
                raise
        if current is not None and current.in_file:
            old_files.append(self._data_path(bucket, name, current.generation))
        # Old generations are garbage once the index moved on: remove them off the caller's
        # path (unlinking a large file is not free); close() waits for these removals.
        if old_files:
            self._in_background(_remove, *old_files)
        return ObjectInfo(
            bucket=bucket,
            name=name,
            size=fields["size"],
            content_type=fields["content_type"],
            md5_hash=fields["md5_hash"],
            crc32c=fields["crc32c"],
            generation=generation,
            metageneration=1,
            time_created=_from_micros(now),
            updated=_from_micros(now),
            metadata=dict(fields["metadata"]),
        )

    def copy(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        *,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        return self._copy(bucket, name, dest_bucket, dest_name, if_generation_match, move=False)

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
        return self._copy(bucket, name, dest_bucket, dest_name, if_generation_match, move=True)

    def _copy(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        if_generation_match: int | None,
        *,
        move: bool,
    ) -> ObjectInfo:
        for b, n in ((bucket, name), (dest_bucket, dest_name)):
            check_bucket_name(b)
            check_object_name(n)
        check_generation(if_generation_match)
        for _ in range(_READ_ATTEMPTS):
            found = self._row_with_data(bucket, name)
            if found is None:
                raise NotFoundError(f"Object {bucket}/{name} not found")
            source, inline_data = found
            content: bytes | str
            if inline_data is not None:
                content = inline_data
            else:
                folder, _digest = self._object_dir(dest_bucket, dest_name)
                os.makedirs(folder, exist_ok=True)
                # Generations never change once written, so a hard link is a complete copy.
                content = f"{folder}/.copy-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
                try:
                    _link_or_copy(self._data_path(bucket, name, source.generation), content)
                except FileNotFoundError:
                    continue  # the source was replaced meanwhile: look it up again
            try:
                info = self._commit_new(
                    dest_bucket,
                    dest_name,
                    content,
                    if_generation_match=if_generation_match,
                    fields={
                        "size": source.size,
                        "content_type": source.content_type,
                        "md5_hash": source.md5_hash,
                        "crc32c": source.crc32c,
                        "metadata": source.metadata,
                    },
                    remove_source=(bucket, name, source.generation) if move else None,
                )
            except _SourceChangedError:
                continue
            finally:
                if isinstance(content, str):
                    _remove(content)  # the link, unless it was renamed into place
            self._publish(info)
            return info
        raise PreconditionFailedError(f"Object {bucket}/{name} kept changing during the copy")

    def delete(self, bucket: str, name: str) -> bool:
        check_bucket_name(bucket)
        check_object_name(name)
        with self._write_transaction() as conn:
            current = self._current(conn, bucket, name)
            if current is None:
                return False
            conn.execute(
                "DELETE FROM objects WHERE bucket = ? AND name = ?", (bucket, name.encode())
            )
        if current.in_file:
            _remove(self._data_path(bucket, name, current.generation))
        return True

    # -- reads -------------------------------------------------------------------------

    def info(self, bucket: str, name: str) -> ObjectInfo:
        check_bucket_name(bucket)
        check_object_name(name)
        info = self._row(self._conn(), bucket, name)
        if info is None:
            raise NotFoundError(f"Object {bucket}/{name} not found")
        return info

    def open(self, bucket: str, name: str) -> tuple[ObjectInfo, BinaryIO]:
        """Return the object's info and an open binary file of that generation.

        The caller closes the file (a BytesIO for an object stored inline). Raises
        NotFoundError.
        """
        check_bucket_name(bucket)
        check_object_name(name)
        for _ in range(_READ_ATTEMPTS):
            found = self._row_with_data(bucket, name)
            if found is None:
                break
            info, inline_data = found
            if inline_data is not None:
                return info, io.BytesIO(inline_data)
            try:
                handle = open(self._data_path(bucket, name, info.generation), "rb")  # noqa: SIM115 - returned open
            except FileNotFoundError:
                continue  # replaced or deleted between the index read and the open
            return info, handle
        raise NotFoundError(f"Object {bucket}/{name} not found")

    def _open_current(self, bucket: str, name: str) -> tuple[int, BinaryIO]:
        """Return the size and an open file of the current generation (the read fast path).

        The file is a BytesIO for an object stored inline.
        """
        check_bucket_name(bucket)
        check_object_name(name)
        conn = self._conn()
        key = (bucket, name.encode())
        folder, digest = self._object_dir(bucket, name)
        for _ in range(_READ_ATTEMPTS):
            row = conn.execute(_LOCATE, key).fetchone()
            if row is None:
                break
            if row[2] is not None:
                return int(row[1]), io.BytesIO(row[2])
            try:
                handle = open(f"{folder}/{digest}.{row[0]}", "rb")  # noqa: SIM115 - returned open
            except FileNotFoundError:
                continue  # replaced or deleted between the index read and the open
            return int(row[1]), handle
        raise NotFoundError(f"Object {bucket}/{name} not found")

    def get(
        self, bucket: str, name: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        check_range(start, end)
        size, handle = self._open_current(bucket, name)
        with handle:
            first = start or 0
            last = size - 1 if end is None else min(end, size - 1)
            if first > last:
                return b""
            if first:
                handle.seek(first)
            return handle.read(last - first + 1)

    def stream(
        self, bucket: str, name: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_chunk_size(chunk_size)
        _, handle = self._open_current(bucket, name)
        return _chunks(handle, chunk_size)

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
        low = prefix.encode()
        # Bumping the last byte of the prefix bounds every name that starts with it.
        high = low[:-1] + bytes([low[-1] + 1]) if low else _AFTER_ALL
        if cursor is not None:
            low = max(low, _decode_cursor(cursor) + b"\x00")
        rows = (
            self._conn()
            .execute(
                _SELECT + "WHERE bucket = ? AND name >= ? AND name < ? ORDER BY name LIMIT ?",
                (bucket, low, high, page_size + 1),
            )
            .fetchall()
        )
        items = [_info(bucket, row) for row in rows[:page_size]]
        more = len(rows) > page_size
        next_cursor = _encode_cursor(items[-1].name) if more and items else None
        return ObjectPage(items, next_cursor)

    def signed_url(
        self, bucket: str, name: str, *, expires_in: timedelta, method: str = "GET"
    ) -> str:
        check_bucket_name(bucket)
        check_object_name(name)
        check_signed_url_request(expires_in, method)
        expires = int(time.time() + expires_in.total_seconds())
        return self.signer.url(method, bucket, name, expires)

    # -- events ------------------------------------------------------------------------

    def _publish(self, info: ObjectInfo) -> None:
        if self._on_finalized is None:
            return
        try:
            self._on_finalized(finalized_event(info))
        except Exception:
            # The object is stored; a lost notification must not turn the write into an error.
            logger.exception(
                "Could not publish the finalized event of %s/%s", info.bucket, info.name
            )


class _SourceChangedError(Exception):
    """The source of a move changed after it was read; the move starts again."""


class _Current(NamedTuple):
    """What a writer needs to know of an object's current generation."""

    generation: int
    in_file: bool  # False: its bytes are inline in the index row


def _check_precondition(
    bucket: str, name: str, current: _Current | None, if_generation_match: int | None
) -> None:
    if if_generation_match is None:
        return
    if if_generation_match == 0:
        if current is not None:
            raise ObjectAlreadyExistsError(f"Object {bucket}/{name} already exists")
        return
    if current is None or current.generation != if_generation_match:
        raise PreconditionFailedError(
            f"Object {bucket}/{name} is not at generation {if_generation_match}"
        )


def _read_up_to(stream: BinaryIO, limit: int) -> bytes:
    """Read ``limit`` bytes from ``stream``, fewer only when it ends first."""
    parts: list[bytes] = []
    missing = limit
    while missing > 0 and (part := stream.read(missing)):
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def _checksums(content: bytes) -> tuple[str, str]:
    """Return the base64 MD5 and CRC32C of ``content``, as ``ObjectInfo`` holds them."""
    md5 = hashlib.md5(content, usedforsecurity=False).digest()
    return _b64(md5), _b64(google_crc32c.value(content).to_bytes(4, "big"))


def _chunks(handle: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def _info(bucket: str, row: tuple[Any, ...]) -> ObjectInfo:
    (name, generation, metageneration, size, content_type, md5_hash, crc32c, metadata,
     time_created, updated) = row  # fmt: skip
    return ObjectInfo(
        bucket=bucket,
        name=bytes(name).decode(),
        size=size,
        content_type=content_type,
        md5_hash=md5_hash,
        crc32c=crc32c,
        generation=generation,
        metageneration=metageneration,
        time_created=_from_micros(time_created),
        updated=_from_micros(updated),
        metadata=json.loads(metadata),
    )


def _remove(*paths: str) -> None:
    for path in paths:
        with suppress(FileNotFoundError):
            os.unlink(path)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError:
        # Filesystems without hard links: copy the bytes instead.
        shutil.copyfile(source, target)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _now_micros() -> int:
    return time.time_ns() // 1000


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode("ascii")


def _decode_cursor(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidRequestError("Invalid page cursor") from None
