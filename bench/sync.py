"""Voice catalog: a provider sync of the seed's 800 voices, and filtered listing latency.

For each store adapter (SQLite; Firestore on Google's emulator, started here):

* sync: ``sync_provider_voices`` of 800 voices from a provider fake into an empty catalog
  (the first, all-added sync) and again with nothing changed (the daily case), in voices
  per second, against raw batched writes of the same 800 documents through the adapter's
  ``batch()`` (the floor: what writing them costs with no reads and no comparison);
* listing: ``GET /voices?language=en-US&gender=female`` over the 800 voices, timed inside the
  voices function's ``Api.handle`` (server side: routing, auth, query, JSON), p50 and p99.

Targets: first sync of 800 voices under 2 s on SQLite; listing p50 <= 10 ms.

Run: ``.venv/bin/python -m bench.sync [--voices N] [--requests N] [--skip-firestore]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stores import start_firestore
from shared.catalog.repository import VOICES, voice_document
from shared.catalog.sync import sync_provider_voices
from shared.store.base import DocumentStore, Query
from tests.support.fake_provider import FakeProvider, make_voices

NOW = datetime(2026, 1, 22, 3, 0, tzinfo=UTC)


def clear(store: DocumentStore, collection: str) -> None:
    while True:
        page = store.query(Query(collection).take(500))
        if not page.documents:
            return
        with store.batch() as batch:
            for document in page.documents:
                batch.delete(collection, document.id)


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_sync(store: DocumentStore, count: int, rounds: int) -> dict[str, float]:
    provider = FakeProvider("bench", make_voices("bench", count))
    documents = [
        (v.id, voice_document(v.model_copy(update={"synced_at": NOW}))) for v in provider.voices
    ]

    def raw_batches() -> None:
        for start in range(0, len(documents), 500):
            with store.batch() as batch:
                for doc_id, data in documents[start : start + 500]:
                    batch.set("bench_raw_voices", doc_id, data)

    raw, first, unchanged = [], [], []
    for _ in range(rounds):
        clear(store, "bench_raw_voices")
        raw.append(timed(raw_batches))
        clear(store, VOICES)
        first.append(timed(lambda: sync_provider_voices(store=store, provider=provider, now=NOW)))
        unchanged.append(
            timed(lambda: sync_provider_voices(store=store, provider=provider, now=NOW))
        )
    return {
        "raw_seconds": min(raw),
        "first_seconds": min(first),
        "unchanged_seconds": min(unchanged),
        "raw_rate": count / min(raw),
        "first_rate": count / min(first),
        "unchanged_rate": count / min(unchanged),
    }


def bench_listing(store: DocumentStore, requests: int, data_dir: Path) -> dict[str, float]:
    import flask

    import functions.voices as voices_function
    from shared.auth import build_dev_verifier
    from shared.bootstrap import Container
    from shared.config import Settings

    settings = Settings(environment="test", data_dir=data_dir, log_level="WARNING")
    container = Container(settings)
    container.__dict__["store"] = store  # the adapter under test, not the settings' choice
    voices_function.api._container = lambda: container
    token = build_dev_verifier(settings).mint("bench-user", ttl_seconds=3600)
    app = flask.Flask("bench")
    headers = {"Authorization": f"Bearer {token}"}
    path = "/voices?language=en-US&gender=female&limit=50"
    latencies = []
    for index in range(requests + 20):
        with app.test_request_context(path, headers=headers):
            started = time.perf_counter()
            response = voices_function.api.handle(flask.request)
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.get_data(as_text=True)
        if index >= 20:  # warm-up: first queries build the indexes and caches
            latencies.append(elapsed * 1000)
    latencies.sort()
    matched = len(response.get_json()["voices"])
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "matched": matched,
    }


def report(name: str, sync: dict[str, float], listing: dict[str, float], count: int) -> None:
    print(f"\n{name}")
    print(f"  raw batched writes : {sync['raw_rate']:9.0f} voices/s ({sync['raw_seconds']:.3f} s)")
    for label, key in (("first sync", "first"), ("unchanged sync", "unchanged")):
        seconds = sync[f"{key}_seconds"]
        ratio = sync[f"{key}_rate"] / sync["raw_rate"]
        print(
            f"  {label:<19}: {sync[f'{key}_rate']:9.0f} voices/s ({seconds:.3f} s for {count})"
            f"  ratio to raw {ratio:.2f}"
        )
    print(
        f"  GET /voices (en-US, female; {int(listing['matched'])} on the page): "
        f"p50 {listing['p50_ms']:.2f} ms, p99 {listing['p99_ms']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--voices", type=int, default=800)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-firestore", action="store_true")
    args = parser.parse_args()

    from shared.store.sqlite import SqliteDocumentStore

    ok = True
    with tempfile.TemporaryDirectory() as folder:
        sqlite = SqliteDocumentStore(Path(folder) / "bench.sqlite3")
        sync = bench_sync(sqlite, args.voices, args.rounds)
        listing = bench_listing(sqlite, args.requests, Path(folder))
        report("SQLite", sync, listing, args.voices)
        ok &= sync["first_seconds"] < 2.0 and listing["p50_ms"] <= 10.0
        sqlite.close()
        if not args.skip_firestore:
            store, stop = start_firestore(Path(folder))
            try:
                sync = bench_sync(store, args.voices, 1)
                listing = bench_listing(store, max(args.requests // 3, 50), Path(folder))
                report("Firestore (emulator)", sync, listing, args.voices)
            finally:
                store.close()
                stop()
    print("\ntargets (SQLite sync < 2 s, listing p50 <= 10 ms):", "met" if ok else "MISSED")


if __name__ == "__main__":
    main()
