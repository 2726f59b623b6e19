"""Every benchmark still runs: each ``bench`` module with a ``main``, at its smallest sizes.

The benchmarks are run by hand (``python -m bench.<name>``), so nothing else notices when
a change breaks one (``bench.synthesis`` failed at start for a while after a refactor
moved what it timed). Each test here runs one benchmark as a subprocess, from the
repository root as the README says, with the smallest arguments it offers, and checks that
it exits 0 and printed a line that it always prints. The figures are not checked: they
depend on the machine, and at these sizes they mean little. The Firestore halves are left
out (``--skip-firestore``, ``--no-firestore``); the contract tests cover that adapter on
the emulator. A benchmark added to ``bench/`` fails ``test_every_benchmark_is_listed``
until it is listed here.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 240


@dataclass(frozen=True)
class SmokeRun:
    """A benchmark's smallest run: its module, arguments, and the start of a line it prints."""

    name: str
    arguments: tuple[str, ...]
    prints: str


SMOKE_RUNS = (
    SmokeRun("blobs", ("--objects", "1", "--rounds", "1"), "Around the inline limit"),
    SmokeRun("blobs_tasks", ("--quick",), "== task queue: in-process worker"),
    SmokeRun("cold_start", ("--rounds", "1", "--only", "voices"), "target <= 2.0 x bare:"),
    SmokeRun(
        "cold_start_costs",
        ("--rounds", "1", "--only", "voices"),
        "token check's imports: PyJWT / shared.jws =",
    ),
    SmokeRun("encode", ("--repeat", "1"), "fidelity mp3 (quality 7):"),
    SmokeRun("finish_commit", ("--repeat", "1", "--no-firestore"), "storage used counted:"),
    SmokeRun("memory", ("--formats", "wav"), "Peak RSS during the largest job"),
    SmokeRun(
        "precall",
        ("--rounds", "1", "--callers", "1", "--table-variants", "2"),
        "hit path p50 / bare read p50:",
    ),
    SmokeRun(
        "samples",
        ("--repeat", "1", "--queries", "1", "--vectors", "20", "--table-variants", "2"),
        "3. training to completion through the local gateway",
    ),
    SmokeRun(
        "sessions",
        ("--sizes", "1", "--turns", "1", "--skip-whisper", "--backends", "native"),
        "native: N=30 targets (STT excluded):",
    ),
    SmokeRun(
        "store", ("--docs", "10", "--queries", "3", "--skip-firestore"), "target: adapter/raw >="
    ),
    SmokeRun("streaming", ("--repeat", "1"), "ratio TTFB / non-streamed"),
    SmokeRun(
        "sync",
        ("--voices", "10", "--requests", "1", "--rounds", "1", "--skip-firestore"),
        "targets (SQLite sync < 2 s, listing p50 <= 10 ms):",
    ),
    SmokeRun("synthesis", ("--repeat", "1", "--quick"), "1d. the same cache miss with"),
    SmokeRun(
        "synthesis_piper", ("--repeat", "1", "--long-repeat", "1"), "3. first-sentence latency"
    ),
    SmokeRun("synthesize_ws", ("--runs", "1"), "whole text, one eSpeak call (baseline"),
    SmokeRun("tasks", ("--tasks", "10", "--samples", "2"), "enqueue->start"),
    SmokeRun("usage_outbox", ("--repeat", "1", "--no-firestore"), "counted:"),
    SmokeRun("voice_lookup", ("--repeat", "1", "--no-firestore"), "remembered (60 s) p50"),
    SmokeRun(
        "voice_models",
        ("--seconds", "0.2", "--clients", "1", "--rounds", "1"),
        "list (cache on) / bare:",
    ),
)


def defines_main(path: Path) -> bool:
    """Return whether the module at ``path`` defines a top-level ``main`` function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def shell_environment() -> dict[str, str]:
    """Return this process's environment without what a fixture may have exported.

    A developer runs a benchmark from a shell: no ``VOICE_`` settings of a test's own, no
    emulator a session fixture started.
    """
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("VOICE_") and key != "FIRESTORE_EMULATOR_HOST"
    }


def test_every_benchmark_is_listed() -> None:
    """Each module of ``bench/`` with a ``main`` has a smoke run (helpers have no main)."""
    benchmarks = {path.stem for path in (ROOT / "bench").glob("*.py") if defines_main(path)}
    assert benchmarks == {run.name for run in SMOKE_RUNS}


@pytest.mark.parametrize("run", SMOKE_RUNS, ids=lambda run: run.name)
def test_benchmark_runs(run: SmokeRun) -> None:
    """``python -m bench.<name>`` at its smallest sizes exits 0 and prints its line."""
    command = [sys.executable, "-m", f"bench.{run.name}", *run.arguments]
    finished = subprocess.run(
        command,
        cwd=ROOT,
        env=shell_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    status = finished.returncode
    output = f"stdout:\n{finished.stdout[-3000:]}\nstderr:\n{finished.stderr[-3000:]}"
    assert status == 0, f"{' '.join(command[1:])} exited {status}\n{output}"
    printed = [line.strip() for line in finished.stdout.splitlines()]
    assert any(line.startswith(run.prints) for line in printed), (
        f"no line starts with {run.prints!r}\n{output}"
    )
