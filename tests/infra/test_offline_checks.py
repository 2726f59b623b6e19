"""Each offline infra check fails on a broken file, and passes the same copy unbroken.

Every test copies ``infra/`` and ``cloudbuild.yaml`` to a temporary repository, breaks one
thing the way a careless edit would, and runs that copy's ``infra/check.sh`` with only the
check that must catch it (reusing the repository's ``.venv-infra``). A check that passed a
broken file would prove nothing about the real ones.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-infra"

Break = Callable[[Path], None]


@pytest.fixture(scope="module")
def tool_environment() -> Path:
    """The check tools, installed by the real check.sh if they are not there yet."""
    subprocess.run(
        ["bash", str(REPO / "infra" / "check.sh"), "fmt"], check=True, capture_output=True
    )
    return VENV


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A copy of what the checks read: infra/ and cloudbuild.yaml."""
    shutil.copytree(
        REPO / "infra",
        tmp_path / "infra",
        ignore=shutil.ignore_patterns(".build", ".terraform", "__pycache__", "*.zip", "tfplan"),
    )
    shutil.copy(REPO / "cloudbuild.yaml", tmp_path / "cloudbuild.yaml")
    return tmp_path


def run_checks(repository: Path, venv: Path, *checks: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repository / "infra" / "check.sh"), *checks],
        env={"PATH": "/usr/bin:/bin", "INFRA_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def replace(relative: str, old: str, new: str, *, count: int = 1) -> Break:
    def apply(root: Path) -> None:
        path = root / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} is no longer in {relative}: update the test"
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    return apply


def append(relative: str, text: str) -> Break:
    def apply(root: Path) -> None:
        with (root / relative).open("a", encoding="utf-8") as file:
            file.write(text)

    return apply


def edit_json(relative: str, change: Callable[[dict[str, Any]], None]) -> Break:
    def apply(root: Path) -> None:
        path = root / relative
        document = json.loads(path.read_text(encoding="utf-8"))
        change(document)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    return apply


def _drop_backend(document: dict[str, Any], name: str) -> None:
    del document["backends"][name]
    document["routes"] = [r for r in document["routes"] if r["backend"] != name]
    document["tests"] = [t for t in document["tests"] if t["backend"] != name]


def _drop_routes(document: dict[str, Any], name: str) -> None:
    document["routes"] = [r for r in document["routes"] if r["backend"] != name]


def _add_function(document: dict[str, Any]) -> None:
    document["functions"]["reports"] = {**document["functions"]["files"], "entry_point": "reports"}


def _set_ingress(document: dict[str, Any], ingress: str, reason: str | None = None) -> None:
    document["functions"]["users"]["ingress"] = ingress
    if reason:
        document["functions"]["users"]["ingress_reason"] = reason


def _move_job(document: dict[str, Any]) -> None:
    next(iter(document["jobs"].values()))["path"] = "/voices/jobs/sync/fire"


def _make_storage_trigger(document: dict[str, Any]) -> None:
    document["functions"]["files"]["trigger"] = "storage"


