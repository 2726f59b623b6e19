"""Cold starts: each deployed function's first request in a fresh process, against a bare one.

A Cloud Functions instance that scales up from zero starts a new Python process, imports
``main.py``, looks its entry point up by name and serves the request that woke it. This
benchmark does the same for every function in ``functions.FUNCTIONS``: a fresh interpreter
(``python -c``, working directory the repository root) imports ``functions_framework``,
builds the app with ``functions_framework.create_app(entry_point, "main.py")`` and serves
one authenticated request through its ``test_client()``; the time is from starting the
process to the response being printed (interpreter start-up included, exit not). The
baseline, measured the same way in the same run, is a bare ``hello`` function
(``functions_framework`` and Flask alone: the floor every function pays).

Bytecode is cached as in a deployed function: the Cloud Functions Python build compiles the
source (``python3 -m compileall -f -q .``) and installs the dependencies with their
bytecode, so an instance never compiles a module it imports. Here the warm-up round writes
each module's bytecode into the run's own cache folder (``PYTHONPYCACHEPREFIX``, nothing in
the repository), even where the caller's environment sets ``PYTHONDONTWRITEBYTECODE``
(otherwise every cold process would compile the project's modules from source again).

Each function's request is its first ``GET`` route without path parameters (or whose only
one is the caller's own user id), ``POST /users`` for ``users`` (a new user registering),
each run with its own freshly minted dev token (admin claim, so admin routes answer too),
on the embedded adapters in a temporary data folder whose catalog holds eSpeak's voices.
A storage-triggered function gets one object-finalized CloudEvent in binary content mode,
as Eventarc delivers it (Google authenticates that caller, not the app), for an object
that no sample or model names, which it acknowledges. A response that is not 2xx fails
the run. One more row, ``synthesis POST``, is the
synthesis function's first ``POST /synthesize`` (a short sentence to mp3 with an eSpeak
voice): on top of the function's own cold start it loads numpy, eSpeak NG and the mp3
encoder, which only a request that speaks needs. After a discarded warm-up round, rounds
run bare and every function in turn; the figures are medians, and each ratio is the
median of the per-round ratios against that round's bare run (so a machine slowing down
mid-run affects both sides). Each round runs on one core, the next round on the next core
(``bench.cores``: this machine's cores differ in speed, so a bare run on one and a function
on the other would compare the cores); one core is also what an instance of up to 2 GiB has.

Each row also shows the median time the process's garbage collector spent in its passes
(``gc ms``, timed with ``gc.callbacks``), to compare with the bare function's.

Target: every function <= 2.0 x the bare function.

Run: ``.venv/bin/python -m bench.cold_start [--rounds N] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import cores

if TYPE_CHECKING:
    from functions import FunctionSpec

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "main.py"
TARGET_RATIO = 2.0
BARE = "bare"

# What one cold process runs: argv[1] is the request as JSON (target, source, method, path,
# headers, body). It prints (after any log lines) the response's status, how many modules
# it had loaded and the seconds its garbage collector's passes took (gc.callbacks).
CHILD = """
import gc, json, os, sys, time
collecting = [0.0, 0.0]  # seconds spent in the garbage collector, the current pass's start
def time_collector(phase, info):
    if phase == "start":
        collecting[1] = time.perf_counter()
    else:
        collecting[0] += time.perf_counter() - collecting[1]
gc.callbacks.append(time_collector)
request = json.loads(sys.argv[1])
import functions_framework
client = functions_framework.create_app(request["target"], request["source"]).test_client()
response = client.open(
    request["path"],
    method=request["method"],
    headers=request["headers"],
    data=request["body"],
)
answer = {"status": response.status_code, "modules": len(sys.modules), "gc": collecting[0]}
sys.stdout.write("COLD-START " + json.dumps(answer) + "\\n")
sys.stdout.flush()
os._exit(0)
"""

BARE_FUNCTION = '''"""A bare HTTP function: the floor every function's cold start pays."""

import functions_framework


@functions_framework.http
def hello(request):
    return {"hello": "world"}
