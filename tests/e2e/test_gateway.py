"""The local gateway as `make run` starts it: a real process on a real port."""

from __future__ import annotations

import json
import os
import signal
import socket
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
def gateway_env():
    """Extra environment for the gateway (a test overrides it to change settings)."""
    return {}


def start_gateway(tmp_path, gateway_env):
    """Start the gateway on free ports; return its URL, process and environment, or None
    when another process took its port first (free ports are free when asked for only)."""
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
    env.update(gateway_env)
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.gateway"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    # Its own banner, not just an answer on the port: another process may hold the port.
    while f"listening on {base}" not in log_path.read_text() or not http_ok(f"{base}/healthz"):
        if process.poll() is not None:
            output = log_path.read_text()
            assert "is taken" in output, output
            return None
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.1)
    return base, process, env


@pytest.fixture
def gateway(tmp_path, gateway_env):
    for _ in range(3):
        started = start_gateway(tmp_path, gateway_env)
        if started is not None:
            break
    else:
        pytest.fail("three gateways in a row found their port taken")
    base, process, env = started
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
    status, body, headers = call(base, "GET", "/nothing-here", token)
    assert status == 404
    # The gateway's own 404 is the body every route answers errors with.
    assert set(body) >= {"error", "code", "timestamp", "requestId"}
    assert body["code"] == "NOT_FOUND"
    assert body["requestId"] == headers["X-Request-Id"]
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
    # Stop once the first-run sync is over, so this test stops an idle gateway every time
    # (stopping one that is busy is the next test's).
    while True:
        status, body, _ = call(base, "GET", "/voices/providers", token)
        if body["providers"][0]["lastJobStatus"] == "completed":
            break
        assert time.monotonic() < deadline, "the first-run voice sync did not finish"
        time.sleep(0.2)

    # The README's download: a signed URL naming the port this gateway listens on.
    status, body, _ = call(
        base,
        "POST",
        "/synthesize",
        token,
        {"text": "Hello again.", "voice": "espeak:en-US", "outputFormat": "mp3"},
    )
    assert status == 200, body
    assert body["downloadUrl"].startswith(f"{base}/_blobs/")
    with urllib.request.urlopen(body["downloadUrl"], timeout=10) as response:  # noqa: S310
        assert response.status == 200
        assert len(response.read()) == body["size"]

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0
    output = (tmp_path / "gateway.log").read_text()
    assert f"listening on {base}" in output
    assert "make token" in output
    assert "Gateway stopped." in output


@pytest.mark.parametrize(
    "gateway_env",
    # Every eSpeak variant: a first-run sync of ~14,800 voices, still running when stopped.
    [{"VOICE_ESPEAK_VARIANT_LANGUAGES": "*", "VOICE_GATEWAY_SHUTDOWN_SECONDS": "2"}],
)
def test_ctrl_c_stops_a_busy_gateway_within_its_shutdown_bound(gateway):
    base, process, _, tmp_path = gateway
    status, body, _ = call(base, "GET", "/v1/nothing")
    # Under /v1/ the gateway's 404 is OpenAI's error body, as the OpenAI routes' errors are.
    assert status == 404
    assert body["error"]["type"] == "invalid_request_error"
    assert "/v1/nothing" in body["error"]["message"]
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0
    assert time.monotonic() - started < 2 + 5
    assert "Gateway stopped." in (tmp_path / "gateway.log").read_text()


def test_a_gateway_whose_port_is_taken_says_so_and_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_")}
        env |= {
            "VOICE_DATA_DIR": str(tmp_path / "data"),
            "VOICE_GATEWAY_PORT": str(port),
            "VOICE_SESSIONS_PORT": str(free_port()),
        }
        ran = subprocess.run(
            [sys.executable, "-m", "local.gateway"],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert ran.returncode == 1
    assert f"Port {port} of 127.0.0.1 is taken" in ran.stderr
    assert "VOICE_GATEWAY_PORT" in ran.stderr
    assert "Traceback" not in ran.stderr
