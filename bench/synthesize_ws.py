"""Time to first audio of ``/v1/synthesize/ws`` against speaking the whole text at once.

Runs the session service (the real app under uvicorn on a free loopback port, embedded
store, eSpeak NG) in a child process; a client sends a 1,000-character text in 5-character
pieces as fast as it can (an LLM at full speed), then ``end``, and measures from its first
piece to the first audio frame (TTFA) and to ``synthesis.ended`` (total). The baseline,
measured in the same run on the same machine, is eSpeak NG rendering the whole text in one
call in this process: what a client of a non-streamed synthesis waits for before any audio.
Prints the medians and the ratios TTFA / total and TTFA / whole-text render.

    python -m bench.synthesize_ws [--runs 7]
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
import urllib.request
from pathlib import Path

SECRET = "b" * 40
SENTENCE = "The quick brown fox jumps over the lazy dog while the cat watches. "
TEXT = (SENTENCE * 16)[:1000]
PIECE_CHARS = 5
RATE = 22_050


def serve(port: int, data_dir: Path) -> None:
    """Run the session service with eSpeak's voices in its catalog (bench only)."""
    from bench.sessions import InstantTranscriber
    from session.app import create_app
    from session.container import SessionContainer
    from session.server import SessionServer
    from shared.catalog.repository import VoiceRepository
    from shared.config import Settings
    from shared.log import configure_logging
    from shared.speech import SpeechRegistry

    settings = Settings(
        environment="test",
        data_dir=data_dir,
        dev_auth_secret=SECRET,
        providers="espeak",
        espeak_variant_languages="",
        log_level="WARNING",
    )
    configure_logging(settings.log_level)
    container = SessionContainer(settings, speech=SpeechRegistry.of([InstantTranscriber("")]))
    VoiceRepository(container.store).upsert(container.providers.get("espeak").list_voices())
    SessionServer(create_app(container), settings, host="127.0.0.1", port=port).run()


def wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    """Wait until the service answers ``/healthz``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the session service exited")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the session service did not start")


def one_run(url: str, token: str) -> tuple[float, float, float]:
    """Return (first audio, total, seconds of speech) for one streamed text."""
    from websockets.sync.client import connect

    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        ws.send(json.dumps({"type": "start", "voice": "en-US", "sampleRate": RATE}))
        json.loads(ws.recv(timeout=30))  # synthesis.started
        started = time.perf_counter()
        for start in range(0, len(TEXT), PIECE_CHARS):
            ws.send(json.dumps({"type": "text", "text": TEXT[start : start + PIECE_CHARS]}))
        ws.send(json.dumps({"type": "end"}))
        first = 0.0
        audio = 0
        for message in ws:
            if isinstance(message, bytes):
                first = first or time.perf_counter() - started
                audio += len(message)
            elif json.loads(message)["type"] == "synthesis.ended":
                return first, time.perf_counter() - started, audio / 2 / RATE
    raise RuntimeError("the connection closed before synthesis.ended")


def whole_text_seconds() -> float:
    """Return how long eSpeak NG takes to render the whole text in one call."""
    from shared.providers import AudioSettings, SynthesisRequest
    from shared.providers.espeak import EspeakProvider

    provider = EspeakProvider(variant_languages=[])
    request = SynthesisRequest(
        text=TEXT, voice_id="en-US", settings=AudioSettings(sample_rate=RATE), want_timings=False
    )
    started = time.perf_counter()
    provider.synthesize(request)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with ``serve``, the server it measures)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args.port, args.data)
        return

    from shared.auth import build_dev_verifier
    from shared.config import Settings
    from tests.support.processes import free_port

    port = args.port or free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_")}
        command = [sys.executable, "-m", "bench.synthesize_ws", "serve", "--port", str(port)]
        server = subprocess.Popen([*command, "--data", data], env=env)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", server)
            settings = Settings(environment="test", data_dir=Path(data), dev_auth_secret=SECRET)
            token = build_dev_verifier(settings).mint("bench")
            url = f"ws://127.0.0.1:{port}/v1/synthesize/ws"
            one_run(url, token)  # warm-up: the first connection loads the synthesis parts
            runs = [one_run(url, token) for _ in range(args.runs)]
            whole = statistics.median(whole_text_seconds() for _ in range(args.runs))
        finally:
            server.terminate()
            server.wait(timeout=30)
    first = statistics.median(run[0] for run in runs)
    total = statistics.median(run[1] for run in runs)
    speech = statistics.median(run[2] for run in runs)
    print(
        f"{len(TEXT)} characters ({speech:.1f} s of speech) sent in {PIECE_CHARS}-character "
        f"pieces, median of {args.runs} runs, eSpeak NG at {RATE} Hz, 2-core machine:\n"
        f"  first audio       {first * 1000:7.1f} ms\n"
        f"  all audio         {total * 1000:7.1f} ms   first / all = {first / total:.3f}\n"
        f"  whole text, one eSpeak call (baseline, same run) {whole * 1000:7.1f} ms"
        f"   first audio / baseline = {first / whole:.3f}"
    )


if __name__ == "__main__":
    main()
