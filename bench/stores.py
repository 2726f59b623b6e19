"""The stores a benchmark runs on: Google's Firestore emulator, started for the run, and
the embedded SQLite store and the emulator in turn (``run_on_both_stores``); and the
before/after timing those benchmarks share (``alternating_p50s``)."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from shared.store.base import DocumentStore
from shared.store.sqlite import SqliteDocumentStore


def start_firestore(folder: Path) -> tuple[DocumentStore, Callable[[], None]]:
    """Start Google's Firestore emulator (its log in ``folder``) and return the adapter on
    it, warmed up, and what stops the emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    from shared.store.firestore import FirestoreDocumentStore
    from tests.support.processes import (
        firestore_emulator_command,
        free_port,
        http_ok,
        start_process,
    )

    port = free_port()
    host = f"127.0.0.1:{port}"
    emulator = start_process(
        firestore_emulator_command(port),
        host=host,
        log_path=folder / "firestore.log",
        ready=lambda: http_ok(f"http://{host}/", "Ok"),
        timeout=90,
    )
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    store = FirestoreDocumentStore(
        firestore.Client(project="demo-bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    )
    for index in range(50):  # the JVM answers its first requests slowly
        store.set("warm", f"w{index}", {"i": index})
        store.get("warm", f"w{index}")

    def stop() -> None:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        emulator.stop()

    return store, stop


def run_on_both_stores(
    measure_on: Callable[[str, DocumentStore, int], None], description: str
) -> None:
    """Run ``measure_on`` on a fresh SQLite store, then (unless ``--no-firestore``) on
    Google's Firestore emulator started here, with the command line's ``--repeat``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--no-firestore", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    sqlite = SqliteDocumentStore(folder / "store.sqlite3")
    measure_on("SQLite (embedded)", sqlite, args.repeat)
    sqlite.close()
    if args.no_firestore:
        return
    store, stop = start_firestore(folder)
    try:
        measure_on("Firestore (emulator on loopback)", store, max(20, args.repeat // 2))
    finally:
        store.close()
        stop()


def alternating_p50s(
    actions: Mapping[str, Callable[[], object]],
    *,
    repeat: int,
    warmup: int,
    before_each: Callable[[str, int], object] = lambda name, round_: None,
) -> dict[str, float]:
    """Run ``actions`` in turn, ``warmup`` untimed rounds then ``repeat`` timed ones, and
    return each one's p50 in seconds. ``before_each(name, round)`` runs, untimed, before
    each action: alternating, a machine slowing down mid-run affects both sides."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for round_ in range(warmup + repeat):
        for name, action in actions.items():
            before_each(name, round_)
            started = time.perf_counter()
            action()
            took = time.perf_counter() - started
            if round_ >= warmup:
                times[name].append(took)
    return {name: statistics.median(values) for name, values in times.items()}
