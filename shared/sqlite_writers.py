"""One writer queue per SQLite file and process, for the embedded adapters.

SQLite lets one writer at a time into a file. A connection that finds the write lock taken
waits in SQLite's busy handler, which sleeps (1, 2, 5, 10 ms and on) between attempts, so
threads of one process queueing there lose milliseconds on every contended write. The
embedded store and blob index take this lock around each write transaction instead: a
waiting thread goes the moment the lock is free. Other processes still meet at the file
lock and its busy timeout. The lock is reentrant so that a nested write on another
connection to the same file fails as before (SQLite's busy timeout), never deadlocks here.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_WRITERS: dict[str, threading.RLock] = {}
_GUARD = threading.Lock()


def writer_lock(path: Path | str) -> threading.RLock:
    """Return this process's write lock for the SQLite file at ``path``."""
    with _GUARD:
        return _WRITERS.setdefault(os.path.realpath(path), threading.RLock())
