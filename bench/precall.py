"""Pre-call cloning: what a clone costs with the embedded voice match, and the cache-hit path.

Embedded adapters in a fresh temporary data folder, the real ``precall`` function
(``functions_framework.create_app`` on ``main.py``, as the runtime builds it) and the real
in-process task worker. Callers are mapped to eSpeak-made samples (``gs://`` URLs) and
called; each figure is the time from ``POST /precall/calls`` to seeing the call's clone
``ready`` in the store:

1. **First call ever** (a child process, nothing cached anywhere): the voice match must
   build its US English voice table (every eSpeak variant read and measured) before it
   can match. The mapping's warm-up task starts that build as the mapping is saved; the
   call is posted right after, so it waits for the build.
2. **First call in a fresh process** (this process, the same data folder): the table is
   read from the models bucket, the speaker encoder loaded, the sample measured and
   matched. This is the cost a new Cloud Functions instance pays.
3. **A new caller's clone** (the table in memory): measuring the sample (~7 s of audio)
   and matching it; median of ``--callers``.
4. **The cache-hit path**, p50/p90 of ``--rounds`` calls of a caller already cloned
   (request handling, the call log transaction, the enqueue, the worker picking the task,
   the reuse-or-lease transaction that bumps the cache entry and writes the ready event),
   against a bare ``store.get`` of the call's document measured in the same run (and, for
   context, one read-and-update transaction, of which the hit path runs several).

Run: ``.venv/bin/python -m bench.precall [--rounds N] [--callers N] [--no-first-ever]
[--table-variants N]``. ``--table-variants N`` builds the voice table of the language voice
and eSpeak's first N variants only, not all of them (about 100): a smoke run of a few
seconds, whose clones match among those few voices, so its figures are not the real ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "bench-account"
VOICES = ("en-US+f3", "en-US+Andy", "en-US+belinda", "en-US+m3", "en-US+Annie", "en-US+klatt3")


def limit_voice_table(variants: int | None) -> None:
    """Make this process's voice-match tables of eSpeak's first ``variants`` variants only.

    None leaves them whole. A smoke run's shortcut (``--table-variants``): the whole table
    takes 15-60 s to build, and with fewer voices a match is not the real one.
    """
    if variants is None:
        return
    from shared.providers.espeak import EspeakProvider

    every = EspeakProvider.variant_names

    def first(self: EspeakProvider) -> list[str]:
        return every(self)[:variants]

    EspeakProvider.variant_names = first  # type: ignore[method-assign]  # bench-only: a small table


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _sample_wav(voice: str) -> bytes:
    import io
    import wave

    from shared.providers.base import SynthesisRequest
    from shared.providers.espeak import EspeakProvider

    text = "Hello, this is my voice. I am calling about the order I placed last week."
    result = EspeakProvider().synthesize(SynthesisRequest(text=text, voice_id=voice))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(result.sample_rate)
        out.writeframes(result.pcm)
    return buffer.getvalue()


class Platform:
    """The precall function and the worker over the embedded adapters of this process."""

    def __init__(self) -> None:
        import functions_framework

        from shared.auth import build_dev_verifier
        from shared.bootstrap import get_container, reset_container

        reset_container()
        self.container = get_container()
        self.container.tasks.start()
        self.store = self.container.store
        token = build_dev_verifier(self.container.settings).mint("bench", account_id=ACCOUNT)
        self.headers = {"Authorization": f"Bearer {token}"}
        # functions-framework ships no type hints for create_app.
        app = functions_framework.create_app("precall", str(ROOT / "main.py"))  # type: ignore[no-untyped-call]
        self.client = app.test_client()

    def map_caller(self, caller: str, voice: str) -> None:
        """Map ``caller`` to a sample spoken by the eSpeak ``voice``."""
        bucket = self.container.settings.samples_bucket
        path = f"precall/{ACCOUNT}/{caller.lstrip('+')}.wav"
        self.container.blobs.put(bucket, path, _sample_wav(voice), content_type="audio/wav")
        body = {"callerId": caller, "voiceSampleUrl": f"gs://{bucket}/{path}", "voiceName": "B"}
        response = self.client.post("/precall/mappings", json=body, headers=self.headers)
        assert response.status_code == 201, response.get_json()

    def call(self, caller: str, greeting: str) -> float:
        """Return the milliseconds from the webhook to the call's clone being ready."""
        from shared.precall.repository import CALLS, call_key

        started = time.perf_counter()
        body = {"callerId": caller, "greetingCallId": greeting}
        response = self.client.post("/precall/calls", json=body, headers=self.headers)
        assert response.status_code == 202, response.get_json()
        key = call_key(ACCOUNT, greeting)
        while True:
            document = self.store.get(CALLS, key)
            state = document.data.get("clone_state") if document else None
            if state == "ready":
                return (time.perf_counter() - started) * 1000
            if state == "failed":
                raise RuntimeError(document.data.get("clone_error") if document else "failed")
            time.sleep(0.0002)


