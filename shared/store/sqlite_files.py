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
  threads of one process queue here and go the moment it is free. The lock is reentrant
  so that a nested write on another connection to the same file fails as before (busy
  timeout), never deadlocks;
- a change counter beside the file (``<file>-changes``, 8 bytes mapped into memory by every
  process that opens it). The outermost write of a thread locks the counter file (processes
  take turns there, waiting up to the busy timeout), makes the count odd, writes, and makes
  it even again, one higher. ``change_token`` reads it with neither a system call nor a
  SQLite statement: the same even value twice means that no write ended in between, in
  any process. An odd value (a write under way, or a writer that died during one) tells
  nothing, so it gives None. Every writer of the file goes through here; a write made with
  another tool (the ``sqlite3`` shell) is not counted.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import sqlite3
import struct
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 15_000
_WAL_ATTEMPTS = 50
_COUNTER = struct.Struct("=Q")
# While some SqliteFile of the process uses it: then its counter's file is closed.
_WRITERS: weakref.WeakValueDictionary[str, FileWriter] = weakref.WeakValueDictionary()
_GUARD = threading.Lock()


class ChangeCounter:
    """The count of a file's writes, in a small file every process maps into memory."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._open()

    def _open(self) -> None:
        self._pid = os.getpid()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # Zero-filled when new; processes opening it at once all grow it to the same size.
        if os.fstat(self._fd).st_size < _COUNTER.size:
            os.ftruncate(self._fd, _COUNTER.size)
        self._map = mmap.mmap(self._fd, _COUNTER.size)
        self._closer = weakref.finalize(self, _close_counter, self._map, self._fd)

    def value(self) -> int:
        """Return the count (odd while a write is under way)."""
        count: int = _COUNTER.unpack_from(self._map)[0]
        return count

    def begin(self) -> None:
        """Take the counter's lock (waiting for other processes' writes) and make it odd."""
        if self._pid != os.getpid():  # a forked child must not share its parent's lock
            self._closer()
            self._open()
        self._lock()
        count = self.value()
        _COUNTER.pack_into(self._map, 0, count + 1 if count % 2 == 0 else count + 2)

    def end(self) -> None:
        """Make the counter even again (one higher) and release its lock."""
        _COUNTER.pack_into(self._map, 0, self.value() + 1)
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _lock(self) -> None:
        # Another process writing is rare here (one local platform per data folder): wait
        # for it in short sleeps, and give up as SQLite's busy timeout would.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError(
                        f"database is locked: another process is writing {self.path}"
                    ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def _close_counter(mapped: mmap.mmap, fd: int) -> None:
    mapped.close()
    os.close(fd)


class FileWriter:
    """The writers of one SQLite file in this process: a reentrant queue and the counter.

    ``with writer:`` around every write; the outermost one of a thread counts the write.
    """

    def __init__(self, path: str) -> None:
        self._lock = threading.RLock()
        self._depth = 0  # changed only by the thread holding _lock
        self.counter = ChangeCounter(f"{path}-changes")

    def __enter__(self) -> FileWriter:
        self._lock.acquire()
        if self._depth == 0:
            try:
                self.counter.begin()
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                self.counter.end()
        finally:
            self._lock.release()


def writer_lock(path: Path | str) -> FileWriter:
    """Return this process's writer of the SQLite file at ``path``."""
    real = os.path.realpath(path)
    with _GUARD:
        writer = _WRITERS.get(real)
        if writer is None:
            writer = _WRITERS[real] = FileWriter(real)
        return writer


class SqliteFile:
    """A SQLite file in WAL mode with a connection per thread and queued writers."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = writer_lock(self.path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._enable_wal()

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

    def change_token(self) -> int | None:
        """Return a value that changes whenever a write to the file ends, in any process.

        None while some write is under way (or a writer died during one).
        """
        count = self.writer.counter.value()
        return None if count % 2 else count

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
        # On the opening thread's own connection, kept: closing a process's last connection
        # to a WAL file checkpoints it and deletes the WAL (fsyncs, then files made again
        # by the next write), which a cold instance's first request paid for each file.
        for attempt in range(_WAL_ATTEMPTS):
            conn = self.connection()
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                self.close()
                if attempt == _WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)
