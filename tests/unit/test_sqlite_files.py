"""Writers of one SQLite file in one process queue on a lock, not in SQLite's busy sleeps."""

from __future__ import annotations

import threading
from pathlib import Path

from shared.sqlite_files import writer_lock
from shared.store.base import Increment
from shared.store.sqlite import SqliteDocumentStore


def test_one_lock_per_file_whatever_the_spelling(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    first = writer_lock(tmp_path / "store.sqlite3")
    assert writer_lock(tmp_path / "sub" / ".." / "store.sqlite3") is first
    assert writer_lock(str(tmp_path / "store.sqlite3")) is first
    assert writer_lock(tmp_path / "other.sqlite3") is not first


def test_threads_of_one_process_never_meet_at_sqlites_file_lock(tmp_path: Path):
    path = tmp_path / "store.sqlite3"
    stores = [SqliteDocumentStore(path), SqliteDocumentStore(path)]  # two adapters, one file
    stores[0].set("c", "n", {"n": 0})
    failures: list[BaseException] = []

    def work(index: int) -> None:
        store = stores[index % 2]
        # No busy timeout: a thread meeting the file lock would fail at once ("locked").
        store._conn().execute("PRAGMA busy_timeout = 0")
        try:
            for _ in range(40):
                store.run_transaction(
                    lambda tx: tx.update("c", "n", {"n": Increment(1)}), max_attempts=1
                )
                store.set("c", f"w{index}", {"last": index})
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    document = stores[0].get("c", "n")
    assert document is not None
    assert document.data["n"] == 8 * 40
