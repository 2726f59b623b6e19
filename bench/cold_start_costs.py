"""Where a cold start goes beyond imports' bytes: class creation, and the token check.

``bench.cold_start`` says how long a function's first response takes; this says what two
of its known costs are, each against a baseline measured in the same run:

1. **Class creation.** For one of that benchmark's probes (by default ``synthesis POST``,
   the first speech), fresh processes started as it starts them, each timing every class
   ``dataclasses`` processes and every pydantic model class created (pydantic's model
   metaclass, its validator build included where the model does not defer it) until the
   response is printed, each round on the next core (``bench.cores``). Printed: the
   median time in each against the median time to the first response (its share), ours
   (``shared``, ``functions``) apart from the libraries', and the costliest classes. On
   Python 3.11 ``dataclasses`` compiles each generated method on its own, so a class costs
   a fraction of a millisecond, and a cold start creates a hundred or more.
2. **The token check's imports.** In a fresh process that has built the function's app
   (``main.py`` and the function's module loaded), the time to import what
   ``shared/jws.py`` needs for an RS256 token (cryptography's RSA, padding, hashes and
   exceptions; an HS256 dev token needs only ``hmac``, loaded already) against the time to
   import PyJWT, which checked tokens before it (and imports cryptography's X.509,
   elliptic-curve, SSH and cipher modules with it). The two sides run in separate
   processes, one pair per round, each round on the next core (``bench.cores``).
3. **A record class.** In this process, creating a frozen dataclass of five fields against
   creating a ``typing.NamedTuple`` of the same fields (the project's small immutable
   records on a first request's path are NamedTuples for this: README, "Layout").
4. **pydantic's import.** In a fresh process, importing pydantic (its ``BaseModel``, which
   loads the model machinery) after ``functions_framework``, against importing
   ``functions_framework`` itself, the bare function's floor; one pair per round.
5. **eSpeak's voice list.** In this process, once eSpeak NG is loaded: listing its voices
   (``espeak_ListVoices``, which reads every voice file) against finding each voice's file
   by name in the data folder, as a first speech does now.

Run: ``.venv/bin/python -m bench.cold_start_costs [--rounds N] [--only NAME]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from bench import cold_start, cores

ROOT = cold_start.ROOT

# Put before bench.cold_start's child: times each class dataclasses processes and each
# pydantic model class made, by the module that defines it.
CLASS_TIMER = """
import dataclasses, time as _clock
_classes = []  # (kind, module.name, seconds)
_process_class = dataclasses._process_class
def _timed_dataclass(cls, *args, **kwargs):
    started = _clock.perf_counter()
    made = _process_class(cls, *args, **kwargs)
    name = cls.__module__ + "." + cls.__qualname__
    _classes.append(("dataclass", name, _clock.perf_counter() - started))
    return made
dataclasses._process_class = _timed_dataclass
from pydantic._internal import _model_construction
_new = _model_construction.ModelMetaclass.__new__
def _timed_model(mcs, name, bases, namespace, *args, **kwargs):
    started = _clock.perf_counter()
    made = _new(mcs, name, bases, namespace, *args, **kwargs)
    module = namespace.get("__module__", "?")
    _classes.append(("model", module + "." + name, _clock.perf_counter() - started))
    return made
_model_construction.ModelMetaclass.__new__ = _timed_model
"""
ANSWER = 'answer = {"status"'

# Prints the seconds functions_framework's import took, then pydantic's after it.
PYDANTIC_AFTER_FRAMEWORK = """
import time
started = time.perf_counter()
import functions_framework
framework = time.perf_counter()
from pydantic import BaseModel
print("IMPORTED", framework - started, time.perf_counter() - framework)
"""

# argv[1]: the function's entry point; argv[2]: the modules to import, comma-separated.
# Prints the seconds their import took once the function's app is built.
IMPORT_AFTER_APP = """
import importlib, sys, time
import functions_framework
functions_framework.create_app(sys.argv[1], "main.py")
started = time.perf_counter()
for name in sys.argv[2].split(","):
    importlib.import_module(name)
