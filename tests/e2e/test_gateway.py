"""The local gateway as `make run` starts it: a real process on a real port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import free_port, http_ok

ROOT = Path(__file__).resolve().parents[2]


def call(base, method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


@pytest.fixture
def gateway(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("VOICE_") and key != "K_SERVICE"
    }
    env.update(
        {
            "VOICE_DATA_DIR": str(tmp_path / "data"),
            "VOICE_GATEWAY_PORT": str(port),
            "VOICE_SESSIONS_PORT": str(free_port()),
        }
    )
    log = (tmp_path / "gateway.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.gateway"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not http_ok(f"{base}/healthz"):
        assert process.poll() is None, (tmp_path / "gateway.log").read_text()
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.1)
    yield base, process, env, tmp_path
    if process.poll() is None:
        process.kill()
        process.wait()


def mint(env, user, admin=False):
    args = [sys.executable, "-m", "local.token", "--user", user] + (["--admin"] if admin else [])
    return subprocess.run(
        args, cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_gateway_serves_functions_at_production_paths_and_stops_on_ctrl_c(gateway):
    base, process, env, tmp_path = gateway
    token = mint(env, "alice")
    status, body, _ = call(base, "POST", "/users", token, {"email": "alice@example.com"})
    assert status == 201, body
    status, body, headers = call(base, "GET", "/users/me", token)
    assert (status, body["id"]) == (200, "alice")
    assert headers["X-Request-Id"]
    status, body, _ = call(base, "GET", "/users/me")
    assert (status, body["code"]) == (401, "UNAUTHENTICATED")
    status, body, _ = call(base, "GET", "/nothing-here", token)
    assert status == 404
    status, body, _ = call(base, "GET", "/scheduler/jobs", token)
    assert (status, body["code"]) == (403, "ACCESS_DENIED")
    status, body, _ = call(base, "GET", "/tasks/dead-letters", mint(env, "root", admin=True))
    assert (status, body["deadLetters"]) == (200, [])
    status, body, _ = call(base, "GET", "/openapi.json")
    assert status == 200
    assert "/users/me" in body["paths"]
    # A fresh data directory gets the eSpeak voices synced by the background worker.
    deadline = time.monotonic() + 90
    while True:
        status, body, _ = call(base, "GET", "/voices?provider=espeak&language=en-US&limit=3", token)
        assert status == 200, body
        if len(body["voices"]) == 3:
            break
        assert time.monotonic() < deadline, "the first-run voice sync did not finish"
        time.sleep(0.5)
    assert all(v["id"].startswith("espeak:") for v in body["voices"])
    assert (tmp_path / "data" / "store.sqlite3").exists()

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0
    output = (tmp_path / "gateway.log").read_text()
    assert f"listening on {base}" in output
    assert "make token" in output
    assert "Gateway stopped." in output
