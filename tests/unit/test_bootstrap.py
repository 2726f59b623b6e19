"""The composition root: a capability is one package plus one line in ``CAPABILITY_PACKAGES``."""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.bootstrap import CAPABILITY_PACKAGES, Container, all_capabilities
from shared.capability import Capability, no_dependencies
from shared.config import Settings
from shared.store import Query
from tests.support import echo_capability
from tests.support.echo_capability.tasks import ECHO_TASK


@pytest.fixture
def container(tmp_path: Path):
    settings = Settings(_env_file=None, environment="test", data_dir=tmp_path)
    built = Container(settings, (*all_capabilities(), echo_capability.CAPABILITY))
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
    for capability in all_capabilities():
        if capability.tasks_module is None:
            continue
        module = importlib.import_module(capability.tasks_module)
        assert callable(module.register_tasks), capability.name
        assert callable(module.scheduled_jobs), capability.name


def test_capability_names_and_purge_names_are_unique():
    names = [capability.name for capability in all_capabilities()]
    assert len(names) == len(set(names))
    purges = [name for capability in all_capabilities() for name in capability.purges]
    assert len(purges) == len(set(purges))


def test_each_listed_package_declares_the_capability_named_after_it():
    capabilities = all_capabilities()
    assert [cap.name for cap in capabilities] == [
        package.removeprefix("shared.") for package in CAPABILITY_PACKAGES
    ]


def test_a_container_serves_every_capability_unless_given_its_own(tmp_path: Path):
    settings = Settings(_env_file=None, environment="test", data_dir=tmp_path)
    assert Container(settings).capabilities == all_capabilities()
    only = (echo_capability.CAPABILITY,)
    assert Container(settings, only).capabilities == only


# A capability whose one task blocks until released: the container must still close in time.
BLOCK_TASK = "blocker.wait"
_released = threading.Event()
_started = threading.Event()


class _Block(BaseModel):
    """Payload of ``blocker.wait``."""


def register_tasks(registry, deps):
    def run(payload: _Block, ctx) -> None:
        _started.set()
        _released.wait(60)

    registry.register(BLOCK_TASK, _Block, run)


def scheduled_jobs(settings):
    return []


def test_closing_is_bounded_even_while_a_task_runs(tmp_path: Path):
    settings = Settings(_env_file=None, environment="test", data_dir=tmp_path)
    blocker = Capability(name="blocker", build=no_dependencies, tasks_module=__name__)
    container = Container(settings, (*all_capabilities(), blocker))
    container.tasks.start()
    container.tasks.queue.enqueue(settings.default_queue, BLOCK_TASK, {})
    assert _started.wait(10)
    began = time.monotonic()
    try:
        # Still running: nothing it uses is released under it, and the caller is told.
        assert container.close(timeout=0.5) is False
        assert time.monotonic() - began < 2.0
        assert container.store.get("anything", "x") is None
    finally:
        _released.set()
    time.sleep(0.2)
    assert container.close(timeout=5) is True
