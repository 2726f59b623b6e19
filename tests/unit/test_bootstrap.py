"""The composition root: a capability is one package plus one line in ``CAPABILITIES``."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from shared.bootstrap import CAPABILITIES, Container
from shared.config import Settings
from shared.store import Query
from tests.support import echo_capability
from tests.support.echo_capability.tasks import ECHO_TASK


@pytest.fixture
def container(tmp_path: Path):
    settings = Settings(_env_file=None, environment="test", data_dir=tmp_path)
    built = Container(settings, (*CAPABILITIES, echo_capability.CAPABILITY))
    yield built
    built.close()


def test_a_new_capability_gets_its_tasks_jobs_purges_and_deps_from_one_line(container):
    runtime = container.tasks
    assert ECHO_TASK in runtime.registry.names()
    assert "echo-daily" in [job.name for job in runtime.jobs.jobs()]
    assert "echoes" in container.account_purges()
    deps = container.deps(echo_capability.CAPABILITY)
    assert deps is container.deps(echo_capability.CAPABILITY)
    assert deps.store is container.store

    runtime.start()
    runtime.queue.enqueue(
        container.settings.default_queue, ECHO_TASK, {"user_id": "ann", "text": "hello"}
    )
    deadline = time.monotonic() + 10
    while not container.store.count(Query("echoes")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert container.store.count(Query("echoes").where("user_id", "==", "ann")) == 1
    assert container.account_purges()["echoes"]("ann") == 1


def test_every_capability_declares_its_background_work_in_a_tasks_module():
    for capability in CAPABILITIES:
        if capability.tasks_module is None:
            continue
        module = importlib.import_module(capability.tasks_module)
        assert callable(module.register_tasks), capability.name
        assert callable(module.scheduled_jobs), capability.name


def test_capability_names_and_purge_names_are_unique():
    names = [capability.name for capability in CAPABILITIES]
    assert len(names) == len(set(names))
    purges = [name for capability in CAPABILITIES for name in capability.purges]
    assert len(purges) == len(set(purges))
