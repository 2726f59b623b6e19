"""The gateway's origin serves the session WebSocket too (as the front door does), and
everything else on that port is untouched by the tunnel."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest

from local.websocket_tunnel import is_upgrade
from tests.sessions.support import Client, silence, speech
from tests.support.gateway_process import start_gateway

UPGRADE = (
    "GET /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    running = start_gateway(tmp_path_factory.mktemp("tunnel"))
    yield running
    running.stop()


def test_a_session_runs_at_the_gateways_origin(gateway):
    token = gateway.token("tess")
    url = f"ws://127.0.0.1:{gateway.port}/v1/sessions"
    client = Client(url, None, subprotocols=["voice-session", f"bearer.{token}"])
    assert client.ws.subprotocol == "voice-session"
    client.start({"audio": {"sampleRate": 16000}})
    client.stream(silence(0.3) + speech("Hello.") + silence(1.0))
    assert "hello" in client.wait_for("transcript.final")["text"].lower()
    client.wait_for("audio.ended")
    assert len(client.received.audio) > 16000  # over half a second of reply
    client.send({"type": "stop"})
    client.close()


def test_text_to_speech_streams_at_the_gateways_origin(gateway):
    token = gateway.token("tara")
    url = f"ws://127.0.0.1:{gateway.port}/v1/synthesize/ws"
    client = Client(url, None, subprotocols=["voice-synthesis", f"bearer.{token}"])
    assert client.ws.subprotocol == "voice-synthesis"
    client.send({"type": "start", "voice": "espeak:en-US", "sampleRate": 16000})
    assert client.wait_for("synthesis.started")["sampleRate"] == 16000
    client.send({"type": "text", "text": "Through the tunnel"})
    client.send({"type": "end"})
    assert client.wait_for("segment.started")["text"] == "Through the tunnel"
    assert client.wait_for("synthesis.ended")["segments"] == 1
    assert len(client.received.audio) > 16000  # over half a second of speech
    client.close()


def test_plain_requests_on_the_same_port_reach_the_functions(gateway):
    with urllib.request.urlopen(f"{gateway.base}/healthz", timeout=5) as response:  # noqa: S310
        assert json.loads(response.read()) == {"status": "ok"}
    # A GET of the sessions path that is no upgrade is the gateway's own 404.
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{gateway.base}/v1/sessions", timeout=5)  # noqa: S310
    assert missing.value.code == 404


def raw_exchange(port: int, *chunks: str, until_close: bool = False) -> bytes:
    """Send ``chunks`` one by one; return the first bytes answered, or with ``until_close``
    everything until the server closes (a head and its body may come in two segments)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for chunk in chunks:
            sock.sendall(chunk.encode())
        answer = sock.recv(4096)
        while until_close and (more := sock.recv(4096)):
            answer += more
        return answer


def test_an_upgrade_whose_head_arrives_in_pieces_is_still_tunnelled(gateway):
    answer = raw_exchange(gateway.port, UPGRADE[:9], UPGRADE[9:40], UPGRADE[40:])
    assert answer.startswith(b"HTTP/1.1 101")


def test_a_plain_request_arriving_in_pieces_is_still_served_by_the_gateway(gateway):
    request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(gateway.port, request[:3], request[3:], until_close=True)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"ok"' in answer
    sessions_lookalike = "GET /v1/sessionsx HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    assert raw_exchange(gateway.port, sessions_lookalike).startswith(b"HTTP/1.1 404")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (UPGRADE, True),
        (UPGRADE.replace("/v1/sessions", "/v1/sessions?resume=1"), True),
        (UPGRADE.replace("Upgrade: websocket", "upgrade:   WebSocket"), True),
        (UPGRADE.replace("GET", "POST"), False),
        (UPGRADE.replace("/v1/sessions", "/v1/sessionsx"), False),
        (UPGRADE.replace("/v1/sessions", "/voices"), False),
        (UPGRADE.replace("Upgrade: websocket\r\n", ""), False),
        ("GET /v1/sessions\r\n\r\n", False),
    ],
)
def test_what_counts_as_an_upgrade(head, expected):
    assert is_upgrade(head.encode().split(b"\r\n\r\n")[0], "/v1/sessions") is expected


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_refused_upgrade_is_closed_even_while_its_client_stays_connected(gateway):
    # The session service answers 400 (no Sec-WebSocket-Key) and closes; a client that then
    # neither reads nor closes must not keep the tunnel's thread and both sockets.
    refused = UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")
    before = open_descriptors(gateway.process.pid)
    clients = [socket.create_connection(("127.0.0.1", gateway.port), timeout=10) for _ in range(8)]
    try:
        for client in clients:
            client.sendall(refused.encode())
        for client in clients:
            assert client.recv(4096).startswith(b"HTTP/1.1 400")
        deadline = time.monotonic() + 5
        while open_descriptors(gateway.process.pid) > before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_descriptors(gateway.process.pid) <= before + 2
    finally:
        for client in clients:
            client.close()
