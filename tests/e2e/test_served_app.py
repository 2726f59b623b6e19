"""local.serving: an app served on a thread of this process answers, then stops whole."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from local.serving import Served


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


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