'''


@dataclass(frozen=True)
class Probe:
    """One function's cold request: the entry point to load and the request to serve.

    ``{user}`` in the path or body stands for the run's own user; an HTTP probe carries
    that user's bearer token, a storage event (``event`` set: the bucket setting) comes in
    binary content mode as Eventarc delivers it, whose caller Google authenticates.
    """

    name: str
    target: str
    source: Path
    method: str
    path: str
    body: dict[str, Any] | None = None
    event_bucket_setting: str | None = None


@dataclass(frozen=True)
class Sample:
    """One cold process: its time to the first response, what it had loaded, and the time
    its garbage collector's passes took."""

    seconds: float
    status: int
    modules: int
    gc_seconds: float


def _http_probe(spec: FunctionSpec) -> Probe:
    """Return ``spec``'s probe: its first GET route without path parameters but the user's."""
    if spec.name == "users":  # a new user registering: its only route without parameters
        body = {"email": "{user}@example.com", "firstName": "Cold"}
        return Probe(spec.name, spec.entry_point, SOURCE, "POST", "/users", body)
    for route in importlib.import_module(spec.module).api.routes:
        rule = route.rule.replace("<user_id>", "{user}")
        if "GET" in route.methods and "<" not in rule:
            return Probe(spec.name, spec.entry_point, SOURCE, "GET", rule)
    raise SystemExit(f"{spec.name}: no GET route without path parameters to probe; add one")


def _event_probe(spec: FunctionSpec) -> Probe:
    """Return ``spec``'s probe: a finalized object no sample or model names (ignored)."""
    name = "models/{user}/cold/metadata.json" if "model" in str(spec.bucket_setting) else ""
    data = {
        "name": name or "samples/{user}/cold.wav",
        "size": "44",
        "contentType": "application/json" if name else "audio/wav",
        "generation": "1",
    }
    return Probe(spec.name, spec.entry_point, SOURCE, "POST", "/", data, spec.bucket_setting or "")


SPEECH = Probe(
    "synthesis POST",
    "synthesis",
    SOURCE,
    "POST",
    "/synthesize",
    {"text": "Hello from a cold start.", "voice": "espeak:en-us", "outputFormat": "mp3"},
)
"""The synthesis function's first speech: its cold start plus eSpeak, numpy and mp3."""


def probes(only: Sequence[str], bare_dir: Path) -> list[Probe]:
    """Return the bare function's probe, one per deployed function and the first speech.

    ``only`` keeps the named functions (and ``synthesis POST`` by that name).
    """
    from functions import FUNCTIONS

    found = [Probe(BARE, "hello", bare_dir / "main.py", "GET", "/")]
    for spec in FUNCTIONS:
        if only and spec.name not in only:
            continue
        found.append(_event_probe(spec) if spec.trigger == "storage" else _http_probe(spec))
    if not only or SPEECH.name in only:
        found.append(SPEECH)
    return found


def seed_catalog() -> None:
    """Sync eSpeak's voices into the data folder's catalog, as the gateway does at start."""
    from shared.bootstrap import get_container
    from shared.catalog.sync import sync_provider_voices
    from shared.model import utcnow

    container = get_container()
    espeak = container.providers.get("espeak")
    sync_provider_voices(store=container.store, provider=espeak, now=utcnow())
    container.close()


class TokenMint:
    """Mints a new admin dev token per run, each for a user of its own."""

    def __init__(self) -> None:
        from shared.auth import build_dev_verifier
        from shared.config import get_settings

        self._verifier = build_dev_verifier(get_settings())
        self._count = 0

    def next(self) -> tuple[str, str]:
        """Return a new (user id, token)."""
        self._count += 1
        user = f"cold-{os.getpid()}-{self._count}"
        return user, self._verifier.mint(user, admin=True, ttl_seconds=3600)


def request_of(probe: Probe, user: str, token: str) -> dict[str, Any]:
    """Return what the cold process sends for ``probe``, as the user ``user``."""
    path = probe.path.replace("{user}", user)
    body = json.dumps(probe.body).replace("{user}", user) if probe.body is not None else ""
    headers = {"Content-Type": "application/json"}
    if probe.event_bucket_setting is None:
        headers["Authorization"] = f"Bearer {token}"
    else:
        from shared.config import get_settings

        bucket = getattr(get_settings(), probe.event_bucket_setting)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        data = json.loads(body)
        data.update(bucket=bucket, timeCreated=now, updated=now)
        body = json.dumps(data)
        headers.update(
            {
                "ce-id": f"cold-{user}",
                "ce-specversion": "1.0",
                "ce-type": "google.cloud.storage.object.v1.finalized",
                "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
                "ce-subject": f"objects/{data['name']}",
                "ce-time": now,
            }
        )
    return {
        "target": probe.target,
        "source": str(probe.source),
        "method": probe.method,
        "path": path,
        "headers": headers,
        "body": body,
    }


def cold_run(probe: Probe, mint: TokenMint, env: dict[str, str]) -> Sample:
    """Start one fresh process for ``probe``; return its time to the first response."""
    request = request_of(probe, *mint.next())
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(request)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    lines = []
    while (line := process.stdout.readline()) and not line.startswith(b"COLD-START "):
        lines.append(line.decode(errors="replace"))
    seconds = time.perf_counter() - started
    _, err = process.communicate(timeout=60)
    if not line:
        printed = "".join(lines)[-2000:] + err.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{probe.name}: the process printed no answer\n{printed}")
    answer = json.loads(line.removeprefix(b"COLD-START "))
    if not 200 <= answer["status"] < 300:
        raise RuntimeError(
            f"{probe.name}: {probe.method} {request['path']} answered {answer['status']}\n"
            f"{err.decode()[-2000:]}"
        )
    return Sample(seconds, answer["status"], answer["modules"], answer["gc"])


def child_environment(data_dir: Path, bytecode_dir: Path) -> dict[str, str]:
    """Return the cold processes' environment: this one's, with a fresh local deployment.

    Bytecode goes to ``bytecode_dir``, written by the first process that imports a module
    and read by the later ones, as a deployed function's build leaves it (module docstring).
    """
    skipped = ("VOICE_", "K_SERVICE", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skipped)}
    env.update(
        PYTHONPYCACHEPREFIX=str(bytecode_dir),
        VOICE_DATA_DIR=str(data_dir),
        VOICE_ENVIRONMENT="local",
        VOICE_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def measure(rounds: int, only: Sequence[str]) -> dict[str, list[Sample]]:
    """Return each probe's samples over ``rounds`` rounds, after one warm-up round."""
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        bare_dir = Path(tmp) / "bare"
        bare_dir.mkdir()
        (bare_dir / "main.py").write_text(BARE_FUNCTION, encoding="utf-8")
        env = child_environment(Path(tmp) / "data", Path(tmp) / "bytecode")
        os.environ.update({k: v for k, v in env.items() if k.startswith("VOICE_")})
        mint = TokenMint()
        seed_catalog()
        found = probes(only, bare_dir)
        for probe in found:  # warm-up: bytecode caches, the page cache, the store's files
            cold_run(probe, mint, env)
        samples: dict[str, list[Sample]] = {probe.name: [] for probe in found}
        # A round's processes on one core (they inherit this process's): bare and every
        # function alike, on the next core each round (bench.cores).
        for _ in cores.pinned_rounds(rounds):
            for probe in found:
                samples[probe.name].append(cold_run(probe, mint, env))
        return samples


@dataclass(frozen=True)
class Row:
    """One line of the table: a probe's figures over the rounds."""

    name: str
    median_ms: float
    min_ms: float
    max_ms: float
    ratio: float
    modules: int
    gc_ms: float

    @property
    def meets(self) -> bool:
        """Return whether the median ratio is within the target."""
        return self.ratio <= TARGET_RATIO


def rows_of(samples: dict[str, list[Sample]]) -> list[Row]:
    """Return each probe's medians, and its ratio: the median of per-round ratios to bare."""
    bare = [sample.seconds for sample in samples[BARE]]
    rows = []
    for name, found in samples.items():
        seconds = [sample.seconds for sample in found]
        ratios = [mine / base for mine, base in zip(seconds, bare, strict=True)]
        rows.append(
            Row(
                name=name,
                median_ms=statistics.median(seconds) * 1000,
                min_ms=min(seconds) * 1000,
                max_ms=max(seconds) * 1000,
                ratio=statistics.median(ratios),
                modules=found[-1].modules,
                gc_ms=statistics.median(sample.gc_seconds for sample in found) * 1000,
            )
        )
    return rows


def report(rows: list[Row], rounds: int) -> None:
    """Print the table and the verdict."""
    print(f"Cold start: fresh process to first response, median of {rounds} rounds")
    print(
        f"{'function':<24}{'median ms':>10}{'min-max ms':>14}{'ratio':>8}{'modules':>9}{'gc ms':>7}"
    )
    for row in rows:
        flag = "" if row.meets else f"  over the {TARGET_RATIO:.1f} x target"
        spread = f"{row.min_ms:.0f}-{row.max_ms:.0f}"
        print(
            f"{row.name:<24}{row.median_ms:>10.0f}{spread:>14}"
            f"{row.ratio:>8.2f}{row.modules:>9}{row.gc_ms:>7.1f}{flag}"
        )
    measured = [row for row in rows if row.name != BARE]
    missed = [row.name for row in measured if not row.meets]
    worst = max(measured, key=lambda row: row.ratio)
    verdict = f"NOT met by {len(missed)} of {len(measured)}" if missed else "met by all"
    print(
        f"target <= {TARGET_RATIO:.1f} x bare: {verdict} "
        f"(slowest: {worst.name} {worst.ratio:.2f} x)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0 (the verdict is printed, not an exit status)."""
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--only", nargs="*", default=[], help="function names to measure")
    args = parser.parse_args(argv)
    report(rows_of(measure(args.rounds, args.only)), args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
