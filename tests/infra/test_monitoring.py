"""The alerts of infra/monitoring.tf select what the code logs.

The dead-letter alert counts log lines through a log-based metric whose filter names fields
of the JSON line (``jsonPayload.<field>="<value>"``) and whose labels are extracted from
others. Nothing in Google's stack would say when the two drift apart: the metric would
simply stay at zero. Here a real dead letter is logged through the production formatter
and must match the filter and carry every extracted field.
"""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime

import pydantic
import pytest

from shared.log import CloudLoggingFormatter
from shared.store.sqlite import SqliteDocumentStore
from shared.tasks import (
    GiveUpTask,
    QueuePolicy,
    RetryTask,
    TaskEnvelope,
    TaskRegistry,
    execute_task,
)
from shared.tasks import execution as task_execution
from tests.support.terraform import resource_block, string_attribute

POLICY = QueuePolicy(max_attempts=3, min_backoff=1, max_backoff=8, max_concurrent=1)


class Voice(pydantic.BaseModel):
    voice_id: str


def dead_letter_metric() -> tuple[list[tuple[str, str]], list[str]]:
    """Return the dead-letter metric's jsonPayload clauses and the fields its labels read."""
    block = resource_block("monitoring.tf", "google_logging_metric", "dead_letters")
    log_filter = string_attribute(block, "filter")
    clauses = re.findall(r'jsonPayload\.(\w+)="([^"]*)"', log_filter)
    extracted = re.findall(r"EXTRACT\(jsonPayload\.(\w+)\)", block)
    return clauses, extracted


@pytest.fixture
def logged():
    """Every line ``shared.tasks.execution`` logs, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    task_logger = logging.getLogger(task_execution.__name__)
    task_logger.addHandler(handler)
    level = task_logger.level
    task_logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    task_logger.removeHandler(handler)
    task_logger.setLevel(level)


@pytest.fixture
def store(tmp_path):
    adapter = SqliteDocumentStore(tmp_path / "store.sqlite3")
    yield adapter
    adapter.close()


def run(store, voice_id: str, attempt: int) -> str:
    registry = TaskRegistry()

    def train(payload: Voice, context) -> None:
        if payload.voice_id == "gone":
            raise GiveUpTask("the voice was deleted")
        raise RetryTask("the provider is busy")

    registry.register("samples.train", Voice, train)
    envelope = TaskEnvelope(
        task_id=f"task-{voice_id}",
        queue="default",
        task_type="samples.train",
        payload={"voice_id": voice_id},
        enqueued_at=datetime.now(UTC),
    )
    outcome = execute_task(
        registry=registry, store=store, envelope=envelope, attempt=attempt, policy=POLICY
    )
    return outcome.kind


def matching(lines: list[dict], clauses: list[tuple[str, str]]) -> list[dict]:
    return [line for line in lines if all(line.get(key) == value for key, value in clauses)]


def test_the_metric_selects_by_the_event_the_code_logs():
    clauses, extracted = dead_letter_metric()
    assert ("event", task_execution.DEAD_LETTER_EVENT) in clauses
    assert {"taskType", "reason"} <= set(extracted)


def test_a_dead_letter_logs_one_line_the_metric_counts_and_labels(store, logged):
    clauses, extracted = dead_letter_metric()
    assert run(store, "busy", attempt=1) == "retry"
    assert matching(logged(), clauses) == []  # a retry pages no one

    assert run(store, "busy", attempt=3) == "dead_lettered"  # its retries ran out
    assert run(store, "gone", attempt=1) == "dead_lettered"  # its handler gave up
    counted = matching(logged(), clauses)
    assert [(line["taskType"], line["reason"]) for line in counted] == [
        ("samples.train", "exhausted"),
        ("samples.train", "gave_up"),
    ]
    for line in counted:
        assert line["severity"] == "ERROR"
        assert all(line.get(field) for field in extracted), (extracted, line)

    # A dead task redelivered is acknowledged as a duplicate, not counted again.
    assert run(store, "busy", attempt=4) == "duplicate"
    assert len(matching(logged(), clauses)) == 2
