"""One SQLite file used by the threads of a process: what both embedded adapters share.

The embedded document store (``shared.store.sqlite``) and the local object storage's
index (``shared.blobs.local``) each keep a ``SqliteFile``:

- one connection per thread (autocommit; transactions are explicit) with a busy timeout
  and ``synchronous=NORMAL``, which in WAL mode survives a process crash and may drop
  only the last commits on power loss: the usual trade for a local development store;
- WAL mode, set once when the file is opened: switching needs a moment with no other
  writer, which connections opened later by busy threads cannot count on;
- one writer queue per file and process. SQLite lets one writer at a time into a file, and
  a connection that finds the write lock taken waits in SQLite's busy handler, which
  sleeps (1, 2, 5, 10 ms and on) between attempts. Every write takes ``writer`` first, so
  threads of one process queue here and go the moment it is free; other processes still
  meet at the file lock and its busy timeout. The lock is reentrant so that a nested write
  on another connection to the same file fails as before (busy timeout), never deadlocks.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 15_000
_WAL_ATTEMPTS = 50
_WRITERS: dict[str, threading.RLock] = {}
_GUARD = threading.Lock()


def writer_lock(path: Path | str) -> threading.RLock:
    """Return this process's write lock for the SQLite file at ``path``."""
    with _GUARD:
        return _WRITERS.setdefault(os.path.realpath(path), threading.RLock())


class SqliteFile:
    """A SQLite file in WAL mode with a connection per thread and queued writers."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = writer_lock(self.path)
        self._enable_wal()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=60
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in a write transaction (``BEGIN IMMEDIATE``), queued with writers.

        Commits when the block ends, rolls back when it raises.
        """
        conn = self.connection()
        with self.writer:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every thread's connection; later calls open new ones."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _enable_wal(self) -> None:
        for attempt in range(_WAL_ATTEMPTS):
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=60)
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if attempt == _WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)
            finally:
                conn.close()
