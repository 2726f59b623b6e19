"""A gateway killed with SIGKILL mid-work recovers within a bound, losing and doubling nothing.

Each test runs the real gateway (``python -m local.gateway``) on a data directory, kills
it with ``kill -9`` while it works (a burst of syntheses, a long synthesis job, a voice
sync, a backup), starts it again on the same data, and checks that everything completes
within a bound. Leases are what make this fast: running tasks and audio being rendered
hold short leases their process renews, so a dead process's work is taken over within one
lease (3 s here, 30 s and 6 s by default) instead of the old 30 minutes and 60 seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.store import Query
from shared.store.sqlite import SqliteDocumentStore
from shared.voice_models.usage_outbox import USAGE_OUTBOX
from tests.e2e.test_gateway import call, mint
from tests.support.processes import free_port, http_ok

ROOT = Path(__file__).resolve().parents[2]
LONG_TEXT = "This sentence is one of many in a long text that becomes a job. " * 60


class Gateway:
    """A gateway process that can be killed and started again on the same data."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "gateway.log"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("VOICE_") and key != "K_SERVICE"
        }
        self.env.update(
            {
                "VOICE_DATA_DIR": str(tmp_path / "data"),
                "VOICE_GATEWAY_PORT": str(self.port),
                "VOICE_PROVIDERS": "espeak",
                "VOICE_ESPEAK_VARIANT_LANGUAGES": "en-us",
                "VOICE_TASKS_LEASE_SECONDS": "3",
                "VOICE_SYNTHESIS_CACHE_LEASE_SECONDS": "3",
                "VOICE_LOG_LEVEL": "WARNING",
                "VOICE_RATE_LIMIT_MODEL_CREATES_PER_HOUR": "1000",
            }
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.gateway"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not http_ok(f"{self.base}/healthz"):
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def gateway(tmp_path):
    running = Gateway(tmp_path)
    running.start()
    yield running
    running.stop()


def wait_until(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} took over {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def catalog_ready(gateway: Gateway, token: str) -> bool:
    status, body, _ = call(gateway.base, "GET", "/voices?provider=espeak&language=en-US", token)
    return status == 200 and bool(body["voices"])


def test_a_burst_of_syntheses_killed_mid_render_completes_quickly_after_restart(gateway):
    token = mint(gateway.env, "ann")
    wait_until(lambda: catalog_ready(gateway, token), 60, "the first-run sync")
    texts = [f"Burst number {i}. " + "Words to render for a while. " * 40 for i in range(16)]

    def say(text: str) -> tuple[int, float]:
        started = time.monotonic()
        try:
            status, _, _ = call(
                gateway.base, "POST", "/synthesize", token, {"text": text, "voice": "espeak:en-US"}
            )
        except OSError:
            status = -1  # the connection died with the server
        return status, time.monotonic() - started

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(say, text) for text in texts]
        time.sleep(0.4)  # rendering has started: pending cache entries hold leases
        gateway.kill()
        [future.result() for future in futures]

    gateway.start()
    health: list[float] = []

    def probe_health() -> None:
        for _ in range(10):
            started = time.monotonic()
            assert http_ok(f"{gateway.base}/healthz")
            health.append(time.monotonic() - started)
            time.sleep(0.3)

    prober = threading.Thread(target=probe_health)
    with ThreadPoolExecutor(16) as pool:
        prober.start()
        results = list(pool.map(say, texts))
        prober.join()
    assert [status for status, _ in results] == [200] * 16
    assert max(seconds for _, seconds in results) < 15  # a lease of 3 s, not a 30 s wait
    assert max(health) < 2.0


def test_a_long_job_whose_worker_was_killed_completes_after_restart(gateway):
    token = mint(gateway.env, "ann")
    wait_until(lambda: catalog_ready(gateway, token), 60, "the first-run sync")
    status, started, _ = call(
        gateway.base, "POST", "/synthesize", token, {"text": LONG_TEXT, "voice": "espeak:en-US"}
    )
    assert status == 202, started
    time.sleep(0.3)  # chunk tasks are claimed and running
    gateway.kill()
    gateway.start()

    def completed() -> bool:
        status, body, _ = call(gateway.base, "GET", f"/synthesis/jobs/{started['jobId']}", token)
        assert status == 200, body
        assert body["status"] != "failed", body
        return bool(body["status"] == "completed")

    took = wait_until(completed, 60, "the killed job")
    assert took < 60
    status, body, _ = call(gateway.base, "GET", f"/synthesis/jobs/{started['jobId']}", token)
    assert body["progress"] == 1.0
    assert body["duration"] > 100  # the whole text, once


def test_a_voice_sync_killed_mid_run_finishes_once_after_restart(gateway):
    admin = mint(gateway.env, "root", admin=True)
    wait_until(lambda: catalog_ready(gateway, admin), 60, "the first-run sync")
    status, body, _ = call(gateway.base, "POST", "/voices/sync", admin, {})
    assert status == 202, body
    job_id = body["jobs"][0]["id"]
    time.sleep(0.2)
    gateway.kill()
    gateway.start()

    def finished() -> bool:
        status, job, _ = call(gateway.base, "GET", f"/voices/sync/jobs/{job_id}", admin)
        assert status == 200, job
        return job["status"] in ("completed", "failed")

    wait_until(finished, 60, "the killed sync")
    status, job, _ = call(gateway.base, "GET", f"/voices/sync/jobs/{job_id}", admin)
    assert job["status"] == "completed", job
    status, jobs, _ = call(gateway.base, "GET", "/voices/sync/jobs", admin)
    assert [j["id"] for j in jobs["jobs"]].count(job_id) == 1


def test_a_backup_killed_mid_request_loses_no_model_and_can_run_again(gateway):
    token = mint(gateway.env, "ann")
    made = []
    for index in range(20):
        status, body, _ = call(
            gateway.base,
            "POST",
            "/voice-models",
            token,
            {
                "provider": "xtts-v2",
                "modelPath": f"models/ann/m{index}/model.pth",
                "qualityScore": 0.5,
            },
        )
        assert status == 201, body
        made.append(body["id"])

    def backup() -> None:
        with contextlib.suppress(OSError):  # the server dies under it
            call(gateway.base, "POST", "/voice-models/user/ann/backup", token)

    thread = threading.Thread(target=backup)
    thread.start()
    time.sleep(0.05)
    gateway.kill()
    thread.join()
    gateway.start()
    status, listed, _ = call(gateway.base, "GET", "/voice-models/user/ann?limit=100", token)
    assert status == 200
    assert sorted(m["id"] for m in listed["models"]) == sorted(made)
    status, body, _ = call(gateway.base, "POST", "/voice-models/user/ann/backup", token)
    assert status == 201, body
    assert body["modelCount"] == 20


def pending_uses_in(gateway: Gateway) -> int:
    """Return how many voice-model uses wait in the stopped gateway's usage outbox."""
    store = SqliteDocumentStore(Path(gateway.env["VOICE_DATA_DIR"]) / "store.sqlite3")
    try:
        return store.count(Query(USAGE_OUTBOX))
    finally:
        store.close()


def test_uses_answered_before_a_kill_are_counted_once_after_restart(tmp_path):
    gateway = Gateway(tmp_path)
    # No scheduled drain: every use answered is still in the outbox when the kill comes.
    gateway.env["VOICE_SCHEDULER_ENABLED"] = "false"
    gateway.start()
    try:
        token = mint(gateway.env, "ann")
        admin = mint(gateway.env, "root", admin=True)
        wait_until(lambda: catalog_ready(gateway, token), 60, "the first-run sync")
        status, model, _ = call(
            gateway.base,
            "POST",
            "/voice-models",
            token,
            {
                "provider": "espeak",
                "modelPath": "models/ann/m.bin",
                "qualityScore": 0.9,
                "metadata": {"voiceId": "en-US+f3", "language": "en-US"},
            },
        )
        assert status == 201, model
        texts = [f"Use number {i} of the model." for i in range(6)]
        for text in [*texts, texts[0]]:  # the last one is a cache hit: a use too
            status, body, _ = call(
                gateway.base, "POST", "/synthesize", token, {"text": text, "voice": model["id"]}
            )
            assert status == 200, body
        gateway.kill()  # right after the responses, before anything drained the outbox
        assert pending_uses_in(gateway) == 7

        gateway.start()
        for _ in range(2):  # two drains at once (a retry, a second scheduler): racing
            status, fired, _ = call(
                gateway.base, "POST", "/scheduler/jobs/voice-model-usage-drain/fire", admin, {}
            )
            assert status == 202, fired
        wait_until(lambda: pending_uses_in(gateway) == 0, 60, "the drains")
        status, analytics, _ = call(gateway.base, "GET", "/voice-models/user/ann/analytics", token)
        assert status == 200, analytics
        assert analytics["totalUsageCount"] == 7
        status, stats, _ = call(
            gateway.base, "GET", f"/voice-models/{model['id']}/usage-stats", token
        )
        assert status == 200, stats
        assert stats["usageCount"] == 7
        billed = sum(len(text) for text in texts)  # the hit is asked for, not billed
        assert (stats["characters"], stats["requestedCharacters"]) == (
            billed,
            billed + len(texts[0]),
        )
    finally:
        gateway.stop()
