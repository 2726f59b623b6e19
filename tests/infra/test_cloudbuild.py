"""cloudbuild.yaml deploys in the right order, and a plan-only build changes nothing.

The schema check (infra/check.sh) proves the file is a valid build; these prove what it
does: tests before anything is created, every step that changes the project gated on
``_APPLY``, the smoke test after the apply, and names that exist elsewhere in the repo.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in requirements-dev

REPO = Path(__file__).resolve().parents[2]

# What only a deploying build may do: create, push, upload, apply, start jobs.
MUTATIONS = re.compile(
    r"terraform -chdir=infra apply|docker push|gcloud storage cp|gcloud scheduler jobs run"
)


def _build() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
    return loaded


def _steps() -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in _build()["steps"]}


def _script(step: dict[str, Any]) -> str:
    return " ".join(str(arg) for arg in step.get("args", []))


def _runs_after(steps: dict[str, dict[str, Any]], later: str, earlier: str) -> bool:
    """Return whether ``later`` cannot start before ``earlier`` finished."""
    ids = list(steps)
    seen: set[str] = set()
    pending = [later]
    while pending:
        step = pending.pop()
        wait_for = steps[step].get("waitFor")
        # No waitFor: the step waits for every step before it; ["-"]: for none.
        before = ids[: ids.index(step)] if wait_for is None else [w for w in wait_for if w != "-"]
        for dependency in before:
            if dependency == earlier:
                return True
            if dependency not in seen:
                seen.add(dependency)
                pending.append(dependency)
    return False


@pytest.mark.parametrize("step_id", list(_steps()))
def test_every_step_that_changes_the_project_is_gated_on_apply(step_id: str) -> None:
    step = _steps()[step_id]
    script = _script(step)

    if MUTATIONS.search(script):
        assert '"$$APPLY"' in script, f"{step_id} would change the project in a plan-only build"
        assert _runs_after(_steps(), step_id, "test"), f"{step_id} must wait for the tests"


def test_the_deploy_runs_in_order() -> None:
    steps = _steps()

    for later, earlier in [
        ("terraform-bootstrap", "test"),
        ("session-image-push", "session-image-build"),
        ("upload-source", "package-source"),
        ("terraform-plan", "upload-source"),
        ("terraform-plan", "session-image-push"),
        ("terraform-apply", "terraform-plan"),
        ("smoke-test", "terraform-apply"),
    ]:
        assert _runs_after(steps, later, earlier), f"{later} must wait for {earlier}"


def test_substitutions_name_things_that_exist() -> None:
    build = _build()
    scheduled = json.loads((REPO / "infra" / "scheduled_jobs.json").read_text())["jobs"]
    smoke = _script(_steps()["smoke-test"])

    job = re.search(r"gcloud scheduler jobs run (\S+)", smoke)
    assert job is not None
    assert job.group(1) in scheduled, "the smoke test starts a job Terraform schedules"
    assert build["substitutions"]["_TFVARS"] == "${_ENVIRONMENT}.tfvars"
    for environment in ("dev", "prod"):
        assert (REPO / "infra" / f"{environment}.tfvars").is_file()
    outputs = (REPO / "infra" / "outputs.tf").read_text()
    for name in re.findall(r"output -raw (\w+)", _script(_steps()["terraform-apply"])):
        assert f'output "{name}"' in outputs
    used = {name for name in build["substitutions"] if f"${{{name}}}" in yaml.safe_dump(build)}
    assert used == set(build["substitutions"]), "MUST_MATCH refuses unused substitutions"
