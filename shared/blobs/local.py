"""The embedded object storage: files under the data directory, indexed by SQLite.

Layout under ``root``: ``index.sqlite3`` holds one row per object (name, generation, size,
content type, checksums, custom metadata, times); the bytes of each generation live in
``{bucket}/{hh}/{sha256(name)}.{generation}``, a file written once and never changed.
Why not a file at the object's own path with a JSON sidecar: Cloud Storage lets ``a`` and
``a/b`` both exist, allows 1024-byte names and lists in byte order with paging; a
filesystem path can do none of that. Hashed file names also mean no name can reach
outside the folder, whatever the validation missed.

A write goes to a temporary file beside its target (fsynced when ``durable``), is renamed
into place and becomes visible when its index row commits; ``BEGIN IMMEDIATE`` serializes
writers across threads and processes, which makes ``if_generation_match`` race-safe.
Old generations' files are removed after the commit, on a worker thread; a reader that
loses that race simply reads the index again. A process crash can leave an orphan file,
never a torn object. Like the SQLite document store, the index runs with
``synchronous=NORMAL`` and directories are not fsynced, so a power loss may forget the
last writes: the usual trade for a development store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

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

logger = logging.getLogger(__name__)

Publisher = Callable[[CloudEvent], None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BUSY_TIMEOUT_MS = 15_000
_PARALLEL_HASH_BYTES = 256 * 1024
_READ_ATTEMPTS = 5
_SELECT = (
    "SELECT name, generation, metageneration, size, content_type, md5_hash, crc32c, "
    "metadata, time_created, updated FROM objects "
)
_LOCATE = "SELECT generation, size FROM objects WHERE bucket = ? AND name = ?"
_UPSERT = (
    "INSERT OR REPLACE INTO objects (bucket, name, generation, metageneration, size, "
    "content_type, md5_hash, crc32c, metadata, time_created, updated) "
    "VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)"
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
    PRIMARY KEY (bucket, name)
) WITHOUT ROWID
"""


class LocalObjectStorage(ObjectStorage):
    """Object storage in a local folder; safe for many threads and several processes.

    ``signing_key`` signs download URLs served by the gateway at
    ``{public_base_url}/_blobs/``; ``on_finalized`` receives the Eventarc-shaped
    ``object.v1.finalized`` CloudEvent after every put, copy and move (it must not
    block: ``EventPoster`` queues). ``durable=False`` skips the fsync of each write.
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
        self._index_path = self.root / "index.sqlite3"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._workers = ThreadPoolExecutor(thread_name_prefix="blobs")
        self._conn().execute(_SCHEMA)

    # -- index -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._index_path, isolation_level=None, check_same_thread=False, timeout=60
            )
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # The data files are fsynced; NORMAL only risks the last index commits on power
            # loss, leaving orphan files rather than objects without content.
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _row(self, conn: sqlite3.Connection, bucket: str, name: str) -> ObjectInfo | None:
        row = conn.execute(
            _SELECT + "WHERE bucket = ? AND name = ?",
            (bucket, name.encode()),
        ).fetchone()
        return _info(bucket, row) if row else None

    def close(self) -> None:
        self._workers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

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
        temp, handle = self._temp_file(bucket, name)
        try:
            with handle:
                size, md5_hash, crc32c = self._write(handle, data)
            info = self._commit_new(
                bucket,
                name,
                temp,
                if_generation_match=if_generation_match,
                fields={
                    "size": size,
                    "content_type": content_type,
                    "md5_hash": md5_hash,
                    "crc32c": crc32c,
                    "metadata": custom,
                },
            )
        finally:
            _remove(temp)
        self._publish(info)
        return info

    def _write(self, handle: BinaryIO, data: Data) -> tuple[int, str, str]:
        md5 = hashlib.md5(usedforsecurity=False)
        crc = 0
        size = 0
        if isinstance(data, bytes | bytearray | memoryview):
            chunks: Iterator[bytes | bytearray | memoryview] = iter([data])
        else:
            chunks = iter(lambda: data.read(DEFAULT_CHUNK_SIZE), b"")
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
        source_file: str,
        *,
        if_generation_match: int | None,
        fields: dict[str, Any],
        remove_source: tuple[str, str, int] | None = None,
    ) -> ObjectInfo:
        """Make ``source_file`` the next generation of ``bucket/name`` and return its info.

        ``source_file`` is renamed into place (the caller removes it on failure).
        ``remove_source`` names an object (bucket, name, generation) whose index row
        goes in the same commit (a move); _SourceChanged means it is at another generation.
        """
        old_files: list[str] = []
        with self._write_transaction() as conn:
            current = self._row(conn, bucket, name)
            _check_precondition(bucket, name, current, if_generation_match)
            if remove_source is not None:
                source_bucket, source_name, source_generation = remove_source
                moved = self._row(conn, source_bucket, source_name)
                if moved is None or moved.generation != source_generation:
                    raise _SourceChangedError()
                conn.execute(
                    "DELETE FROM objects WHERE bucket = ? AND name = ?",
                    (source_bucket, source_name.encode()),
                )
                old_files.append(self._data_path(*remove_source))
            now = _now_micros()
            generation = max(now, current.generation + 1) if current else now
            target = self._data_path(bucket, name, generation)
            os.replace(source_file, target)
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
                    ),
                )
            except BaseException:
                _remove(target)
                raise
        if current is not None:
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
            source = self.info(bucket, name)
            folder, _digest = self._object_dir(dest_bucket, dest_name)
            os.makedirs(folder, exist_ok=True)
            # Generations never change once written, so a hard link is a complete copy.
            temp = f"{folder}/.copy-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
            try:
                _link_or_copy(self._data_path(bucket, name, source.generation), temp)
            except FileNotFoundError:
                continue  # the source was replaced meanwhile: look it up again
            try:
                info = self._commit_new(
                    dest_bucket,
                    dest_name,
                    temp,
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
                _remove(temp)
            self._publish(info)
            return info
        raise PreconditionFailedError(f"Object {bucket}/{name} kept changing during the copy")

    def delete(self, bucket: str, name: str) -> bool:
        check_bucket_name(bucket)
        check_object_name(name)
        with self._write_transaction() as conn:
            current = self._row(conn, bucket, name)
            if current is None:
                return False
            conn.execute(
                "DELETE FROM objects WHERE bucket = ? AND name = ?", (bucket, name.encode())
            )
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

        The caller closes the file. Raises NotFoundError.
        """
        for _ in range(_READ_ATTEMPTS):
            info = self.info(bucket, name)
            try:
                handle = open(self._data_path(bucket, name, info.generation), "rb")  # noqa: SIM115 - returned open
            except FileNotFoundError:
                continue  # replaced or deleted between the index read and the open
            return info, handle
        raise NotFoundError(f"Object {bucket}/{name} not found")

    def _open_current(self, bucket: str, name: str) -> tuple[int, BinaryIO]:
        """Return the size and an open file of the current generation (the read fast path)."""
        check_bucket_name(bucket)
        check_object_name(name)
        conn = self._conn()
        key = (bucket, name.encode())
        folder, digest = self._object_dir(bucket, name)
        for _ in range(_READ_ATTEMPTS):
            row = conn.execute(_LOCATE, key).fetchone()
            if row is None:
                break
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


def _check_precondition(
    bucket: str, name: str, current: ObjectInfo | None, if_generation_match: int | None
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
