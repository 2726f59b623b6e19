"""Document store adapters against the raw clients doing the same work, in one run.

For SQLite: our adapter against plain ``sqlite3`` with the same table layout, pragmas and
JSON documents. For Firestore: our adapter against the raw ``google-cloud-firestore``
client, both on Google's Firestore emulator (started here). Each measures documents
written per second (one write each), documents read per second (get by id), and a
filtered, ordered, limited query per second. Prints each rate and the ratio adapter/raw.

Targets: SQLite adapter >= 0.5 of raw sqlite3; Firestore adapter >= 0.9 of the raw client.

Run: ``make bench`` or ``.venv/bin/python -m bench.store [--docs N] [--skip-firestore]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.store import Query
from shared.store.sqlite import SqliteDocumentStore

COLLECTION = "bench_docs"


def make_documents(count: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (
            f"doc-{i:06d}",
            {
                "user_id": f"user-{i % 20}",
                "provider": rng.choice(["xtts-v2", "google-cloud-tts", "openai-tts"]),
                "quality_score": round(rng.random(), 4),
                "is_active": i % 7 == 0,
                "created_at": start + timedelta(minutes=i),
                "model_path": f"models/user-{i % 20}/doc-{i:06d}/model.pth",
                "metadata": {"version": "1.0", "epochs": rng.randint(1, 100)},
                "tags": ["clone", "en-US"],
            },
        )
        for i in range(count)
    ]


def rate(count: int, action: Callable[[int], None], rounds: int = 3) -> float:
    """Return operations per second: the best of ``rounds`` runs of ``action(round)``."""
    best = float("inf")
    for round_number in range(rounds):
        started = time.perf_counter()
        action(round_number)
        best = min(best, time.perf_counter() - started)
    return count / best


# -- SQLite ----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def bench_sqlite(documents: list[tuple[str, dict[str, Any]]], queries: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    results: dict[str, float] = {}
    ids = [doc_id for doc_id, _ in documents]

    # Raw sqlite3: the same layout and pragmas the adapter uses, written by hand.
    raw = sqlite3.connect(folder / "raw.sqlite3", isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = NORMAL")
    for table in ("docs", "docs_1", "docs_2"):
        raw.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL)")
        raw.execute(f"CREATE INDEX ix_user_{table} ON {table} (json_extract(data, '$.user_id'))")
        raw.execute(
            f"CREATE INDEX ix_quality_{table} ON {table} (json_extract(data, '$.quality_score'))"
        )

    def raw_write(round_number: int) -> None:
        table = "docs" if round_number == 0 else f"docs_{round_number}"
        for doc_id, data in documents:
            raw.execute(
                f"INSERT INTO {table} (id, data) VALUES (?, ?)",  # noqa: S608 - fixed names
                (doc_id, json.dumps(data, default=_json_default, separators=(",", ":"))),
            )

    def raw_read(_: int) -> None:
        for doc_id in ids:
            row = raw.execute("SELECT data FROM docs WHERE id = ?", (doc_id,)).fetchone()
            json.loads(row[0])

    def raw_query(_: int) -> None:
        for i in range(queries):
            rows = raw.execute(
                "SELECT id, data FROM docs WHERE json_extract(data, '$.user_id') = ? "
                "ORDER BY json_extract(data, '$.quality_score') DESC, id DESC LIMIT 20",
                (f"user-{i % 20}",),
            ).fetchall()
            [json.loads(text) for _, text in rows]

    adapter = SqliteDocumentStore(folder / "adapter.sqlite3")
    query = Query(COLLECTION).order("quality_score", descending=True).take(20)

    for name in (COLLECTION, f"{COLLECTION}_1", f"{COLLECTION}_2"):
        # Create the tables and indexes up front, as the raw side does.
        adapter.count(Query(name).where("user_id", "==", "x"))
        adapter.query(Query(name).order("quality_score").take(1))

    def adapter_write(round_number: int) -> None:
        collection = COLLECTION if round_number == 0 else f"{COLLECTION}_{round_number}"
        for doc_id, data in documents:
            adapter.create(collection, doc_id, data)

    def adapter_read(_: int) -> None:
        for doc_id in ids:
            adapter.get(COLLECTION, doc_id)

    def adapter_query(_: int) -> None:
        for i in range(queries):
            adapter.query(query.where("user_id", "==", f"user-{i % 20}"))

    results["write raw"] = rate(len(documents), raw_write)
    results["write adapter"] = rate(len(documents), adapter_write)
    results["read raw"] = rate(len(ids), raw_read)
    results["read adapter"] = rate(len(ids), adapter_read)
    results["query raw"] = rate(queries, raw_query)
    results["query adapter"] = rate(queries, adapter_query)
    adapter.close()
    raw.close()
    return results


# -- Firestore -------------------------------------------------------------------------------


def bench_firestore(documents: list[tuple[str, dict[str, Any]]], queries: int) -> dict[str, float]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.store.firestore import FirestoreDocumentStore
    from tests.support.processes import firestore_emulator_command, free_port, http_ok
    from tests.support.processes import start_process as start

    port = free_port()
    host = f"127.0.0.1:{port}"
    emulator = start(
        firestore_emulator_command(port),
        host=host,
        log_path=Path(tempfile.mkdtemp()) / "firestore.log",
        ready=lambda: http_ok(f"http://{host}/", "Ok"),
        timeout=90,
    )
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        client = firestore.Client(project="demo-bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        adapter = FirestoreDocumentStore(
            firestore.Client(project="demo-bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        )
        # Warm the JVM before timing anything.
        for i in range(50):
            client.collection("warm").document(f"w{i}").set({"i": i})
            client.collection("warm").document(f"w{i}").get()
        ids = [doc_id for doc_id, _ in documents]
        raw_col = client.collection("raw_docs")
        results: dict[str, float] = {}

        def raw_write(_: int) -> None:
            for doc_id, data in documents:
                raw_col.document(doc_id).set(data)

        def adapter_write(_: int) -> None:
            for doc_id, data in documents:
                adapter.set(COLLECTION, doc_id, data)

        def raw_read(_: int) -> None:
            for doc_id in ids:
                raw_col.document(doc_id).get().to_dict()

        def adapter_read(_: int) -> None:
            for doc_id in ids:
                adapter.get(COLLECTION, doc_id)

        def raw_query(_: int) -> None:
            for i in range(queries):
                native = (
                    raw_col.where(filter=FieldFilter("user_id", "==", f"user-{i % 20}"))
                    .order_by("quality_score", direction=firestore.Query.DESCENDING)
                    .order_by("__name__", direction=firestore.Query.DESCENDING)
                    .limit(21)
                )
                [s.to_dict() for s in native.stream()]

        query = Query(COLLECTION).order("quality_score", descending=True).take(20)

        def adapter_query(_: int) -> None:
            for i in range(queries):
                adapter.query(query.where("user_id", "==", f"user-{i % 20}"))

        # Interleave raw and adapter rounds so JVM drift affects both alike.
        pairs = [
            ("write", raw_write, adapter_write, len(documents)),
            ("read", raw_read, adapter_read, len(ids)),
            ("query", raw_query, adapter_query, queries),
        ]
        for name, raw_action, adapter_action, count in pairs:
            raw_rates, adapter_rates = [], []
            for _ in range(3):
                raw_rates.append(rate(count, raw_action, rounds=1))
                adapter_rates.append(rate(count, adapter_action, rounds=1))
            results[f"{name} raw"] = statistics.median(raw_rates)
            results[f"{name} adapter"] = statistics.median(adapter_rates)
        adapter.close()
        client.close()  # type: ignore[no-untyped-call]  # untyped library
        return results
    finally:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        emulator.stop()


def report(title: str, results: dict[str, float], target: float) -> bool:
    print(f"\n{title}")
    ok = True
    for name in ("write", "read", "query"):
        raw, ours = results[f"{name} raw"], results[f"{name} adapter"]
        ratio = ours / raw
        ok &= ratio >= target
        mark = "ok" if ratio >= target else "BELOW TARGET"
        print(
            f"  {name:<6} raw {raw:>10.0f}/s   adapter {ours:>10.0f}/s   ratio {ratio:.2f}  {mark}"
        )
    print(f"  target: adapter/raw >= {target}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--firestore-docs", type=int, default=300)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-firestore", action="store_true")
    args = parser.parse_args()
    ok = report(
        "SQLite adapter vs raw sqlite3", bench_sqlite(make_documents(args.docs), args.queries), 0.5
    )
    if not args.skip_firestore:
        results = bench_firestore(make_documents(args.firestore_docs), args.queries // 3)
        ok &= report("Firestore adapter vs raw client (emulator)", results, 0.9)
    print("\nall targets met" if ok else "\nsome targets missed")


if __name__ == "__main__":
    main()
