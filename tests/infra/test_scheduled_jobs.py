"""Cloud Scheduler (Terraform) fires exactly the jobs the code schedules, on the same crons."""

from __future__ import annotations

import json
from pathlib import Path

from shared.bootstrap import Container
from shared.config import Settings

SCHEDULED = Path(__file__).resolve().parents[2] / "infra" / "scheduled_jobs.json"


def expected_jobs() -> dict[str, dict[str, str]]:
    jobs = Container(Settings(_env_file=None)).scheduled_jobs()
    return {
        job.name: {
            "path": f"/scheduler/jobs/{job.name}/fire",
            "schedule": job.cron,
            "description": job.description,
        }
        for job in jobs
    }


def test_terraform_schedules_every_registered_job():
    deployed = json.loads(SCHEDULED.read_text())["jobs"]
    expected = expected_jobs()
    assert deployed == expected, (
        "infra/scheduled_jobs.json is out of date; its jobs should be:\n"
        + json.dumps(expected, indent=2)
    )
