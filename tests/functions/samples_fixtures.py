"""Fixtures the sample and training tests share (this module has no tests).

The platform runs embedded with its real task worker, so an upload is processed by the
``samples.process`` task exactly as ``make run`` processes it; ``wait_for_sample`` polls
the API until processing settles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.bootstrap import get_container
from tests.functions.conftest import bearer


@pytest.fixture
def worker(platform: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The embedded task worker, polling often, running while the test does."""
    monkeypatch.setenv("VOICE_PROVIDERS", "espeak")
    monkeypatch.setenv("VOICE_TASKS_POLL_SECONDS", "0.05")
    monkeypatch.setenv("VOICE_SCHEDULER_ENABLED", "false")
    from shared.bootstrap import reset_container

    reset_container()
    container = get_container()
    container.tasks.start()
    yield
    container.tasks.stop()


@pytest.fixture
def samples_client(function_client: Callable[[str], FlaskClient], worker: None) -> FlaskClient:
    """A test client of the ``samples`` function, with the worker running."""
    return function_client("samples")


def upload(
    client: FlaskClient,
    token: str,
    data: bytes,
    *,
    filename: str = "take.wav",
    **fields: str,
) -> Any:
    """POST a multipart upload; return the response."""
    from io import BytesIO

    form: dict[str, Any] = {"file": (BytesIO(data), filename), **fields}
    return client.post(
        "/samples", data=form, headers=bearer(token), content_type="multipart/form-data"
    )


def wait_for_sample(
    client: FlaskClient, token: str, sample_id: str, *, timeout: float = 60.0
) -> dict[str, Any]:
    """Return the sample once processing settled (ready or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/samples/{sample_id}", headers=bearer(token)).get_json()
        if body.get("status") in ("ready", "failed") or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.05)


def ready_sample(client: FlaskClient, token: str, data: bytes, **fields: str) -> dict[str, Any]:
    """Upload ``data`` and return the sample once ready (failing the test otherwise)."""
    response = upload(client, token, data, **fields)
    assert response.status_code == 201, response.get_json()
    sample = wait_for_sample(client, token, response.get_json()["id"])
    assert sample["status"] == "ready", sample
    return sample
