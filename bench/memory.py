"""Peak memory of the gateway serving the largest legal synchronous synthesis requests.

``python -m bench.memory`` starts the local gateway in its own process (eSpeak NG only, a
fresh data directory), warms it with a short request, then sends requests that make just
under ``synthesis_sync_max_audio_seconds`` of audio (the most a request answered at once
may make): SSML with ten-second breaks, and plain text at half speed, in wav, mp3 and
ogg_opus. It prints the server's resident memory after the warm-up and its peak
(``VmHWM``) after the requests, and checks the peak against the stated bound
(``PEAK_BOUND_MB``; the README quotes it). A request over the limit is refused before
anything is rendered (tests/functions/test_synthesis_limits.py), so nothing larger can
reach the renderer. Last, the largest legal job (``synthesis_max_chars`` of plain text at
the slowest speed, rendered in chunks by the in-process worker and assembled), whose own
peak (``VmHWM`` reset before it) is printed after the bound's verdict, which covers the
at-once requests only.

Run: ``.venv/bin/python -m bench.memory [--formats wav,mp3,ogg_opus]``; ``--formats`` names
the at-once requests' output formats (default all three; ``--formats wav`` is a smoke run
of about half the time, whose peak leaves out the encoders' share).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from shared.config import Settings
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
PEAK_BOUND_MB = 600
# The at-once limit the gateway below runs with (it is started with the defaults).
SYNC_SECONDS = float(Settings.model_fields["synthesis_sync_max_audio_seconds"].default)
MAX_SECONDS = float(Settings.model_fields["synthesis_max_audio_seconds"].default)
MAX_CHARS = int(Settings.model_fields["synthesis_max_chars"].default)
SLOWEST = 0.25
CHARS_PER_SECOND = 14.0  # as shared.synthesis.model estimates
FORMATS = ("wav", "mp3", "ogg_opus")


def memory_mb(pid: int, field: str) -> float:
    """Return ``field`` (VmRSS, VmHWM) of process ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found")


def reset_peak(pid: int) -> None:
    """Reset ``VmHWM`` of process ``pid`` to its current RSS (Linux's ``clear_refs`` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def post(
    base: str, token: str, body: dict[str, Any] | None, path: str = "/synthesize"
) -> tuple[int, dict[str, Any]]:
    """POST ``body`` (GET when it is None) and return the status and JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - the gateway on loopback
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def largest_requests(formats: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Return two requests per format of ``formats``, each estimated just under the
    at-once limit, pauses and rates included."""
    text = "Speech between the pauses. "
    per_break = 10 + len(text) / CHARS_PER_SECOND
    breaks = int((SYNC_SECONDS - len(text) / CHARS_PER_SECOND) / per_break)
    ssml = "<speak>" + (text + "<break time='10s'/>") * breaks + text + "</speak>"
    slow = ("Hello there, this is a long and slow reading. " * 44)[:1990]
    assert len(slow) / CHARS_PER_SECOND / 0.5 < SYNC_SECONDS
    requests: list[tuple[str, dict[str, object]]] = []
    for fmt in formats:
        requests.append(
            (f"SSML with {breaks} ten-second breaks, {fmt}", {"ssml": ssml, "outputFormat": fmt})
        )
        requests.append(
            (
                f"{len(slow)} characters at half speed, {fmt}",
                {"text": slow, "speed": 0.5, "outputFormat": fmt},
            )
        )
    return requests


def largest_job(base: str, token: str, voice: dict[str, str], pid: int) -> None:
    """Run the largest legal job (the longest text at the slowest speed) and print its peak."""
    text = ("Hello there, this is a long and slow reading. " * 120)[:MAX_CHARS]
    assert len(text) / CHARS_PER_SECOND / SLOWEST < MAX_SECONDS
    started = time.perf_counter()
    status, body = post(base, token, {"text": text, "speed": SLOWEST, **voice})
    if status != 202:
        raise SystemExit(f"the largest job was not accepted: {status} {body}")
    job = f"/synthesis/jobs/{body['jobId']}"
    while body.get("status") not in ("completed", "failed"):
        time.sleep(1)
        status, body = post(base, token, None, job)
    seconds = time.perf_counter() - started
    if body["status"] != "completed":
        raise SystemExit(f"the largest job did not complete: {body}")
    print(
        f"  job: {len(text)} characters at {SLOWEST} speed, wav  {body['status']}  "
        f"audio {body.get('duration') or 0:6.1f} s  in {seconds:5.1f} s  "
        f"peak RSS so far {memory_mb(pid, 'VmHWM'):.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help="the at-once requests' output formats, comma-separated (default: all three)",
    )
    args = parser.parse_args()
    formats = args.formats.split(",")
    if unknown := set(formats) - set(FORMATS):
        parser.error(f"unknown formats: {', '.join(sorted(unknown))}")
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "VOICE_DATA_DIR": data,
            "VOICE_GATEWAY_PORT": str(port),
            "VOICE_PROVIDERS": "espeak",
            "VOICE_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "local.gateway"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=2).close()  # noqa: S310
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            token = subprocess.run(
                [sys.executable, "-m", "local.token", "--user", "bench"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            voice = {"voice": "espeak:en-US"}
            for _ in range(30):  # the catalog syncs in the background on a first start
                status, body = post(base, token, {"text": "Warm up.", **voice})
                if status == 200:
                    break
                time.sleep(0.5)
            else:
                raise SystemExit(f"the warm-up request never succeeded: {status} {body}")
            baseline = memory_mb(server.pid, "VmRSS")
            print(f"Gateway RSS after a warm-up request: {baseline:.0f} MB")
            for label, request in largest_requests(formats):
                started = time.perf_counter()
                status, body = post(base, token, {**request, **voice})
                seconds = time.perf_counter() - started
                if status != 200:  # a refused request's peak measures nothing
                    raise SystemExit(f"{label}: answered {status} {body}")
                duration = body.get("duration")
                print(
                    f"  {label:<48} {status}  audio {duration or 0:6.1f} s  "
                    f"in {seconds:5.1f} s  peak RSS so far {memory_mb(server.pid, 'VmHWM'):.0f} MB"
                )
            peak = memory_mb(server.pid, "VmHWM")
            verdict = "within" if peak <= PEAK_BOUND_MB else "OVER"
            print(
                f"Peak RSS {peak:.0f} MB ({peak - baseline:+.0f} MB over the warm gateway): "
                f"{verdict} the stated bound of {PEAK_BOUND_MB} MB"
            )
            # The job's own peak, not the at-once requests' peak before it.
            reset_peak(server.pid)
            before_job = memory_mb(server.pid, "VmRSS")
            largest_job(base, token, voice, server.pid)
            job_peak = memory_mb(server.pid, "VmHWM")
            print(
                f"Peak RSS during the largest job {job_peak:.0f} MB ({job_peak - baseline:+.0f} MB "
                f"over the warm gateway, {job_peak - before_job:+.0f} MB over the {before_job:.0f}"
                f" MB held when it started; no bound is stated for jobs)"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
