"""The WebSocket transport at ``/v1/sessions``: authentication, messages, audio, closing.

The connection is accepted first and authenticated with the same bearer tokens as the
HTTP API (``Authorization: Bearer <token>`` on the upgrade request), so a bad token gets a
readable close code (4001) rather than a bare HTTP refusal. Browsers cannot set that
header on a WebSocket, so the token may come as a subprotocol instead: the client offers
``voice-session`` and ``bearer.<token>``, and the server selects ``voice-session`` (never
echoing the token). Then text frames are control
messages and binary frames are audio, handled by ``session.endpoint`` as for WebRTC; a
bad message gets an ``error`` event and the connection stays open. Everything sent to the
client goes through one bounded outbound queue drained by one writer task: a client that
stops reading overflows it and is closed with 4009 instead of growing the server's
memory. A disconnect without ``stop`` leaves the
session resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from prometheus_client import Counter
from starlette.websockets import WebSocket, WebSocketDisconnect

from session.endpoint import BackendFor, SessionEndpoint
from shared.auth import bearer_token
from shared.errors import PlatformError, ServiceUnavailableError, UnauthenticatedError
from shared.sessions.config import SessionDefaults
from shared.sessions.metrics import SessionMetrics
from shared.sessions.model import Transport, UserConnection
from shared.sessions.protocol import CloseCode, error_event
from shared.sessions.repository import SessionRepository
from shared.sessions.session import LiveSession

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 5.0
SUBPROTOCOL = "voice-session"
TOKEN_SUBPROTOCOL_PREFIX = "bearer."  # noqa: S105 - a protocol name prefix, not a secret


def offered_token(subprotocols: list[str]) -> str | None:
    """Return the bearer token a browser offered as a ``bearer.<token>`` subprotocol."""
    for offered in subprotocols:
        if offered.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return offered[len(TOKEN_SUBPROTOCOL_PREFIX) :]
    return None


async def authenticate(websocket: WebSocket, verifier: Any) -> str:
    """Return the user id of the bearer token in the upgrade request's ``Authorization``
    header, else in a ``bearer.<token>`` subprotocol (the header wins when both are given).

    Raises:
        UnauthenticatedError: no token, or one that is malformed, forged or expired.
        ServiceUnavailableError: the token could not be checked now.
    """
    header = websocket.headers.get("authorization")
    offered = offered_token(websocket.scope.get("subprotocols") or [])
    token = offered if header is None and offered is not None else bearer_token(header)
    principal = await asyncio.to_thread(verifier.verify, token)
    return str(principal.user_id)


async def open_authenticated(
    websocket: WebSocket,
    verifier: Any,
    *,
    subprotocol: str,
    max_buffer_bytes: int,
    errors: Counter,
) -> tuple[WebSocketTransport, str] | None:
    """Accept ``websocket`` (selecting ``subprotocol`` when offered) and authenticate it.

    Returns its bounded transport and the user id, or None once a refusal was sent: an
    error event (counted in ``errors``, the endpoint's counter of error events by code),
    then 4001 for a bad token or 1013 when the verifier is unavailable.
    """
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=subprotocol if subprotocol in offered else None)
    transport = WebSocketTransport(websocket, max_buffer_bytes=max_buffer_bytes)
    refusal: PlatformError
    try:
        return transport, await authenticate(websocket, verifier)
    except UnauthenticatedError as exc:
        refusal, close_code = exc, CloseCode.UNAUTHENTICATED
    except ServiceUnavailableError as exc:
        refusal, close_code = exc, CloseCode.TRY_AGAIN_LATER
    await transport.send_event(error_event(refusal.code, refusal.message, fatal=True))
    errors.labels(refusal.code).inc()
    await transport.close(close_code, refusal.message)
    return None


class WebSocketTransport:
    """A session's connection: a bounded outbound queue and the task that drains it."""

    kind = Transport.WEBSOCKET

    def __init__(self, websocket: WebSocket, *, max_buffer_bytes: int) -> None:
        self._websocket = websocket
        self._max_buffer = max_buffer_bytes
        self._queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._buffered = 0
        self._closed = False
        self.overflowed = asyncio.Event()
        self.close_code: int | None = None
        self._writer = asyncio.get_running_loop().create_task(self._write(), name="ws-writer")

    async def send_event(self, payload: dict[str, Any]) -> None:
        self._put(json.dumps(payload, default=str))

    async def send_audio(self, pcm: bytes) -> None:
        self._put(pcm)

    def _put(self, item: str | bytes) -> None:
        if self._closed:
            return
        size = len(item)
        if self._buffered + size > self._max_buffer:
            self.overflowed.set()
            return
        self._buffered += size
        self._queue.put_nowait(item)

    async def _write(self) -> None:
        while (item := await self._queue.get()) is not None:
            self._buffered -= len(item)
            if isinstance(item, bytes):
                await self._websocket.send_bytes(item)
            else:
                await self._websocket.send_text(item)

    async def close(self, code: int, reason: str) -> None:
        """Send what is queued, then the close frame (each within a bounded time).

        After an overflow nothing queued is sent: the client is not reading it.
        """
        if self._closed:
            return
        self._closed = True
        self.close_code = code
        self._queue.put_nowait(None)
        if not self.overflowed.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), CLOSE_TIMEOUT_SECONDS)
        await self.shutdown()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._websocket.close(code, reason[:120]), CLOSE_TIMEOUT_SECONDS)

    async def shutdown(self) -> None:
        """Stop the writer task (queued items are dropped)."""
        self._closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer


