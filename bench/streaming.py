"""Streaming synthesis benchmark, in one run, through the local gateway (issue 18).

For a 1,000-character text (sentences of 40 to 120 characters), time to first byte of
``POST /synthesize/stream`` (chunked wav) against the total time of ``POST /synthesize``
answering the same kind of text non-streamed (the wav itself, ``Accept: audio/wav``), both
cache misses, through the real synthesis function over HTTP with eSpeak NG. Targets: TTFB
<= 50 ms and TTFB / non-streamed total <= 0.1. It also prints the streamed request's own
total time (to its last byte) for comparison.

The gateway runs in this process (waitress with the gateway's streaming settings, on a free
port) on a temporary data directory, so the figures need no network. Each repetition uses
a text of its own (no cache hits); the two kinds of request alternate.

Run: ``.venv/bin/python -m bench.streaming [--repeat N]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import threading
import time

from local.gateway import Gateway, gateway_server
from shared.auth import build_dev_verifier
from shared.bootstrap import get_container
from shared.catalog.repository import VoiceRepository
from tests.support.processes import free_port

SENTENCES = (
    "Streaming speech starts playing before the whole text has been synthesized.",
    "The first sentence is spoken alone, so that its audio leaves the server soonest.",
    "Later sentences are grouped into larger pieces while the listener is still busy.",
    "Each piece is encoded as it comes and sent on in the order of the text.",
    "A slow reader holds the synthesis back, so memory stays bounded on the server.",
    "When the stream ends, the whole audio is stored and cached for the next request.",
    "A client that hangs up early stops the work, and nothing partial is kept.",
    "Word timings come with every chunk on the clock of the whole utterance.",
    "Voice apps want the first audio at once and the rest as fast as it is read.",
    "This benchmark compares the first byte of one with the last byte of the other.",
    "Both requests pass through the gateway, the function and the same engine.",
    "The target is a first byte within fifty milliseconds.",
    "And a tenth of the time of the request that is not streamed.",
)
TTFB_TARGET_MS = 50.0
RATIO_TARGET = 0.1


def text(index: int) -> str:
    """Return a 1,000-character text, unique per ``index`` (its cache key differs)."""
    body = " ".join(SENTENCES)
    marker = f" Run {index}."
    return (body[: 1000 - len(marker)].rsplit(" ", 1)[0] + marker).ljust(1000, ".")


class Client:
    """One kept-alive HTTP connection to the gateway with a user's token."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def streamed(self, body: dict[str, object]) -> tuple[float, float]:
        """Return (time to first body byte, time to last byte) of a streamed request."""
        started = time.perf_counter()
        self.conn.request("POST", "/synthesize/stream", body=json.dumps(body), headers=self.headers)
        response = self.conn.getresponse()
        first = response.read1(65536)
        ttfb = time.perf_counter() - started
        rest = response.read()
        total = time.perf_counter() - started
        if response.status != 200 or not first or not rest:
            raise RuntimeError(f"stream answered {response.status}")
        return ttfb, total

    def whole(self, body: dict[str, object]) -> float:
        """Return the total time of a non-streamed request answering the audio itself."""
        started = time.perf_counter()
        headers = {**self.headers, "Accept": "audio/wav"}
        self.conn.request("POST", "/synthesize", body=json.dumps(body), headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        total = time.perf_counter() - started
        if response.status != 200 or response.getheader("X-Cache-Hit") != "false":
            raise RuntimeError(f"/synthesize answered {response.status}: {data[:200]!r}")
        return total


def main() -> None:
    """Measure and print TTFB, the non-streamed total, their ratio, and the targets."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    os.environ.update(
        {
            "VOICE_DATA_DIR": tempfile.mkdtemp(prefix="bench-streaming-"),
            "VOICE_ENVIRONMENT": "test",
            "VOICE_SCHEDULER_ENABLED": "false",
            "VOICE_ESPEAK_VARIANT_LANGUAGES": "en-us",
            "VOICE_LOG_LEVEL": "WARNING",
        }
    )
    container = get_container()  # the settings are read now, from the environment above
    engine = container.providers.get("espeak")
    VoiceRepository(container.store).upsert(engine.list_voices())
    port = free_port()
    server = gateway_server(Gateway(container), host="127.0.0.1", port=port, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    client = Client(port, build_dev_verifier(container.settings).mint("bench-user"))
    voice = {"voice": "espeak:en-US", "outputFormat": "wav"}
    client.streamed({"text": "Warm up the stream.", **voice})
    client.whole({"text": "Warm up the whole.", **voice})
    first_bytes, stream_totals, wholes = [], [], []
    for index in range(args.repeat):
        ttfb, total = client.streamed({"text": text(2 * index), **voice})
        first_bytes.append(ttfb)
        stream_totals.append(total)
        wholes.append(client.whole({"text": text(2 * index + 1), **voice}))
    ttfb_ms = statistics.median(first_bytes) * 1000
    whole_ms = statistics.median(wholes) * 1000
    ratio = ttfb_ms / whole_ms
    print("Streaming synthesis, 1,000 characters, wav, eSpeak NG, through the gateway")
    print(f"   repetitions {args.repeat} (p50 of each)")
    print(
        f"   streamed: first byte {ttfb_ms:.1f} ms, last byte "
        f"{statistics.median(stream_totals) * 1000:.1f} ms"
    )
    print(f"   non-streamed POST /synthesize (audio answer): {whole_ms:.1f} ms")
    print(f"   TTFB <= {TTFB_TARGET_MS:.0f} ms: {'PASS' if ttfb_ms <= TTFB_TARGET_MS else 'FAIL'}")
    print(
        f"   ratio TTFB / non-streamed {ratio:.3f} "
        f"(target <= {RATIO_TARGET}: {'PASS' if ratio <= RATIO_TARGET else 'FAIL'})"
    )
    client.conn.close()
    server.close()
    container.close()


if __name__ == "__main__":
    main()