BROKEN: dict[str, tuple[str, Break, str]] = {
    "misformatted": (
        "fmt",
        replace("infra/functions.tf", "  name        = each.key\n", "  name = each.key\n"),
        "need `terraform fmt`",
    ),
    "unparsable": ("load", append("infra/outputs.tf", 'output "x" {\n  value = \n}\n'), "Error"),
    "undeclared reference": (
        "references",
        append("infra/outputs.tf", 'output "x" {\n  value = local.nope\n}\n'),
        "undeclared: local.nope",
    ),
    "tfvars typo": (
        "references",
        append("infra/dev.tfvars", 'domian = "api.example.com"\n'),
        "dev.tfvars: domian is not a declared variable",
    ),
    "warm instances for no function": (
        "references",
        replace("infra/prod.tfvars", '"voice-models" = 1', '"voice-model" = 1'),
        "prod.tfvars: min_instances names no function: voice-model",
    ),
    "latency alert for no service": (
        "references",
        replace(
            "infra/variables.tf",
            "    voices                   = 1000",
            "    voicez                   = 1000",
        ),
        "variables.tf: alert_p95_latency_ms names no service: voicez",
    ),
    "Google TTS enabled without its API": (
        "references",
        replace(
            "infra/apis.tf", '    local.google_tts ? ["texttospeech.googleapis.com"] : [],\n', ""
        ),
        "prod.tfvars: tts_providers names gcp, but texttospeech.googleapis.com is not",
    ),
    "queues that dispatch more than the tasks function serves": (
        "references",
        replace(
            "infra/tasks.tf", "max_concurrent_dispatches = 55", "max_concurrent_dispatches = 100"
        ),
        "tasks.tf: the queues dispatch up to 125 tasks at once, the tasks function serves 80",
    ),
    "alert on a new log-based metric without the wait": (
        "references",
        replace(
            "infra/monitoring.tf",
            "depends_on = [google_project_service.enabled, time_sleep.dead_letters_metric]",
            "depends_on = [google_project_service.enabled]",
        ),
        "google_monitoring_alert_policy.dead_letters names google_logging_metric.dead_letters "
        "without depends_on a time_sleep",
    ),
    "public data bucket": (
        "checkov",
        replace("infra/storage.tf", '"enforced"', '"inherited"', count=2),
        "CKV_GCP_114",
    ),
    "step without an image": (
        "cloudbuild",
        replace(
            "cloudbuild.yaml",
            "  - id: terraform-validate\n    name:",
            "  - id: terraform-validate\n    image:",
        ),
        "'image' was unexpected",
    ),
    "function without a backend": (
        "front-door",
        edit_json("infra/front_door.json", lambda d: _drop_backend(d, "files")),
        "function files: no front-door backend",
    ),
    "new function not generated": (
        "front-door",
        edit_json("infra/functions.json", _add_function),
        "function reports: no front-door backend",
    ),
    "session service without a route": (
        "front-door",
        edit_json("infra/front_door.json", lambda d: _drop_routes(d, "voice-sessions")),
        "backend voice-sessions: no route in the URL map",
    ),
    "storage trigger routed": (
        "front-door",
        edit_json("infra/functions.json", _make_storage_trigger),
        "function files: a storage trigger has no URL to route",
    ),
    "function open to the internet": (
        "front-door",
        edit_json("infra/functions.json", lambda d: _set_ingress(d, "ALLOW_ALL")),
        "function users: ingress ALLOW_ALL without an ingress_reason",
    ),
    "functions.tf ignores the declared ingress": (
        "front-door",
        replace(
            "infra/functions.tf",
            "ingress_settings = each.value.ingress",
            'ingress_settings = "ALLOW_ALL"',
        ),
        "ingress_settings ALLOW_ALL reaches past the front door",
    ),
    "session service open to the internet": (
        "front-door",
        replace(
            "infra/run.tf", '"INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"', '"INGRESS_TRAFFIC_ALL"'
        ),
        "sessions: ingress INGRESS_TRAFFIC_ALL reaches past the front door",
    ),
    "a backend left without a NEG": (
        "front-door",
        replace(
            "infra/front_door.tf",
            "  for_each = local.front_door_backends\n",
            '  for_each = { for k, v in local.front_door_backends : k => v if k != "files" }\n',
        ),
        "for_each must be ${local.front_door_backends}",
    ),
    "backend service without Cloud Armor": (
        "front-door",
        replace(
            "infra/front_door.tf",
            "  security_policy       = google_compute_security_policy.front_door.id\n",
            "",
        ),
        "security_policy must be",
    ),
    "routes not from the generated file": (
        "front-door",
        replace(
            "infra/front_door.tf",
            "for_each = local.front_door_routes",
            "for_each = slice(local.front_door_routes, 0, 3)",
        ),
        "route_rules must come from local.front_door_routes",
    ),
    "plain HTTP served": (
        "front-door",
        replace(
            "infra/front_door.tf", "https_redirect         = true", "https_redirect         = false"
        ),
        "plain HTTP must redirect to HTTPS",
    ),
    "a second forwarding rule": (
        "front-door",
        append(
            "infra/front_door.tf",
            'resource "google_compute_global_forwarding_rule" "direct" {\n'
            '  name   = "direct"\n'
            "  target = google_compute_target_http_proxy.front_door_redirect.id\n}\n",
        ),
        "a second way in from the internet",
    ),
    "scheduled job the tasks function does not serve": (
        "front-door",
        edit_json("infra/scheduled_jobs.json", _move_job),
        "is served by voices, not tasks",
    ),
}


def test_the_unbroken_copy_passes_every_check(tool_environment: Path, repository: Path) -> None:
    # checkov (the slow one) passes these same files in `make test`'s own check.sh run.
    result = run_checks(
        repository, tool_environment, "fmt", "load", "references", "front-door", "cloudbuild"
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", list(BROKEN), ids=str)
def test_a_broken_file_fails_its_check(tool_environment: Path, repository: Path, case: str) -> None:
    check, breaking, message = BROKEN[case]
    breaking(repository)

    result = run_checks(repository, tool_environment, check)

    assert result.returncode != 0, f"{check} passed a broken copy:\n{result.stdout}"
    assert message in result.stdout + result.stderr, result.stdout + result.stderr


EXEMPT: dict[str, Break] = {
    "function with an ingress_reason": edit_json(
        "infra/functions.json",
        lambda d: _set_ingress(d, "ALLOW_ALL", "a partner calls it by its own URL"),
    ),
    "service with an internet-facing comment": replace(
        "infra/run.tf",
        '  ingress             = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"\n',
        "  # internet-facing: a partner calls it by its own URL\n"
        '  ingress             = "INGRESS_TRAFFIC_ALL"\n',
    ),
}


@pytest.mark.parametrize("case", list(EXEMPT), ids=str)
def test_a_written_reason_lets_a_function_bypass_the_front_door(
    tool_environment: Path, repository: Path, case: str
) -> None:
    EXEMPT[case](repository)

    result = run_checks(repository, tool_environment, "front-door")

    assert result.returncode == 0, result.stdout + result.stderr


def test_check_sh_refuses_an_unknown_check(tool_environment: Path, repository: Path) -> None:
    result = run_checks(repository, tool_environment, "nope")

    assert result.returncode == 2
    assert re.search(r"unknown check: nope", result.stderr)