print("IMPORTED", time.perf_counter() - started)
"""
JWS_RSA = (
    "cryptography.exceptions,cryptography.hazmat.primitives.hashes,"
    "cryptography.hazmat.primitives.asymmetric.padding,"
    "cryptography.hazmat.primitives.asymmetric.rsa"
)
PYJWT = "jwt"
OURS = ("shared.", "functions.", "main.")


def class_child() -> str:
    """Return bench.cold_start's child with the class timer before it and its report in it."""
    if ANSWER not in cold_start.CHILD:
        raise SystemExit("bench.cold_start's child changed: update CLASS_TIMER's hook")
    return CLASS_TIMER + cold_start.CHILD.replace(ANSWER, 'answer = {"classes": _classes, "status"')


def run_child(arguments: Sequence[str], env: dict[str, str], marker: str) -> tuple[float, str]:
    """Run ``python -c *arguments`` from the repository root; return its wall seconds and
    what follows ``marker`` on the line it printed starting with it."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    seconds = time.perf_counter() - started
    line = next((x for x in done.stdout.splitlines() if x.startswith(marker)), None)
    if line is None:
        printed = done.stderr[-2000:]
        raise RuntimeError(f"no {marker.strip()} line (exit {done.returncode})\n{printed}")
    return seconds, line.removeprefix(marker)


def time_classes(probe: cold_start.Probe, rounds: int, env: dict[str, str]) -> list[dict[str, Any]]:
    """Return each round's time to the first response and the classes it created."""
    mint = cold_start.TokenMint()
    child = class_child()
    found = []
    for round_ in cores.pinned_rounds(rounds + 1):  # the first writes the bytecode caches
        request = cold_start.request_of(probe, *mint.next())
        seconds, printed = run_child([child, json.dumps(request)], env, "COLD-START ")
        answer = json.loads(printed)
        if not 200 <= answer["status"] < 300:
            raise RuntimeError(f"{probe.name}: answered {answer['status']}")
        if round_:
            found.append({"seconds": seconds, "classes": answer["classes"]})
    return found


def report_classes(name: str, runs: list[dict[str, Any]]) -> None:
    """Print the median class-creation times against the median first response."""
    total = statistics.median(run["seconds"] for run in runs) * 1000
    sums: dict[tuple[str, bool], list[float]] = defaultdict(list)
    counts: dict[tuple[str, bool], int] = {}
    per_class: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        groups: dict[tuple[str, bool], float] = defaultdict(float)
        tally: dict[tuple[str, bool], int] = defaultdict(int)
        for kind, qualified, seconds in run["classes"]:
            key = (kind, qualified.startswith(OURS))
            groups[key] += seconds * 1000
            tally[key] += 1
            per_class[qualified].append(seconds * 1000)
        for key in (("dataclass", True), ("dataclass", False), ("model", True), ("model", False)):
            sums[key].append(groups[key])
            counts[key] = tally[key]
    created = sum(statistics.median(values) for values in sums.values())
    print(f"1. class creation in the first response of {name}, median of {len(runs)} processes")
    print(f"   time to the first response p50 {total:.0f} ms (interpreter start-up included)")
    print(f"   class creation {created:.1f} ms = {created / total:.0%} of it")
    for (kind, ours), values in sums.items():
        whose = "ours" if ours else "libraries'"
        label = "dataclasses" if kind == "dataclass" else "pydantic models"
        count, median = counts[(kind, ours)], statistics.median(values)
        print(f"     {label:<16} {whose:<11} {count:>4}  {median:6.1f} ms")
    costliest = sorted(per_class.items(), key=lambda item: -statistics.median(item[1]))[:8]
    print("   costliest classes (p50 ms):")
    for qualified, values in costliest:
        print(f"     {statistics.median(values):6.2f}  {qualified}")


