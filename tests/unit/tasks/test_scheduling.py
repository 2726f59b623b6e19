"""Scheduled jobs: cron in UTC, one enqueue per firing across gateways, the Terraform manifest."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.store import Query
from shared.store.sqlite import SqliteDocumentStore
from shared.tasks import QueuePolicy, ScheduledJobNotFoundError, TaskRegistry
from shared.tasks.inprocess import QUEUED_TASKS, InProcessTaskQueue
from shared.tasks.scheduling import (
    JobRegistry,
    LocalScheduler,
    ScheduledJob,
    fire_job,
    scheduled_jobs_manifest,
)

SYNC = ScheduledJob(
    name="provider-voice-sync",
    cron="0 3 * * *",
    description="Daily provider voice sync",
    queue="q",
    task_type="voices.sync",
    payload={"full": True},
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    adapter = SqliteDocumentStore(tmp_path / "store.sqlite3")
    yield adapter
    adapter.close()


def queue_on(store):
    return InProcessTaskQueue(store=store, policies={"q": QueuePolicy()}, registry=TaskRegistry())


def queued(store):
    return [d.data for d in store.stream(Query(QUEUED_TASKS))]


def test_next_firing_is_computed_in_utc():
    moment = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
    assert SYNC.next_after(moment) == datetime(2026, 5, 2, 3, 0, tzinfo=UTC)
    assert SYNC.next_after(moment - timedelta(seconds=1)) == moment


@pytest.mark.parametrize(
    ("name", "cron"),
    [("Bad Name", "0 3 * * *"), ("ok", "61 * * * *"), ("ok", "0 3 * * * *"), ("ok", "daily")],
)
def test_bad_names_and_cron_expressions_are_refused(name, cron):
    with pytest.raises(ValueError, match="Invalid"):
        ScheduledJob(name=name, cron=cron, description="", queue="q", task_type="x.y")


def test_the_registry_refuses_duplicates_and_unknown_names():
    jobs = JobRegistry([SYNC])
    with pytest.raises(ValueError, match="already registered"):
        jobs.register(SYNC)
    with pytest.raises(ScheduledJobNotFoundError):
        jobs.get("nope")
    assert jobs.jobs() == [SYNC]


def test_due_jobs_fire_once_per_firing_even_with_two_schedulers(store):
    clock = Clock(datetime(2026, 5, 1, 2, 59, 30, tzinfo=UTC))
    jobs = JobRegistry([SYNC])
    first = LocalScheduler(jobs, queue_on(store), clock=clock)
    second = LocalScheduler(jobs, queue_on(store), clock=clock)
    for scheduler in (first, second):
        scheduler.start()
        scheduler.stop()  # keep the computed next firings; tick by hand below
    assert first.tick() == []
    clock.now = datetime(2026, 5, 1, 3, 0, 1, tzinfo=UTC)
    assert first.tick() == ["provider-voice-sync"]
    assert second.tick() == ["provider-voice-sync"]  # tried, refused as a duplicate
    tasks = queued(store)
    assert len(tasks) == 1
    assert tasks[0]["task_type"] == "voices.sync"
    assert tasks[0]["payload"] == {"full": True}
    assert tasks[0]["dedup_key"] == "schedule:provider-voice-sync:2026-05-01T03:00:00Z"
    # The next firing is the next day's 03:00, not before.
    clock.now = datetime(2026, 5, 2, 2, 59, 59, tzinfo=UTC)
    assert first.tick() == []
    clock.now = datetime(2026, 5, 2, 3, 0, 1, tzinfo=UTC)
    assert first.tick() == ["provider-voice-sync"]


def test_the_scheduler_thread_fires_on_time(store):
    every_minute = ScheduledJob(
        name="tick", cron="* * * * *", description="", queue="q", task_type="t.t"
    )
    clock = Clock(datetime(2026, 5, 1, 3, 0, 59, 950000, tzinfo=UTC))
    scheduler = LocalScheduler(JobRegistry([every_minute]), queue_on(store), clock=clock)
    scheduler.start()
    try:
        clock.now = datetime(2026, 5, 1, 3, 1, 0, 10000, tzinfo=UTC)
        deadline = datetime.now(UTC) + timedelta(seconds=3)
        while not queued(store) and datetime.now(UTC) < deadline:
            time.sleep(0.01)
    finally:
        scheduler.stop()
    assert len(queued(store)) == 1


def test_a_manual_run_is_never_deduplicated(store):
    queue = queue_on(store)
    assert fire_job(queue, SYNC, None) is not None
    assert fire_job(queue, SYNC, None) is not None
    assert len(queued(store)) == 2


def test_the_manifest_maps_each_job_to_a_cloud_scheduler_http_job():
    manifest = scheduled_jobs_manifest(
        JobRegistry([SYNC]),
        base_url="https://tasks-abc.a.run.app/",
        service_account_email="voice-tasks@proj.iam.gserviceaccount.com",
    )
    assert manifest == [
        {
            "name": "provider-voice-sync",
            "description": "Daily provider voice sync",
            "schedule": "0 3 * * *",
            "timeZone": "Etc/UTC",
            "httpTarget": {
                "uri": "https://tasks-abc.a.run.app/scheduler/jobs/provider-voice-sync/fire",
                "httpMethod": "POST",
                "oidcToken": {
                    "serviceAccountEmail": "voice-tasks@proj.iam.gserviceaccount.com",
                    "audience": "https://tasks-abc.a.run.app",
                },
            },
        }
    ]