class SessionConnection:
    """Serves one WebSocket connection from accept to close."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        backend_for: BackendFor,
        verifier: Any,
        repository: SessionRepository,
        metrics: SessionMetrics,
        defaults: SessionDefaults,
        max_frame_bytes: int,
        max_buffer_bytes: int,
        idle_timeout_seconds: float,
    ) -> None:
        self._websocket = websocket
        self._backend_for = backend_for
        self._verifier = verifier
        self._repository = repository
        self._metrics = metrics
        self._defaults = defaults
        self._max_frame = max_frame_bytes
        self._max_buffer = max_buffer_bytes
        self._idle_timeout = idle_timeout_seconds
        self._endpoint: SessionEndpoint | None = None

    async def serve(self) -> None:
        """Authenticate, then handle messages until the client or the session ends."""
        opened = await open_authenticated(
            self._websocket,
            self._verifier,
            subprotocol=SUBPROTOCOL,
            max_buffer_bytes=self._max_buffer,
            errors=self._metrics.errors_total,
        )
        if opened is None:
            return
        transport, user_id = opened
        client = self._websocket.client
        endpoint = SessionEndpoint(
            transport=transport,
            connection=UserConnection(
                user_id=user_id,
                transport=Transport.WEBSOCKET,
                remote_address=client.host if client else None,
            ),
            backend_for=self._backend_for,
            repository=self._repository,
            metrics=self._metrics,
            defaults=self._defaults,
            max_frame_bytes=self._max_frame,
        )
        self._endpoint = endpoint
        overflow = asyncio.get_running_loop().create_task(self._watch_overflow(transport))
        try:
            if await self._receive_loop(endpoint) == "idle":
                message = f"No session started and no message for {self._idle_timeout:g} s"
                await endpoint.send_error("IDLE_TIMEOUT", message, fatal=True)
                await transport.close(CloseCode.IDLE_TIMEOUT, "idle timeout")
        finally:
            # A slow-consumer close already under way finishes (its code is the one that
            # counts); otherwise the watcher is no longer needed.
            if not transport.overflowed.is_set():
                overflow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await overflow
            await endpoint.close()
            await transport.shutdown()

    async def _watch_overflow(self, transport: WebSocketTransport) -> None:
        await transport.overflowed.wait()
        logger.warning("Closing a session whose client stopped reading")
        session = self.session
        if session is not None:
            await session.close(
                complete=False, code=CloseCode.SLOW_CONSUMER, reason="client is not reading"
            )
        await transport.close(CloseCode.SLOW_CONSUMER, "client is not reading")

    async def _receive_loop(self, endpoint: SessionEndpoint) -> str:
        """Handle messages; return ``idle`` when no session was started and no message came
        for the idle timeout (a session watches its own idleness), else ``ended``."""
        last_message = time.monotonic()
        while True:
            waited = None
            if endpoint.session is None:
                waited = last_message + self._idle_timeout - time.monotonic()
                if waited <= 0:
                    return "idle"
            try:
                message = await asyncio.wait_for(self._websocket.receive(), waited)
            except TimeoutError:
                continue
            except (WebSocketDisconnect, RuntimeError):
                return "ended"
            if message["type"] == "websocket.disconnect":
                return "ended"
            if endpoint.session is not None and endpoint.session.closed:
                return "ended"
            data = message.get("bytes")
            text = message.get("text")
            if data is not None:
                if await endpoint.handle_audio(data):  # audio without a session is no activity
                    return "ended"
            elif text is not None:
                last_message = time.monotonic()
                if await endpoint.handle_text(text):
                    return "ended"

    @property
    def session(self) -> LiveSession | None:
        """Return the session this connection runs, if started."""
        return self._endpoint.session if self._endpoint is not None else None
