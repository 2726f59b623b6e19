"""Property-based API testing: schemathesis against the gateway's own OpenAPI document.

A real gateway process (as ``make run`` starts it) is fuzzed from ``GET /openapi.json``
twice, once with a user's token and once with an admin's, with every schemathesis check
but one: no response may be a server error, every status must be one the route
documents, every body, content type and header must match the schema, schema-violating
requests must be refused, authentication must be enforced and no user may reach another's
objects. The one left out, ``positive_data_acceptance``, expects every schema-valid
request to succeed; ours rightly refuse some that JSON Schema cannot describe (an opaque
cursor we did not issue, a language tag, "text or ssml, not both"), each with a 4xx.

The run is bounded (``VOICE_FUZZ_EXAMPLES`` cases per operation and phase, a fixed seed
so that CI is repeatable; ``VOICE_FUZZ_SEED`` explores others). A failure prints
schemathesis' report, with a ``curl`` line reproducing each case.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_gateway import gateway, mint

__all__ = ["gateway"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("VOICE_FUZZ_EXAMPLES", "12"))
SEED = os.environ.get("VOICE_FUZZ_SEED", "20261204")


@pytest.fixture
def gateway_env():
    # Requests naming only a language speak with eSpeak here, so that fuzzed texts of
    # any length render in bounded time (the neural voice is tested on its own).
    return {"VOICE_DEFAULT_VOICE_PROVIDERS": "espeak", "VOICE_LOG_LEVEL": "WARNING"}


def fuzz(base: str, token: str, tmp_path: Path, label: str) -> subprocess.CompletedProcess[str]:
    report = tmp_path / f"schemathesis-{label}.txt"
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{base}/openapi.json",
        "--url",
        base,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--continue-on-failure",
        "--no-color",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    report.write_text(result.stdout + result.stderr)
    return result


def problems(report: str) -> str:
    """Return the report's errors and failures first (a CI log keeps only so much)."""
    sections = re.split(r"\n(?==+ [A-Z ]+ =+\n)", report)
    wanted = [part for part in sections if re.match(r"=+ (ERRORS|FAILURES) =+", part)]
    return "\n".join(part[:12000] for part in wanted) + "\n" + report[-6000:]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("role", ["user", "admin"])
def test_the_gateway_answers_every_fuzzed_request_as_its_schema_says(gateway, role):
    base, _process, env, tmp_path = gateway
    token = mint(env, f"fuzz-{role}", admin=role == "admin")
    result = fuzz(base, token, tmp_path, role)
    assert result.returncode == 0, problems(result.stdout) + result.stderr[-4000:]
    # A run that tested nothing would pass too: every operation of the document is tested.
    tested = re.search(r"Tested: (\d+)", result.stdout)
    operations = re.search(r"Selected: (\d+)/(\d+)", result.stdout)
    assert tested, result.stdout[-4000:]
    assert operations, result.stdout[-4000:]
    assert int(tested.group(1)) == int(operations.group(2)) >= 70, result.stdout[-4000:]
