"""What a voice model's use costs a short synthesis's response, before and after the outbox.

Before (issue 18): the job's record (a create), then the use written to its counter shard
(``record_usage``: a set with increments, then a batch bumping two cache scopes): three
commits on the response path. After: the job's record, the use's outbox record and the
two scope bumps in one batch (``add_pending_use``), applied to the counters later. Both
run on the same store in the same run, alternating, on the embedded SQLite store and on
Google's Firestore emulator (started here; production's Firestore is a network round trip
per commit, which the emulator on loopback understates). Prints each one's p50 and the
ratio after / before; and checks that the counters end equal (every use counted once).

Run: ``.venv/bin/python -m bench.usage_outbox [--repeat N] [--no-firestore]``.
"""

from __future__ import annotations

from bench.stores import alternating_p50s, run_on_both_stores
from shared.model import new_id
from shared.store.base import DocumentStore
from shared.store.cache import DocumentCache
from shared.voice_models.model import VoiceModelUsageEvent
from shared.voice_models.usage import record_usage, usage_stats
from shared.voice_models.usage_outbox import add_pending_use

SHARDS = 8
EVENT = VoiceModelUsageEvent(cost=0.0001, latency_ms=12.0, characters=150)
JOB = {"user_id": "bench", "status": "completed", "text": "x" * 150}


def before(store: DocumentStore, cache: DocumentCache) -> None:
    store.create("synthesis_jobs", new_id(), JOB)
    record_usage(
        store, model_id="before", owner_id="bench", event=EVENT, shards=SHARDS, cache=cache
    )


def after(store: DocumentStore, cache: DocumentCache) -> None:
    with store.batch() as batch:
        batch.create("synthesis_jobs", new_id(), JOB)
        add_pending_use(
            batch, model_id="after", owner_id="bench", event=EVENT, shards=SHARDS, cache=cache
        )


def measure(name: str, store: DocumentStore, repeat: int) -> None:
    cache = DocumentCache(store)
    p50 = alternating_p50s(
        {"before": lambda: before(store, cache), "after": lambda: after(store, cache)},
        repeat=repeat,
        warmup=5,
    )
    old, new = p50["before"], p50["after"]
    counted = (
        usage_stats(store, "before", shards=SHARDS).usage_count,
        usage_stats(store, "after", shards=SHARDS).usage_count,
    )
    assert counted == (repeat + 5, repeat + 5), counted
    print(f"{name}:")
    print(f"   before: job record, then the use on its counters  p50 {old * 1000:.3f} ms")
    print(f"   after:  job record and the use in one batch       p50 {new * 1000:.3f} ms")
    print(f"   after / before {new / old:.2f}; saved {(old - new) * 1000:.3f} ms per synthesis")
    print(f"   counted: {counted[0]} and {counted[1]} uses (each once)")


def main() -> None:
    run_on_both_stores(measure, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
