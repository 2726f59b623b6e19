"""Serving the app with uvicorn: one configuration for Cloud Run, ``make run`` and the tests.

``SessionServer`` is uvicorn's server with one change to its shutdown: before uvicorn
closes the open connections (it would send 1012 to each WebSocket), every live session is
closed with 1001 and its ``session.ended`` event, so clients know to reconnect with their
session id. Cloud Run sends SIGTERM ten seconds before it stops an instance; the graceful
shutdown stays well inside that.
"""

from __future__ import annotations

import socket

import uvicorn
from starlette.applications import Starlette

from shared.config import Settings

SHUTDOWN_SECONDS = 5


class SessionServer(uvicorn.Server):
    """uvicorn, closing sessions with 1001 before its connections."""

    def __init__(self, app: Starlette, settings: Settings, *, host: str, port: int) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                ws="websockets-sansio",
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