def time_token_imports(target: str, rounds: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Return the seconds each side's import took after ``target``'s app was built."""
    found: dict[str, list[float]] = {JWS_RSA: [], PYJWT: []}
    for round_ in cores.pinned_rounds(rounds + 1):
        for modules in (JWS_RSA, PYJWT):
            _, printed = run_child([IMPORT_AFTER_APP, target, modules], env, "IMPORTED ")
            if round_:  # the first round writes the bytecode caches
                found[modules].append(float(printed))
    return found


def time_pydantic_import(rounds: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Return functions_framework's import seconds and pydantic's after it, per round."""
    framework: list[float] = []
    pydantic: list[float] = []
    for round_ in cores.pinned_rounds(rounds + 1):
        _, printed = run_child([PYDANTIC_AFTER_FRAMEWORK], env, "IMPORTED ")
        if round_:  # the first round writes the bytecode caches
            first, second = (float(x) for x in printed.split())
            framework.append(first)
            pydantic.append(second)
    return framework, pydantic


def median_ms(action: Callable[[], object], repeat: int) -> float:
    """Return the median milliseconds of ``repeat`` calls of ``action``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def make_dataclass() -> object:
    @dataclasses.dataclass(frozen=True)
    class Record:
        name: str
        start: int
        end: int
        score: float = 0.0
        label: str | None = None

    return Record


def make_named_tuple() -> object:
    class Record(NamedTuple):
        name: str
        start: int
        end: int
        score: float = 0.0
        label: str | None = None

    return Record


def time_voice_lookup(repeat: int) -> tuple[float, float]:
    """Return eSpeak's voice listing and the file-name lookup, median ms each."""
    from shared.providers import espeak

    with espeak._ENGINE_LOCK:
        engine = espeak._engine_locked()
        listing = median_ms(engine.languages, repeat)
    lookup = median_ms(lambda: espeak._language_files(engine.data_path), repeat)
    return listing, lookup


def main(argv: Sequence[str] | None = None) -> int:
    """Run the five parts; return 0 (the figures are printed, there is no target here)."""
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start_costs", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument(
        "--only",
        default=cold_start.SPEECH.name,
        help="the bench.cold_start probe to take apart (default: the first speech)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cold-costs-") as tmp:
        env = cold_start.child_environment(Path(tmp) / "data", Path(tmp) / "bytecode")
        os.environ.update({k: v for k, v in env.items() if k.startswith("VOICE_")})
        cold_start.seed_catalog()
        only = [] if args.only == cold_start.SPEECH.name else [args.only]
        probe = next(p for p in cold_start.probes(only, Path(tmp)) if p.name == args.only)
        runs = time_classes(probe, args.rounds, env)
        report_classes(probe.name, runs)
        imports = time_token_imports(probe.target, args.rounds, env)
    ours = statistics.median(imports[JWS_RSA]) * 1000
    theirs = statistics.median(imports[PYJWT]) * 1000
    print(f"2. the token check's imports after the {probe.target} function's app was built")
    print(f"   shared.jws's RS256 modules p50 {ours:.1f} ms; PyJWT p50 {theirs:.1f} ms")
    print(f"token check's imports: PyJWT / shared.jws = {theirs / ours:.1f} x")
    repeat = max(args.rounds * 30, 30)
    frozen, named = median_ms(make_dataclass, repeat), median_ms(make_named_tuple, repeat)
    print(f"3. a record class of five fields, median of {repeat} in this process")
    print(f"   frozen dataclass p50 {frozen:.3f} ms; NamedTuple p50 {named:.3f} ms")
    print(f"record class: frozen dataclass / NamedTuple = {frozen / named:.1f} x")
    framework, pydantic = time_pydantic_import(args.rounds, env)
    floor, model = statistics.median(framework) * 1000, statistics.median(pydantic) * 1000
    print("4. pydantic's import after functions_framework, fresh processes")
    print(f"   functions_framework p50 {floor:.1f} ms; pydantic after it p50 {model:.1f} ms")
    print(f"pydantic import / functions_framework import = {model / floor:.2f} x")
    listing, lookup = time_voice_lookup(max(args.rounds * 3, 5))
    print("5. eSpeak's voices, once eSpeak NG is loaded")
    print(f"   espeak_ListVoices p50 {listing:.2f} ms; voice files by name p50 {lookup:.2f} ms")
    print(f"voice lookup: eSpeak's list / by file name = {listing / lookup:.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
