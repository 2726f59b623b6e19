"""``make run`` serves the session service too, and stops it cleanly on SIGTERM and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from shared.auth import build_dev_verifier
from shared.sessions.repository import COLLECTION
from shared.store.sqlite import SqliteDocumentStore
from tests.sessions import support
from tests.sessions.support import Client, silence, speech
from tests.support.processes import free_port, http_ok

ROOT = Path(__file__).resolve().parents[2]
SECRET = "g" * 40


@pytest.fixture
def gateway(tmp_path):
    http_port, sessions_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_") and k != "K_SERVICE"}
    env |= {
        "VOICE_DATA_DIR": str(tmp_path / "data"),
        "VOICE_GATEWAY_PORT": str(http_port),
        "VOICE_SESSIONS_PORT": str(sessions_port),
        "VOICE_DEV_AUTH_SECRET": SECRET,
        "VOICE_ESPEAK_VARIANT_LANGUAGES": "",
    }
    log = tmp_path / "gateway.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.gateway"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while not http_ok(f"http://127.0.0.1:{sessions_port}/readyz"):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the session service never became ready"
        time.sleep(0.1)
    yield process, http_port, sessions_port, log
    if process.poll() is None:
        process.kill()
        process.wait()


def token(tmp_path: Path, user: str) -> str:
    settings = support.test_settings(tmp_path, dev_auth_secret=SECRET)
    return build_dev_verifier(settings).mint(user)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_gateway_serves_sessions_and_stops_them_cleanly(gateway, tmp_path, stop_signal):
    process, http_port, sessions_port, log = gateway
    assert http_ok(f"http://127.0.0.1:{http_port}/healthz")
    url = f"ws://127.0.0.1:{sessions_port}/v1/sessions"
    client = Client(url, token(tmp_path, "gina"))
    session_id = client.start()["sessionId"]
    client.stream(silence(0.3) + speech("Hello.") + silence(1.0))
    assert "hello" in client.wait_for("transcript.final")["text"].lower()
    client.wait_for("audio.ended")

    stopped = time.monotonic()
    process.send_signal(stop_signal)
    # The session is told the instance is going away, and stays resumable.
    assert client.wait_for("session.ended", timeout=10)["reason"] == "shutting down"
    with pytest.raises(ConnectionClosed) as closed:
        client.ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert process.wait(timeout=15) == 0
    assert time.monotonic() - stopped < 10  # generous: the shutdown itself takes about 1 s
    output = log.read_text()
    assert f"Voice sessions on {url}" in output
    assert "Gateway stopped." in output
    store = SqliteDocumentStore(tmp_path / "data" / "store.sqlite3")
    try:
        assert store.get(COLLECTION, session_id) is not None
    finally:
        store.close()
