"""``make run`` serves the session service too, and stops it cleanly on SIGTERM and Ctrl-C."""

from __future__ import annotations

import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed

from shared.sessions.repository import COLLECTION
from shared.store.sqlite import SqliteDocumentStore
from tests.sessions.support import Client, silence, speech
from tests.support.gateway_process import start_gateway
from tests.support.processes import http_ok


@pytest.fixture
def gateway(tmp_path):
    running = start_gateway(tmp_path, VOICE_ESPEAK_VARIANT_LANGUAGES="")
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_gateway_serves_sessions_and_stops_them_cleanly(gateway, stop_signal):
    process, http_port, sessions_port, log = (
        gateway.process,
        gateway.port,
        gateway.sessions_port,
        gateway.log,
    )
    assert http_ok(f"http://127.0.0.1:{http_port}/healthz")
    url = f"ws://127.0.0.1:{sessions_port}/v1/sessions"
    client = Client(url, gateway.token("gina"))
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
    store = SqliteDocumentStore(gateway.data_dir / "store.sqlite3")
    try:
        assert store.get(COLLECTION, session_id) is not None
    finally:
        store.close()
