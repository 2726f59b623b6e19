"""The embedded object storage's index: one SQLite row per object, its metadata and place.

A row holds the object's name (UTF-8 bytes, so listing is in byte order as Cloud Storage
lists), generation, size, content type, checksums, custom metadata and times, and either
its bytes (``inline_data``, for small objects) or NULL when they are in a file. Writers
take ``BEGIN IMMEDIATE`` (``SqliteFile.transaction``), which serializes them across
threads and processes and makes ``if_generation_match`` race-safe. Indexes written before
``inline_data`` existed gain the column when opened; their rows (all NULL there) keep
reading their files.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from shared.blobs.base import ObjectAlreadyExistsError, ObjectInfo
from shared.errors import InvalidRequestError, PreconditionFailedError
from shared.store.sqlite_files import SqliteFile

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
_DELETE = "DELETE FROM objects WHERE bucket = ? AND name = ?"
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


class Current(NamedTuple):
    """What a writer needs to know of an object's current generation."""

    generation: int
    in_file: bool  # False: its bytes are inline in the index row


class Located(NamedTuple):
    """Where a reader finds the current generation: its size, and bytes when inline."""

    generation: int
    size: int
    inline_data: bytes | None


class ObjectIndex:
    """The index file of one storage folder; safe for many threads and several processes."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path)
        with self.transaction() as conn:
            conn.execute(_SCHEMA)
            # Indexes from before inline objects lack the column; in this transaction, so
            # that processes opening the same folder at once add it only once.
            columns = {row[1] for row in conn.execute("PRAGMA table_info(objects)")}
            if "inline_data" not in columns:
                conn.execute("ALTER TABLE objects ADD COLUMN inline_data BLOB")

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection (for reads outside a write transaction)."""
        return self._file.connection()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """Return a write transaction (``BEGIN IMMEDIATE``), committed on exit."""
        return self._file.transaction()

    def close(self) -> None:
        """Close the index file."""
        self._file.close()

    def info(self, conn: sqlite3.Connection, bucket: str, name: str) -> ObjectInfo | None:
        """Return the object's info, or None."""
        row = conn.execute(_SELECT + "WHERE bucket = ? AND name = ?", (bucket, name.encode()))
        found = row.fetchone()
        return info_of(bucket, found) if found else None

    def info_with_data(self, bucket: str, name: str) -> tuple[ObjectInfo, bytes | None] | None:
        """Return the object's info and its inline bytes (None: they are in a file)."""
        row = self.connection().execute(_SELECT_WITH_DATA, (bucket, name.encode())).fetchone()
        return (info_of(bucket, row[:-1]), row[-1]) if row else None

    def current(self, conn: sqlite3.Connection, bucket: str, name: str) -> Current | None:
        """Return the object's current generation and whether it is in a file, or None."""
        row = conn.execute(_CURRENT, (bucket, name.encode())).fetchone()
        return Current(generation=row[0], in_file=bool(row[1])) if row else None

    def locate(self, bucket: str, name: str) -> Located | None:
        """Return where the current generation is (the read fast path), or None."""
        row = self.connection().execute(_LOCATE, (bucket, name.encode())).fetchone()
        return Located(int(row[0]), int(row[1]), row[2]) if row else None

    def upsert(
        self,
        conn: sqlite3.Connection,
        bucket: str,
        name: str,
        generation: int,
        fields: Mapping[str, Any],
        *,
        now: int,
        inline_data: bytes | None,
    ) -> None:
        """Make ``generation`` (created at ``now``, microseconds) the object's current row."""
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

    def remove(self, conn: sqlite3.Connection, bucket: str, name: str) -> None:
        """Delete the object's row."""
        conn.execute(_DELETE, (bucket, name.encode()))

    def page(
        self, bucket: str, prefix: str, *, page_size: int, cursor: str | None
    ) -> tuple[list[ObjectInfo], str | None]:
        """Return up to ``page_size`` objects under ``prefix`` in name order, and a cursor."""
        low = prefix.encode()
        # Bumping the last byte of the prefix bounds every name that starts with it.
        high = low[:-1] + bytes([low[-1] + 1]) if low else _AFTER_ALL
        if cursor is not None:
            low = max(low, _decode_cursor(cursor) + b"\x00")
        rows = (
            self.connection()
            .execute(
                _SELECT + "WHERE bucket = ? AND name >= ? AND name < ? ORDER BY name LIMIT ?",
                (bucket, low, high, page_size + 1),
            )
            .fetchall()
        )
        items = [info_of(bucket, row) for row in rows[:page_size]]
        more = len(rows) > page_size
        return items, _encode_cursor(items[-1].name) if more and items else None


def check_precondition(
    bucket: str, name: str, current: Current | None, if_generation_match: int | None
) -> None:
    """Raise unless ``if_generation_match`` allows writing over ``current``.

    Raises ObjectAlreadyExistsError (0: only if absent) or PreconditionFailedError.
    """
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


def info_of(bucket: str, row: tuple[Any, ...]) -> ObjectInfo:
    """Return the ``ObjectInfo`` of an index row (``_SELECT``'s columns)."""
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
        time_created=from_micros(time_created),
        updated=from_micros(updated),
        metadata=json.loads(metadata),
    )


def now_micros() -> int:
    """Return the time now in microseconds since the epoch (generations are such times)."""
    return time.time_ns() // 1000


def from_micros(value: int) -> datetime:
    """Return the UTC datetime of ``value`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def _encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode("ascii")


def _decode_cursor(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidRequestError("Invalid page cursor") from None
