"""The embedded store under several processes at once: transactions stay exact."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from shared.store.sqlite import SqliteDocumentStore


def _increment_many(path: str, times: int) -> None:
    store = SqliteDocumentStore(path)

    def bump(tx):
        current = tx.get("counters", "c").data["n"]
        tx.update("counters", "c", {"n": current + 1})

    for _ in range(times):
        store.run_transaction(bump, max_attempts=20)
    store.close()


def test_transactions_from_several_processes_keep_a_counter_exact(tmp_path: Path):
    path = str(tmp_path / "store.sqlite3")
    store = SqliteDocumentStore(path)
    store.create("counters", "c", {"n": 0})
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment_many, args=(path, 40)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert store.get("counters", "c").data["n"] == 160
    assert store._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
