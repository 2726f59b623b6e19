"""The embedded store under several processes at once, and its own bookkeeping of tables."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from shared.store import Query
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


def test_a_rolled_back_transaction_does_not_leave_a_table_believed_created(tmp_path: Path):
    store = SqliteDocumentStore(tmp_path / "store.sqlite3")

    def create_then_fail(tx):
        tx.get("fresh", "a")
        tx.query(Query("fresh").where("n", ">", 1))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.run_transaction(create_then_fail)
    assert store.get("fresh", "a") is None
    store.set("fresh", "a", {"n": 2})
    assert [d.id for d in store.query(Query("fresh").where("n", ">", 1)).documents] == ["a"]
    store.close()
