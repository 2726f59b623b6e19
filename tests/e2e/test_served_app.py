"""local.serving: an app served on a thread of this process answers, then stops whole."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from local.serving import Served


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/stream":  # 50 chunks, 2 ms apart
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _chunks()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def _chunks() -> Iterator[bytes]:
    for _ in range(50):
        time.sleep(0.002)
        yield b"x" * 1000


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_served_app_answers_then_its_loop_and_socket_close(
    capfd: pytest.CaptureFixture[str],
) -> None:
    for _ in range(10):  # closing from outside the loop raced its poll in some stops
        served = Served(hello, threads=2)
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"hello"
        served.close()  # the kept-alive connection is still open on the client's side
        assert not served._thread.is_alive()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", served.port), timeout=1)
        conn.close()
    assert "Bad file descriptor" not in capfd.readouterr().err


def test_many_servers_stopped_mid_response_leave_no_descriptor_and_no_error(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """waitress's own close from outside the loop fails here: its workers pull a closed
    trigger (EBADF), and descriptors closed twice belong to the next server by then."""
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    before = _open_descriptors()
    for _ in range(40):
        served = Served(hello, threads=2)
        kept = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        kept.request("GET", "/")
        assert kept.getresponse().read() == b"hello"
        left = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        left.request("GET", "/stream")
        assert len(left.getresponse().read(3000)) == 3000  # then abandoned mid-stream
        served.close()
        assert not served._thread.is_alive()
        kept.close()
        left.close()
    assert failures == []
    assert "Bad file descriptor" not in capfd.readouterr().err
    assert _open_descriptors() <= before + 2  # nothing left open per server
