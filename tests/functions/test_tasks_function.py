"""The tasks function over HTTP: who may push tasks, what each outcome answers, admin routes.

Built from ``functions/tasks.py`` as the Cloud Functions runtime builds it (the lead adds
the entry point to ``main.py``); embedded settings, so the queue is the in-process one
(not started: queued tasks stay visible in the store).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import functions_framework
import pydantic
import pytest

from functions.tasks import MAX_RETRY_COUNT
from shared.bootstrap import get_container
from shared.store import Query
from shared.tasks import GiveUpTask, RetryTask, TaskEnvelope
from shared.tasks.execution import DEAD_LETTERS
from shared.tasks.inprocess import QUEUED_TASKS
from shared.tasks.scheduling import ScheduledJob
from tests.functions.conftest import ROOT, bearer


class Greeting(pydantic.BaseModel):
    name: str


@pytest.fixture
def client(platform):
    return functions_framework.create_app(
        "tasks", str(ROOT / "functions" / "tasks.py")
    ).test_client()


@pytest.fixture
def runtime(platform):
    runtime = get_container().tasks
    greeted: list[str] = []

    def greet(payload: Greeting, ctx) -> None:
        if payload.name == "flaky":
            raise RetryTask("try later", delay=7)
        if payload.name == "never":
            raise GiveUpTask("no such person")
        greeted.append(payload.name)

    runtime.registry.register("test.greet", Greeting, greet)
    runtime.greeted = greeted  # type: ignore[attr-defined]
    return runtime


def envelope(name: str = "ann", *, queue: str = "voice-default") -> bytes:
    return TaskEnvelope(
        task_id=uuid.uuid4().hex,
        queue=queue,
        task_type="test.greet",
        payload={"name": name},
        enqueued_at=datetime.now(UTC),
    ).to_json()


def push(client, token, body: bytes, retries: int = 0):
    headers = {
        **bearer(token),
        "Content-Type": "application/json",
        "X-CloudTasks-TaskRetryCount": str(retries),
        "X-CloudTasks-QueueName": "voice-default",
        "X-CloudTasks-TaskName": "t-" + uuid.uuid4().hex,
    }
    return client.post("/tasks/run", data=body, headers=headers)


def test_a_pushed_task_runs_and_a_repeat_is_acknowledged(client, token, runtime):
    body = envelope("ann")
    first = push(client, token("svc", admin=True), body)
    assert first.status_code == 200
    assert first.get_json() == {"outcome": "succeeded"}
    again = push(client, token("svc", admin=True), body, retries=1)
    assert again.get_json() == {"outcome": "duplicate"}
    assert runtime.greeted == ["ann"]


def test_only_the_task_service_principal_may_push(client, token, runtime):
    assert push(client, "", envelope()).status_code == 401
    assert push(client, "not-a-token", envelope()).status_code == 401
    denied = push(client, token("mallory"), envelope())
    assert denied.status_code == 403
    assert denied.get_json()["code"] == "ACCESS_DENIED"
    assert runtime.greeted == []


def test_a_transient_failure_answers_503_with_retry_after(client, token, runtime):
    response = push(client, token("svc", admin=True), envelope("flaky"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert response.get_json()["outcome"] == "retry"


def test_the_last_attempt_is_dead_lettered_and_acknowledged(client, token, runtime):
    max_attempts = runtime.policy_for("voice-default").max_attempts
    body = envelope("flaky")
    response = push(client, token("svc", admin=True), body, retries=max_attempts - 1)
    assert response.status_code == 200
    assert response.get_json() == {"outcome": "dead_lettered"}
    task_id = json.loads(body)["task_id"]
    letter = get_container().store.get(DEAD_LETTERS, task_id).data
    assert letter["attempts"] == max_attempts
    assert letter["reason"] == "exhausted"


def test_a_retry_count_past_64_bits_is_dead_lettered_with_a_storable_count(client, token, runtime):
    body = envelope("flaky")
    response = push(client, token("svc", admin=True), body, retries=10**30)
    assert response.get_json() == {"outcome": "dead_lettered"}
    letter = get_container().store.get(DEAD_LETTERS, json.loads(body)["task_id"]).data
    assert letter["attempts"] == MAX_RETRY_COUNT + 1 < 2**63


def test_an_unreadable_body_is_dead_lettered_not_retried(client, token, runtime):
    response = push(client, token("svc", admin=True), b'{"task_id": 5}')
    assert response.status_code == 200
    letters = list(get_container().store.stream(Query(DEAD_LETTERS)))
    assert [d.data["reason"] for d in letters] == ["malformed_envelope"]


def test_admins_page_through_dead_letters_and_retry_one(client, token, runtime):
    admin = bearer(token("root", admin=True))
    for _ in range(3):
        push(client, token("svc", admin=True), envelope("never"))
    page = client.get("/tasks/dead-letters?limit=2", headers=admin)
    assert page.status_code == 200
    body = page.get_json()
    assert len(body["deadLetters"]) == 2
    assert body["deadLetters"][0]["reason"] == "gave_up"
    assert body["deadLetters"][0]["lastError"] == "no such person"
    assert body["deadLetters"][0]["payload"] == {"name": "never"}
    rest = client.get(f"/tasks/dead-letters?limit=2&cursor={body['nextCursor']}", headers=admin)
    assert len(rest.get_json()["deadLetters"]) == 1
    assert rest.get_json()["nextCursor"] is None

    task_id = body["deadLetters"][0]["taskId"]
    one = client.get(f"/tasks/dead-letters/{task_id}", headers=admin)
    assert one.get_json()["taskId"] == task_id
    retried = client.post(f"/tasks/dead-letters/{task_id}/retry", headers=admin)
    assert retried.status_code == 202
    new_id = retried.get_json()["taskId"]
    assert get_container().store.get(QUEUED_TASKS, new_id) is not None
    assert client.get(f"/tasks/dead-letters/{task_id}", headers=admin).status_code == 404


def test_admin_routes_refuse_other_users(client, token, runtime):
    user = bearer(token("ann"))
    assert client.get("/tasks/dead-letters", headers=user).status_code == 403
    assert client.post("/tasks/dead-letters/x/retry", headers=user).status_code == 403
    assert client.get("/scheduler/jobs", headers=user).status_code == 403
    assert client.post("/scheduler/jobs/x/run", headers=user).status_code == 403
    bad = client.get("/tasks/dead-letters?limit=0", headers=bearer(token("root", admin=True)))
    assert bad.status_code == 400


def test_admins_list_and_run_scheduled_jobs(client, token, runtime):
    runtime.jobs.register(
        ScheduledJob(
            name="nightly-greeting",
            cron="0 3 * * *",
            description="Greets everyone",
            queue="voice-default",
            task_type="test.greet",
            payload={"name": "everyone"},
        )
    )
    admin = bearer(token("root", admin=True))
    listed = client.get("/scheduler/jobs", headers=admin).get_json()["jobs"]
    by_name = {job["name"]: job for job in listed}
    # The platform's own jobs are listed too, beside the one registered here.
    assert {"nightly-greeting", "sync-voices"} <= set(by_name)
    assert by_name["nightly-greeting"]["nextRunAt"].endswith("03:00:00Z")
    run = client.post("/scheduler/jobs/nightly-greeting/run", headers=admin)
    assert run.status_code == 202
    assert get_container().store.get(QUEUED_TASKS, run.get_json()["taskId"]) is not None
    missing = client.post("/scheduler/jobs/nope/run", headers=admin)
    assert missing.status_code == 404
    assert missing.get_json()["code"] == "SCHEDULED_JOB_NOT_FOUND"


def test_a_cloud_scheduler_firing_enqueues_once_per_scheduled_time(client, token, runtime):
    runtime.jobs.register(
        ScheduledJob(
            name="nightly-greeting",
            cron="0 3 * * *",
            description="",
            queue="voice-default",
            task_type="test.greet",
            payload={"name": "everyone"},
        )
    )
    headers = {
        **bearer(token("svc", admin=True)),
        "X-CloudScheduler-ScheduleTime": "2026-05-01T03:00:00Z",
    }
    first = client.post("/scheduler/jobs/nightly-greeting/fire", headers=headers)
    retry = client.post("/scheduler/jobs/nightly-greeting/fire", headers=headers)
    assert first.status_code == retry.status_code == 202
    assert first.get_json()["duplicate"] is False
    assert retry.get_json()["duplicate"] is True
    assert (
        client.post(
            "/scheduler/jobs/nightly-greeting/fire", headers=bearer(token("ann"))
        ).status_code
        == 403
    )
    assert get_container().store.count(Query(QUEUED_TASKS)) == 1


@pytest.mark.parametrize(
    "schedule_time", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "garbage"]
)
def test_a_schedule_time_that_cannot_be_a_utc_time_fires_as_now(
    client, token, runtime, schedule_time
):
    headers = {**bearer(token("svc", admin=True)), "X-CloudScheduler-ScheduleTime": schedule_time}
    first = client.post("/scheduler/jobs/sync-voices/fire", headers=headers)
    assert first.status_code == 202
    assert first.get_json()["duplicate"] is False
    assert get_container().store.count(Query(QUEUED_TASKS)) == 1


@pytest.mark.parametrize("task_name", ["__forged__", "a/b", "..", "x" * 800])
def test_an_unreadable_body_with_an_unusable_task_name_is_still_dead_lettered(
    client, token, runtime, task_name
):
    headers = {
        **bearer(token("svc", admin=True)),
        "X-CloudTasks-TaskName": task_name,
        "X-CloudTasks-QueueName": "projects/p/locations/l/queues/voice-default",
    }
    response = client.post("/tasks/run", data=b"not an envelope", headers=headers)
    assert response.status_code == 200  # acknowledged: retrying cannot repair the body
    assert response.get_json() == {"outcome": "dead_lettered"}
    letters = client.get("/tasks/dead-letters", headers=bearer(token("root", admin=True)))
    [letter] = letters.get_json()["deadLetters"]
    assert letter["taskId"].startswith("unreadable-")
    assert letter["queue"] == "voice-default"
    assert letter["payload"] == {"rawBody": "not an envelope"}
