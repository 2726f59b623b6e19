"""Fixtures shared by every test: emulators started once per session, fresh data dirs."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import (
    Emulator,
    firestore_emulator_command,
    free_port,
    http_ok,
    start_process,
)

FIRESTORE_PROJECT = "demo-voice-test"


# Test directories from the slowest files to the quickest (tests/e2e's fuzzing and fault
# runs, the browser, the session service, the benchmarks' smoke runs...): `make test` hands
# whole files to its workers in collection order, so the long ones start first and the
# many short unit files fill in at the end, instead of one long file running alone last.
SLOWEST_FIRST = ("e2e", "browser", "sessions", "bench", "contract", "infra", "functions", "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the collected tests by directory, slowest first; each file keeps its order."""
    tests_root = Path(__file__).resolve().parent

    def rank(item: pytest.Item) -> int:
        parts = (
            item.path.relative_to(tests_root).parts if item.path.is_relative_to(tests_root) else ()
        )
        top = parts[0] if len(parts) > 1 else ""
        return SLOWEST_FIRST.index(top) if top in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Google's Firestore emulator on a free port, warmed up, stopped after the session."""
    port = free_port()
    host = f"127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("firestore") / "emulator.log"
    emulator = start_process(
        firestore_emulator_command(port),
        host=host,
        log_path=log_path,
        ready=lambda: http_ok(f"http://{host}/", "Ok"),
        timeout=90,
    )
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        _warm_up_firestore()
        yield emulator
    finally:
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
        emulator.stop()


def _warm_up_firestore() -> None:
    # The JVM answers its first requests slowly; pay that once here, not in a timed test.
    client = new_firestore_client()
    ref = client.collection("warmup").document("w")
    ref.set({"ok": True})
    ref.get()
    client.close()


def new_firestore_client():  # type: ignore[no-untyped-def]
    """Return a Firestore client for the emulator named by FIRESTORE_EMULATOR_HOST."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    return firestore.Client(project=FIRESTORE_PROJECT, credentials=AnonymousCredentials())


def reset_firestore(emulator: Emulator) -> None:
    """Delete every document in the emulator's default database."""
    url = (
        f"http://{emulator.host}/emulator/v1/projects/{FIRESTORE_PROJECT}"
        "/databases/(default)/documents"
    )
    request = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback only
        pass


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory for one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session", autouse=True)
def documented_statuses_only() -> Iterator[None]:
    """Fail the session if any route answered a status its OpenAPI operation does not list."""
    import logging

    from tests.support.observed_statuses import StatusRecorder, undocumented

    recorder = StatusRecorder()
    http_logger = logging.getLogger("shared.http")
    previous = http_logger.level
    http_logger.addHandler(recorder)
    if not http_logger.isEnabledFor(logging.INFO):
        http_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        http_logger.removeHandler(recorder)
        http_logger.setLevel(previous)
    problems = list(undocumented(recorder.seen))
    assert problems == [], "\n".join(problems)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_the_logs() -> Iterator[None]:
    """Fail the session if any log line held a token, a URL signature or an API key."""
    import logging

    from tests.support.secret_logs import SecretRecorder

    recorder = SecretRecorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield
    finally:
        root.removeHandler(recorder)
    lines = [f"{what} in a log line of {name}: ...{text}..." for what, name, text in recorder.found]
    assert lines == [], "\n".join(lines[:20])
