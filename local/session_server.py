"""The streaming session service inside the local gateway: uvicorn on a thread of its own.

``make run`` serves the HTTP functions with waitress on the main thread; this runs the
session service's ASGI app (``session.app``) beside it on ``VOICE_SESSIONS_PORT`` (8081),
on its own event loop, sharing the gateway's platform container (one store, one set of
TTS providers, the same dev tokens). ``stop`` closes every session with 1001 (resumable)
and returns within a few seconds.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time

from session.app import create_app
from session.container import SessionContainer
from session.server import SHUTDOWN_SECONDS
from session.server import SessionServer as Uvicorn
from shared.bootstrap import Container

logger = logging.getLogger(__name__)


class SessionServer:
    """The session service on a background thread."""

    def __init__(self, platform: Container, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.container = SessionContainer(platform=platform)
        self.app = create_app(self.container)
        self._server = Uvicorn(self.app, platform.settings, host=host, port=port)
        self._thread = threading.Thread(target=self._run, name="sessions", daemon=True)
        self._failed = threading.Event()

    @property
    def url(self) -> str:
        """Return the WebSocket URL of the sessions endpoint."""
        return f"ws://{self.host}:{self.port}/v1/sessions"

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException:  # uvicorn exits through SystemExit when it cannot bind
            logger.exception("The session service stopped")
        finally:
            if not self._server.started:
                self._failed.set()

    def start(self, timeout: float = 30.0) -> bool:
        """Start serving; return False (and log why) if the port could not be taken."""
        if not _port_free(self.host, self.port):
            logger.warning(
                "Port %s is taken: the session service is not started (set VOICE_SESSIONS_PORT)",
                self.port,
            )
            return False
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._failed.is_set() or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Close the sessions (resumable), stop serving and wait for the thread."""
        if not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(timeout=SHUTDOWN_SECONDS * 2)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True
