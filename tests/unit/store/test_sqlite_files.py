"""Writers of one SQLite file queue on a lock, not in SQLite's busy sleeps, and count writes."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from shared.store.base import Increment, Query
from shared.store.sqlite import SqliteDocumentStore
from shared.store.sqlite_files import writer_lock

ROOT = Path(__file__).resolve().parents[3]


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


def test_the_change_token_changes_when_a_write_ends_and_only_then(tmp_path: Path):
    store = SqliteDocumentStore(tmp_path / "store.sqlite3")
    store.set("c", "a", {"n": 1})
    writes = [
        lambda: store.create("c", "b", {"n": 2}),
        lambda: store.set("c", "a", {"n": 3}),
        lambda: store.set("c", "a", {"m": 4}, merge=True),
        lambda: store.update("c", "a", {"n": Increment(1)}),
        lambda: store.delete("c", "b"),
        lambda: store.run_transaction(lambda tx: tx.update("c", "a", {"n": 9})),
        lambda: store.delete_matching(Query("c")),
    ]
    seen = set()
    for write in writes:
        before = store.change_token()
        store.get("c", "a")
        store.get_many("c", ["a", "b"])
        store.query(Query("c"))
        assert store.change_token() == before  # reads change nothing
        write()
        after = store.change_token()
        assert before is not None
        assert after is not None
        assert after != before
        seen.add(before)
    assert len(seen) == len(writes)
    store.close()


def test_the_change_token_tells_nothing_while_a_write_is_under_way(tmp_path: Path):
    store = SqliteDocumentStore(tmp_path / "store.sqlite3")
    assert store.change_token() is not None

    def during(tx: Any) -> None:
        tx.set("c", "a", {"n": 1})
        assert store.change_token() is None

    store.run_transaction(during)
    assert store.change_token() is not None
    store.close()


def test_a_writer_that_died_during_a_write_leaves_no_token_until_the_next_write(tmp_path: Path):
    path = tmp_path / "store.sqlite3"
    store = SqliteDocumentStore(path)
    code = (
        "import os, sys\n"
        "from shared.store.sqlite_files import writer_lock\n"
        "writer_lock(sys.argv[1]).counter.begin()\n"
        "os._exit(0)\n"  # dies holding the counter's lock, the count odd
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=ROOT, timeout=60)
    assert store.change_token() is None
    store.set("c", "a", {"n": 1})  # the dead writer's lock went with it
    assert store.change_token() is not None
    store.close()


def test_writers_of_several_processes_take_turns_on_the_counter(tmp_path: Path):
    path = tmp_path / "store.sqlite3"
    store = SqliteDocumentStore(path)
    store.set("c", "warm", {"n": 0})
    start = store.change_token()
    assert start is not None
    code = (
        "import sys\n"
        "from shared.store.sqlite import SqliteDocumentStore\n"
        "store = SqliteDocumentStore(sys.argv[1])\n"
        "for i in range(50):\n"
        "    store.set('c', f'{sys.argv[2]}-{i}', {'n': i})\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(path), name], cwd=ROOT)
        for name in ("p1", "p2")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    # Each process: 50 writes and its first look at the table; two counts per write, none lost.
    assert store.change_token() == start + 2 * 2 * 51
    assert len(store.get_many("c", [f"p{p}-{i}" for p in (1, 2) for i in range(50)])) == 100
    store.close()


def test_a_counter_file_is_closed_once_no_store_uses_it(tmp_path: Path):
    def open_files() -> int:
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    for index in range(50):
        store = SqliteDocumentStore(tmp_path / f"store-{index}.sqlite3")
        store.set("c", "a", {"n": index})
        store.close()
        del store
    assert open_files() <= before + 2  # not one per store opened


# A process that writes and then ends without closing its store, as an instance that is
# stopped does (os._exit: no connection closed), leaving its WAL for the next process.
WRITE_AND_DIE = """
import os, sys
from shared.store.sqlite import SqliteDocumentStore
SqliteDocumentStore(sys.argv[1]).set("c", "n", {"payload": "x" * 4000})
os._exit(0)
"""
OPEN_AND_DIE = """
import os, sys
from shared.store.sqlite_files import SqliteFile
SqliteFile(sys.argv[1]).connection().execute("SELECT 1").fetchone()
os._exit(0)
"""


def test_opening_a_file_leaves_its_wal_for_the_next_checkpoint(tmp_path: Path):
    # Closing a process's last connection to a WAL file checkpoints it and deletes the WAL
    # (fsyncs, then the files made again by the next write): opening the file must not
    # close a connection of its own, which made every cold instance's first request pay
    # that, once per SQLite file.
    path = tmp_path / "store.sqlite3"
    wal = Path(f"{path}-wal")
    subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(path)], cwd=ROOT, check=True)
    written = wal.stat().st_size
    assert written > 4000

    subprocess.run([sys.executable, "-c", OPEN_AND_DIE, str(path)], cwd=ROOT, check=True)

    assert wal.exists()
    assert wal.stat().st_size == written
    stored = SqliteDocumentStore(path).get("c", "n")
    assert stored is not None
    assert stored.data == {"payload": "x" * 4000}
