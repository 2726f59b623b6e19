"""Session WebSockets at the gateway's own origin: upgrades to ``/v1/sessions`` (and
``/v1/synthesize/ws``) are tunnelled.

In production the front door sends those paths to the session service and everything
else to the functions, all on one origin; locally the session service listens on a port of
its own (``VOICE_SESSIONS_PORT``). So that a page served by the gateway (the developer
console) reaches the sessions at its own origin, as it will in production, the gateway
hands every WebSocket upgrade request for those paths to the session service as a
plain TCP tunnel: the bytes already read, then both directions copied until either side
closes. waitress speaks no WebSocket, so this happens below it: a channel class whose first
read of a connection is checked for such an upgrade, and which otherwise leaves the
connection to waitress untouched (browsers open every WebSocket on a connection of its
own, so an upgrade is always a connection's first request).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Sequence
from typing import Any

from waitress.channel import HTTPChannel

logger = logging.getLogger(__name__)

# The head of a request is at most this long before the gateway decides (waitress's own
# header limit is larger, but an upgrade request is small: a token and a few headers).
MAX_HEAD_BYTES = 32 * 1024
COPY_BYTES = 64 * 1024


def is_upgrade(head: bytes, path: str) -> bool:
    """Return whether ``head`` (a request's line and headers) upgrades ``path`` to a WebSocket."""
    line, _, headers = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"GET":
        return False
    target = parts[1].split(b"?", 1)[0].decode("latin-1")
    if target != path and not target.startswith(path + "/"):
        return False
    for header in headers.split(b"\r\n"):
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"upgrade" and value.strip().lower() == b"websocket":
            return True
    return False


def tunnelling_channel(paths: Sequence[str], host: str, port: int) -> type[HTTPChannel]:
    """Return a waitress channel class that tunnels WebSocket upgrades of ``paths``."""
    request_starts = [b"GET " + path.encode() for path in paths]

    class TunnellingChannel(HTTPChannel):
        _head: bytes | None = b""  # None once the connection is known to be plain HTTP

        def received(self, data: bytes) -> bool:
            if self._head is None:
                return bool(super().received(data))
            head = self._head + data
            if not any(
                head[: min(len(head), len(start))] == start[: len(head)] for start in request_starts
            ):
                return self._plain(head)
            if b"\r\n\r\n" not in head:
                if len(head) > MAX_HEAD_BYTES:
                    return self._plain(head)
                self._head = head  # the head so far: wait for the rest
                return True
            request = head.split(b"\r\n\r\n", 1)[0]
            if not any(is_upgrade(request, path) for path in paths):
                return self._plain(head)
            self._tunnel(head)
            return True

        def _plain(self, head: bytes) -> bool:
            self._head = None
            return bool(super().received(head))

        def _tunnel(self, head: bytes) -> None:
            client = self.socket
            # Out of waitress's poll map and idle-connection sweep: the tunnel owns it now.
            self.del_channel()
            self.connected = False
            threading.Thread(
                target=_run_tunnel, args=(client, head, host, port), name="ws-tunnel", daemon=True
            ).start()

    return TunnellingChannel


def _run_tunnel(client: socket.socket, head: bytes, host: str, port: int) -> None:
    client.setblocking(True)
    try:
        upstream = socket.create_connection((host, port), timeout=10)
    except OSError:
        logger.warning(
            "The session service at %s:%s did not accept a tunnelled WebSocket", host, port
        )
        with contextlib.suppress(OSError):
            client.sendall(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        client.close()
        return
    upstream.settimeout(None)
    with contextlib.suppress(OSError):
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        upstream.sendall(head)
    except OSError:
        _close(client, upstream)
        return
    # Once the session service has closed, nothing the client sends can go anywhere: end
    # the client's connection both ways, or an idle client would hold this thread forever.
    back = threading.Thread(
        target=_copy,
        args=(upstream, client),
        kwargs={"end": socket.SHUT_RDWR},
        name="ws-tunnel-back",
        daemon=True,
    )
    back.start()
    _copy(client, upstream)
    back.join()
    _close(client, upstream)


def _copy(source: socket.socket, target: socket.socket, end: int = socket.SHUT_WR) -> None:
    """Copy ``source`` to ``target`` until ``source`` ends; then shut ``target`` down
    (``end``: its input by default, so the other side sees the end of the stream)."""
    try:
        while data := source.recv(COPY_BYTES):
            target.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(end)


def _close(*sockets: Any) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()
