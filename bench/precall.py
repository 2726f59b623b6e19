"""Pre-call clone-cache hit path: telephony webhook to clone ready, against a bare store read.

One process, embedded adapters in a fresh temporary data folder, the real ``precall``
function (``functions_framework.create_app`` on ``main.py``, as the runtime builds it) and
the real in-process task worker. A caller is mapped to an eSpeak-made sample and called
once, so the clone is made (embedded pitch-match cloner) and cached. Then each round posts
``POST /precall/calls`` with a new greeting call id and polls the call's document until its
clone is ``ready``: the time from the request to seeing it ready is the hit path (request
handling, the call log transaction, the enqueue, the worker picking the task, the
reuse-or-lease transaction that bumps the cache entry and writes the ready event). The
baseline, measured in the same run on the same store, is one bare ``store.get`` of the
call's document (for context also one read-and-update transaction, of which the hit path
runs several: the call log, the queue's de-duplication claim and task claim, the reuse).
Prints p50/p90 of each and their ratio.

Run: ``.venv/bin/python -m bench.precall [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "bench-account"
CALLER = "+14155550100"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _sample_wav() -> bytes:
    import io
    import wave

    from shared.providers.base import SynthesisRequest
    from shared.providers.espeak import EspeakProvider

    text = "Hello, this is my voice. I am calling about the order I placed last week."
    result = EspeakProvider().synthesize(SynthesisRequest(text=text, voice_id="en-US+f3"))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(result.sample_rate)
        out.writeframes(result.pcm)
    return buffer.getvalue()


def run(rounds: int) -> dict[str, float]:
    """Return the measured figures (milliseconds and the ratio)."""
    import functions_framework

    from shared.auth import build_dev_verifier
    from shared.bootstrap import get_container, reset_container
    from shared.precall.repository import CALLS, call_key
    from shared.store.base import Transaction

    reset_container()
    container = get_container()
    container.tasks.start()
    store = container.store
    token = build_dev_verifier(container.settings).mint("bench", account_id=ACCOUNT)
    headers = {"Authorization": f"Bearer {token}"}
    # functions-framework ships no type hints for create_app.
    app = functions_framework.create_app("precall", str(ROOT / "main.py"))  # type: ignore[no-untyped-call]
    client = app.test_client()
    path = f"precall/{ACCOUNT}/sample.wav"
    container.blobs.put(
        container.settings.samples_bucket, path, _sample_wav(), content_type="audio/wav"
    )
    mapping = {
        "callerId": CALLER,
        "voiceSampleUrl": f"gs://{container.settings.samples_bucket}/{path}",
        "voiceName": "Bench",
    }
    assert client.post("/precall/mappings", json=mapping, headers=headers).status_code == 201

    def call(greeting: str) -> float:
        started = time.perf_counter()
        body = {"callerId": CALLER, "greetingCallId": greeting}
        response = client.post("/precall/calls", json=body, headers=headers)
        assert response.status_code == 202, response.get_json()
        key = call_key(ACCOUNT, greeting)
        while True:
            document = store.get(CALLS, key)
            state = document.data.get("clone_state") if document else None
            if state == "ready":
                return (time.perf_counter() - started) * 1000
            if state == "failed":
                raise RuntimeError(document.data.get("clone_error") if document else "failed")
            time.sleep(0.0002)

    first = call("warm-up")  # makes and caches the clone
    for n in range(5):
        call(f"warm-{n}")
    hits = [call(f"hit-{n}") for n in range(rounds)]
    key = call_key(ACCOUNT, "hit-0")
    reads: list[float] = []
    for _ in range(rounds * 20):
        started = time.perf_counter()
        store.get(CALLS, key)
        reads.append((time.perf_counter() - started) * 1000)
    writes: list[float] = []

    def touch(tx: Transaction) -> None:
        tx.get(CALLS, key)
        tx.update(CALLS, key, {"bench": time.time()})

    for _ in range(rounds * 5):
        started = time.perf_counter()
        store.run_transaction(touch)
        writes.append((time.perf_counter() - started) * 1000)
    container.close()
    return {
        "tx_p50_ms": statistics.median(writes),
        "first_clone_ms": first,
        "hit_p50_ms": statistics.median(hits),
        "hit_p90_ms": _percentile(hits, 0.9),
        "read_p50_ms": statistics.median(reads),
        "read_p90_ms": _percentile(reads, 0.9),
    }


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.precall")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data:
        os.environ.update(
            {
                "VOICE_DATA_DIR": data,
                "VOICE_ENVIRONMENT": "test",
                "VOICE_SCHEDULER_ENABLED": "false",
                "VOICE_LOG_LEVEL": "WARNING",
                "VOICE_TASKS_POLL_SECONDS": "0.5",
            }
        )
        figures: dict[str, Any] = run(args.rounds)
    ratio = figures["hit_p50_ms"] / figures["read_p50_ms"]
    print(f"first call (clone made, embedded cloner): {figures['first_clone_ms']:.1f} ms")
    print(
        f"cache hit, webhook -> clone ready: p50 {figures['hit_p50_ms']:.2f} ms, "
        f"p90 {figures['hit_p90_ms']:.2f} ms ({args.rounds} calls)"
    )
    print(
        f"bare store read of the call:       p50 {figures['read_p50_ms']:.3f} ms, "
        f"p90 {figures['read_p90_ms']:.3f} ms"
    )
    print(f"one read-and-update transaction:   p50 {figures['tx_p50_ms']:.3f} ms (context)")
    print(f"hit path p50 / bare read p50: {ratio:.0f}x")


if __name__ == "__main__":
    main()