def first_ever() -> dict[str, float]:
    """Return the first call's time on a platform that never built the voice table."""
    platform = Platform()
    platform.map_caller("+14155550100", VOICES[0])
    figures = {"first_ever_ms": platform.call("+14155550100", "first-ever")}
    platform.container.close()
    return figures


def fresh_process(rounds: int, callers: int) -> dict[str, Any]:
    """Return the fresh-process, new-caller and cache-hit figures (milliseconds)."""
    from shared.precall.repository import CALLS, call_key
    from shared.store.base import Transaction

    platform = Platform()
    numbers = [f"+1415555{201 + n:04d}" for n in range(callers + 1)]
    for number, voice in zip(numbers, VOICES[1:] * 3, strict=False):
        platform.map_caller(number, voice)
    fresh = platform.call(numbers[0], "fresh-0")
    new_callers = [platform.call(number, f"new-{number}") for number in numbers[1:]]
    for n in range(5):
        platform.call(numbers[0], f"warm-{n}")
    hits = [platform.call(numbers[0], f"hit-{n}") for n in range(rounds)]
    key = call_key(ACCOUNT, "hit-0")
    reads: list[float] = []
    for _ in range(rounds * 20):
        started = time.perf_counter()
        platform.store.get(CALLS, key)
        reads.append((time.perf_counter() - started) * 1000)
    writes: list[float] = []

    def touch(tx: Transaction) -> None:
        tx.get(CALLS, key)
        tx.update(CALLS, key, {"bench": time.time()})

    for _ in range(rounds * 5):
        started = time.perf_counter()
        platform.store.run_transaction(touch)
        writes.append((time.perf_counter() - started) * 1000)
    platform.container.close()
    return {
        "fresh_process_ms": fresh,
        "new_caller_ms": new_callers,
        "hit_p50_ms": statistics.median(hits),
        "hit_p90_ms": _percentile(hits, 0.9),
        "read_p50_ms": statistics.median(reads),
        "read_p90_ms": _percentile(reads, 0.9),
        "tx_p50_ms": statistics.median(writes),
    }


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.precall")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--callers", type=int, default=3)
    parser.add_argument(
        "--no-first-ever", action="store_true", help="skip the voice-table build (30-60 s)"
    )
    parser.add_argument(
        "--table-variants",
        type=int,
        metavar="N",
        help="voice table of eSpeak's first N variants only (a smoke run; default: all)",
    )
    parser.add_argument("--phase", choices=["first-ever"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    limit_voice_table(args.table_variants)
    if args.phase == "first-ever":  # the child process of step 1
        print(json.dumps(first_ever()))
        return
    with tempfile.TemporaryDirectory() as data:
        env = {
            "VOICE_DATA_DIR": data,
            "VOICE_ENVIRONMENT": "test",
            "VOICE_PROVIDERS": "espeak",
            "VOICE_SCHEDULER_ENABLED": "false",
            "VOICE_LOG_LEVEL": "WARNING",
            "VOICE_TASKS_POLL_SECONDS": "0.5",
        }
        os.environ.update(env)
        figures: dict[str, Any] = {}
        if not args.no_first_ever:
            command = [sys.executable, "-m", "bench.precall", "--phase", "first-ever"]
            if args.table_variants is not None:
                command += ["--table-variants", str(args.table_variants)]
            child = subprocess.run(
                command,
                cwd=ROOT,
                env=os.environ.copy(),
                capture_output=True,
                text=True,
                check=True,
            )
            figures.update(json.loads(child.stdout.strip().splitlines()[-1]))
        figures.update(fresh_process(args.rounds, args.callers))
    if "first_ever_ms" in figures:
        print(f"first call ever (voice table built meanwhile): {figures['first_ever_ms']:.0f} ms")
    where = "the bucket" if "first_ever_ms" in figures else "nowhere: built meanwhile"
    fresh = figures["fresh_process_ms"]
    print(f"first call in a fresh process (table from {where}): {fresh:.0f} ms")
    new = figures["new_caller_ms"]
    print(
        f"a new caller's clone (table in memory): median {statistics.median(new):.0f} ms "
        f"(min {min(new):.0f}, max {max(new):.0f}; {len(new)} callers)"
    )
    print(
        f"cache hit, webhook -> clone ready: p50 {figures['hit_p50_ms']:.2f} ms, "
        f"p90 {figures['hit_p90_ms']:.2f} ms ({args.rounds} calls)"
    )
    print(
        f"bare store read of the call:       p50 {figures['read_p50_ms']:.3f} ms, "
        f"p90 {figures['read_p90_ms']:.3f} ms"
    )
    print(f"one read-and-update transaction:   p50 {figures['tx_p50_ms']:.3f} ms (context)")
    ratio = figures["hit_p50_ms"] / figures["read_p50_ms"]
    print(f"hit path p50 / bare read p50: {ratio:.0f}x")


if __name__ == "__main__":
    main()
