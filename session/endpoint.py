"""One client's control messages and audio, whatever carries them (WebSocket or WebRTC).

``SessionEndpoint`` holds what both transports share once the user is authenticated: it
parses each control message (``start``, ``stop``, ``update_metadata``, ``ping``), starts
or resumes the session on the backend its config names, feeds audio frames to it, and
turns every refusal into the same ``error`` event. Anything else that goes wrong while
handling a message is an internal failure: logged, reported as ``INTERNAL_ERROR`` and
closed with 1011, the session left resumable. Every error event sent from here goes
through ``send_error``, which counts it by code (``voice_session_errors_total``); the
session counts those of its own pipeline. The transports only move bytes: the
WebSocket's text and binary frames, or WebRTC's data channel and Opus track.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from shared.errors import InvalidRequestError, PlatformError
from shared.sessions.backends import SessionLimitError, UserSessionLimitError, VoiceBackend
from shared.sessions.config import SessionConfig, SessionDefaults, parse_session_config
from shared.sessions.metrics import SessionMetrics
from shared.sessions.model import UserConnection
from shared.sessions.protocol import (
    CloseCode,
    PingMessage,
    ProtocolError,
    StartMessage,
    StopMessage,
    UpdateMetadataMessage,
    error_event,
    event,
    parse_client_message,
)
from shared.sessions.repository import SessionNotFoundError, SessionRepository
from shared.sessions.session import LiveSession
from shared.sessions.transport import SessionTransport

logger = logging.getLogger(__name__)

BackendFor = Callable[[SessionConfig], Awaitable[VoiceBackend]]
"""Returns the (started) backend that runs sessions of a config (its ``backend`` field)."""


class SessionEndpoint:
    """Handles one authenticated client's messages; see the module docstring."""

    def __init__(
        self,
        *,
        transport: SessionTransport,
        connection: UserConnection,
        backend_for: BackendFor,
        repository: SessionRepository,
        metrics: SessionMetrics,
        defaults: SessionDefaults,
        max_frame_bytes: int,
        fixed_audio: dict[str, Any] | None = None,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._backend_for = backend_for
        self._repository = repository
        self._metrics = metrics
        self._defaults = defaults
        self._max_frame = max_frame_bytes
        self._fixed_audio = fixed_audio
        self.session: LiveSession | None = None
        self._session_id: str | None = None  # the session run or being resumed, for logs

    async def handle_text(self, text: str) -> bool:
        """Handle one control message; return True when the connection should end.

        Every refusal becomes an ``error`` event; an unexpected failure ends the
        connection (see ``_fail``); cancellation still propagates.
        """
        try:
            return await self._on_text(text)
        except PlatformError as exc:
            await self.report(exc)
            return False
        except Exception:
            await self._fail()
            return True

    async def handle_audio(self, data: bytes) -> bool:
        """Feed one frame of client audio to the session; return True when the connection
        should end.

        A refused frame becomes an ``error`` event; an unexpected failure ends the
        connection (see ``_fail``); cancellation still propagates.
        """
        try:
            await self._on_audio(data)
        except PlatformError as exc:
            await self.report(exc)
        except Exception:
            await self._fail()
            return True
        return False

    async def report(self, exc: PlatformError) -> None:
        """Send ``exc`` to the client as an ``error`` event."""
        await self.send_error(exc.code, exc.message, details=exc.details or [])

    async def send_error(
        self, code: str, message: str, *, fatal: bool = False, **fields: Any
    ) -> None:
        """Send the client an ``error`` event and count it under ``code``."""
        await self._transport.send_event(error_event(code, message, fatal=fatal, **fields))
        self._metrics.errors_total.labels(code).inc()

    async def _fail(self) -> None:
        """Log the exception being handled, tell the client, and close with 1011, leaving
        the session (if one runs) resumable."""
        logger.exception(
            "A session failed unexpectedly", extra={"fields": {"sessionId": self._session_id}}
        )
        await self.send_error(
            "INTERNAL_ERROR",
            "The server failed unexpectedly; start again (resume with the sessionId)",
            fatal=True,
        )
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close(
                complete=False, code=CloseCode.INTERNAL_ERROR, reason="internal error"
            )
        await self._transport.close(CloseCode.INTERNAL_ERROR, "internal error")

    async def close(self) -> None:
        """Close the session, leaving it resumable (the client went away)."""
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close(complete=False)

    async def _on_audio(self, data: bytes) -> None:
        if self.session is None:
            raise ProtocolError("Send a start message before audio", code="NOT_STARTED")
        if len(data) > self._max_frame:
            raise ProtocolError(
                f"Audio frames may hold at most {self._max_frame} bytes",
                code="AUDIO_FRAME_TOO_LARGE",
            )
        if len(data) % 2:
            raise ProtocolError(
                "Audio frames hold whole 16-bit samples (an even number of bytes)",
                code="INVALID_AUDIO_FRAME",
            )
        await self.session.push_audio(data)

    async def _on_text(self, text: str) -> bool:
        message = parse_client_message(text)
        if isinstance(message, PingMessage):
            if self.session is not None:
                self.session.touch()
            await self._transport.send_event(event("pong", id=message.id))
        elif isinstance(message, StartMessage):
            await self._start(message)
        elif self.session is None:
            raise ProtocolError(f"Send a start message before {message.type}", code="NOT_STARTED")
        elif isinstance(message, UpdateMetadataMessage):
            self.session.touch()
            await self.session.update_metadata(message.metadata)
        elif isinstance(message, StopMessage):
            session, self.session = self.session, None
            await session.close(complete=True, code=CloseCode.NORMAL, reason="stopped")
            return True
        return False

    async def _start(self, message: StartMessage) -> None:
        if self.session is not None:
            raise ProtocolError("The session has already started", code="ALREADY_STARTED")
        raw = message.config
        if message.session_id is not None and raw is None:
            stored = await asyncio.to_thread(self._repository.get, message.session_id)
            if stored is None or stored.user_id != self._connection.user_id:
                raise SessionNotFoundError()
            raw = stored.config
        if self._fixed_audio is not None:
            raw = {**(raw or {}), "audio": self._fixed_audio}
        self._session_id = message.session_id
        try:
            config = parse_session_config(raw, self._defaults)
            backend = await self._backend_for(config)
            self.session = await backend.create_session(
                config, self._connection, self._transport, resume_id=message.session_id
            )
            self._session_id = self.session.id
        except SessionLimitError as exc:
            await self._refuse(exc, "session limit reached")
        except UserSessionLimitError as exc:
            await self._refuse(exc, "user session limit reached")
        except InvalidRequestError as exc:
            await self.send_error("INVALID_CONFIG", exc.message, details=exc.details or [])

    async def _refuse(self, exc: PlatformError, reason: str) -> None:
        """Tell the client a limit refused its session and close with 1013 (try again later)."""
        await self.send_error(exc.code, exc.message, fatal=True)
        await self._transport.close(CloseCode.TRY_AGAIN_LATER, reason)
