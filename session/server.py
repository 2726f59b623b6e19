"""Serving the app with uvicorn: one configuration for Cloud Run, ``make run`` and the tests.

``SessionServer`` is uvicorn's server with one change to its shutdown: before uvicorn
closes the open connections (it would send 1012 to each WebSocket), every live session is
closed with 1001 and its ``session.ended`` event, so clients know to reconnect with their
session id. Cloud Run sends SIGTERM ten seconds before it stops an instance; the graceful
shutdown stays well inside that.

``WebSocketProtocol`` is uvicorn's websockets-sansio protocol with one change to closing.
uvicorn's sends wait while the connection's write buffer is over its high-water mark
(which is what fills a session's bounded outbound queue, see ``session.websocket``), and
so does its close: a close frame for a client that has stopped reading would wait behind
the unread data for as long as the client lives, holding the socket and its buffers. Here
the close returns at once; the frame goes out when the client reads again, and a
connection that cannot take it within ``CLOSE_TIMEOUT_SECONDS``, or does not finish the
closing handshake within that time, is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

from shared.config import Settings

SHUTDOWN_SECONDS = 5
CLOSE_TIMEOUT_SECONDS = 5.0


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sansio WebSocket protocol, whose close never waits on a client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_TIMEOUT_SECONDS
        # A task nothing references may be garbage-collected before it runs: kept here.
        self._deferred_close: asyncio.Task[None] | None = None

    async def send(self, message: Any) -> None:
        """Send ``message``; a close returns at once even if the client is not reading."""
        closing = (
            message["type"] == "websocket.close"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.transport.is_closing()
        )
        if closing and not self.writable.is_set():
            code = message.get("code", 1000)
            reason = message.get("reason", "") or ""
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.close_sent = True
            self._abort_unless_closed_in_time()
            self._deferred_close = self.loop.create_task(self._close_when_writable(code, reason))
            return
        await super().send(message)
        if closing:
            self._abort_unless_closed_in_time()

    async def _close_when_writable(self, code: int, reason: str) -> None:
        await self.writable.wait()  # set again when the connection is lost (or aborted)
        if self.transport.is_closing():
            return
        with contextlib.suppress(InvalidState):
            self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self._abort_unless_closed_in_time()

    def _abort_unless_closed_in_time(self) -> None:
        """Abort the connection unless the client's close frame ends it in time (uvicorn's
        own timer would close it gracefully, which waits on unread data forever)."""
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)


class SessionServer(uvicorn.Server):
    """uvicorn, closing sessions with 1001 before its connections."""

    def __init__(self, app: Starlette, settings: Settings, *, host: str, port: int) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                ws=WebSocketProtocol,
                ws_max_size=settings.sessions_max_message_bytes,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=SHUTDOWN_SECONDS,
            )
        )
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close the sessions (1001, resumable), then do uvicorn's shutdown."""
        await self._app.state.service.close_sessions()
        await super().shutdown(sockets)
