"""The session service's ASGI app: the WebSocket, health, readiness, metrics, backends.

Routes: ``/v1/sessions`` (WebSocket, see the README's protocol section),
``/v1/synthesize/ws`` (WebSocket: text in pieces, audio with word timings out,
``session.text_socket``),
``POST /v1/sessions/webrtc`` (a WebRTC offer answered, ``session.webrtc``), ``/healthz``
(the process is up), ``/readyz`` (the default backend is connected and not unhealthy: 503
until the speech model has loaded; the other backends in use are reported beside it, see
``SessionService.readiness``), ``/metrics`` (Prometheus text), ``GET /v1/backends`` (the backend
providers, their capabilities and config schemas; bearer token required, each refusal
counted by its code in ``voice_backends_list_errors_total``). The backend
starts in the background at startup, so the health check answers at once; on shutdown
every session is closed with 1001 and stays resumable on another instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from session.container import SessionContainer
from session.http_errors import auth_status, error_response
from shared.auth import bearer_token
from shared.errors import InvalidRequestError, PlatformError
from shared.sessions.backends import BackendUnavailableError, VoiceBackend
from shared.sessions.config import SessionConfig
from shared.sessions.model import ConnectionState, HealthStatus
from shared.sessions.protocol import CloseCode
from shared.sessions.registry import UnknownBackendError
from shared.sessions.session import LiveSession

logger = logging.getLogger(__name__)

RECONNECT_FIRST_PAUSE_SECONDS = 1.0
RECONNECT_MAX_PAUSE_SECONDS = 30.0


class SessionService:
    """The running service: its container, its backends, and the connections it serves.

    The default backend (``VOICE_SESSIONS_BACKEND``) connects in the background at
    startup; another registered one (a session config's ``backend``) on first use. A
    default backend that fails to connect is reconnected (seed 004: error -> reconnecting
    -> connected) after pauses growing from 1 s to 30 s, so an instance whose speech model
    failed to load once becomes ready when it loads, instead of answering 503 until
    replaced.
    """

    def __init__(self, container: SessionContainer) -> None:
        self.container = container
        self.backend: VoiceBackend | None = None
        self.backends: dict[str, VoiceBackend] = {}
        self._starting: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()  # the default backend's first connect has ended
        self._lock = asyncio.Lock()
        self.connections: set[asyncio.Task[Any]] = set()
        self.peers: set[Any] = set()  # WebRTC connections (``session.webrtc``)

    async def start(self) -> None:
        """Create the default backend and connect it in the background."""
        settings = self.container.settings
        provider = self.container.backends.get(settings.sessions_backend)
        self.backend = await provider.create_backend(
            f"{provider.name}-{self.container.instance_id}"
        )
        self.backends[provider.name] = self.backend
        self._starting = asyncio.get_running_loop().create_task(self._connect(self.backend))

    async def _connect(self, backend: VoiceBackend) -> None:
        pause = RECONNECT_FIRST_PAUSE_SECONDS
        try:
            await backend.start()
        except Exception:
            logger.exception("The voice backend did not start; reconnecting in %.0f s", pause)
        finally:
            self._attempted.set()
        while backend.connection_state is ConnectionState.ERROR:
            await asyncio.sleep(pause)
            try:
                await backend.reconnect()
            except Exception:
                pause = min(pause * 2, RECONNECT_MAX_PAUSE_SECONDS)
                logger.exception("The voice backend did not reconnect; again in %.0f s", pause)

    async def wait_ready(self) -> None:
        """Wait until the default backend's first connect has ended (connected or not)."""
        if self._starting is not None:
            await self._attempted.wait()

    async def backend_for(self, config: SessionConfig) -> VoiceBackend:
        """Return the backend that runs ``config``'s sessions, started on first use.

        Raises:
            InvalidRequestError: no backend provider of that name is registered.
            BackendUnavailableError: it could not connect.
        """
        backend = self.backends.get(config.backend)
        if backend is not None:
            return backend
        try:
            provider = self.container.backends.get(config.backend)
        except UnknownBackendError:
            raise InvalidRequestError(
                "Invalid session config",
                details=[
                    {
                        "field": "backend",
                        "message": f"unknown backend; available: {self.container.backends.names}",
                    }
                ],
            ) from None
        async with self._lock:
            backend = self.backends.get(config.backend)
            if backend is None:
                backend = await provider.create_backend(
                    f"{provider.name}-{self.container.instance_id}"
                )
                try:
                    await backend.start()
                except Exception as exc:
                    logger.exception("The %s voice backend did not start", provider.name)
                    raise BackendUnavailableError() from exc
                self.backends[provider.name] = backend
        return backend

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        """Return ``/readyz``'s status and answer.

        Before the default backend is connected: 503 and ``{status: starting, connection}``.
        Then the default backend's health report (``HealthReport.to_api``) with its name as
        ``backend``, 503 when it is unhealthy, and ``otherBackends``: the report of each
        other backend a session config named (started on first use), by name.
        """
        # Only the default backend decides readiness. It runs every session whose config
        # names no backend, and the probe that gates an instance's traffic asks before any
        # other one has started. Another backend serves only the configs that name it and
        # fails those alone (BACKEND_UNAVAILABLE, tried again by the next such start): were
        # it to make the instance unready, one backend's trouble, shared by every instance,
        # would refuse every session. So it is reported, for operators, and never decides.
        backend = self.backend
        if backend is None or backend.connection_state is not ConnectionState.CONNECTED:
            state = backend.connection_state.value if backend else "none"
            return 503, {"status": "starting", "connection": state}
        report = await backend.health_check()
        others = {
            name: (await other.health_check()).to_api()
            for name, other in list(self.backends.items())
            if other is not backend
        }
        status = 503 if report.status is HealthStatus.UNHEALTHY else 200
        return status, {
            **report.to_api(),
            "backend": backend.provider.name,
            "otherBackends": others,
        }

    def live_sessions(self) -> list[LiveSession]:
        """Return every live session, on every backend."""
        return [
            session for backend in self.backends.values() for session in backend.list_sessions()
        ]

    async def close_sessions(self) -> None:
        """Close every live session with 1001 (going away); each stays resumable."""
        await asyncio.gather(
            *(
                session.close(complete=False, code=CloseCode.GOING_AWAY, reason="shutting down")
                for session in self.live_sessions()
            ),
            return_exceptions=True,
        )

    async def stop(self) -> None:
        """Close every session (resumable), then release the ports."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        await self.close_sessions()
        await asyncio.gather(*(peer.close() for peer in list(self.peers)), return_exceptions=True)
        for backend in self.backends.values():
            await backend.stop()
        await self.container.aclose()


async def _serve_tracked(service: SessionService, connection: Any) -> None:
    """Serve ``connection`` with its task in ``service.connections`` (closed at shutdown)."""
    task = asyncio.current_task()
    if task is not None:
        service.connections.add(task)
    try:
        await connection.serve()
    finally:
        if task is not None:
            service.connections.discard(task)


async def _serve_text_synthesis(websocket: WebSocket, service: SessionService) -> None:
    # Imported with the first connection: keeps the app's import light.
    from session.text_socket import TextSynthesisConnection  # noqa: PLC0415
    from session.text_synthesis import TextSynthesis  # noqa: PLC0415

    container = service.container
    connection = TextSynthesisConnection(
        websocket,
        verifier=container.verifier,
        open_synthesis=lambda user_id, start: TextSynthesis.open(
            container.synthesis, user_id, start
        ),
        max_buffer_bytes=container.settings.sessions_outbound_buffer_bytes,
        idle_timeout_seconds=container.settings.sessions_idle_timeout_seconds,
        errors=container.services.metrics.synthesize_ws_errors,
    )
    await _serve_tracked(service, connection)


def create_app(container: SessionContainer) -> Starlette:
    """Return the ASGI app serving ``container``'s sessions."""
    service = SessionService(container)
    settings = container.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    async def sessions(websocket: WebSocket) -> None:
        from session.websocket import SessionConnection  # noqa: PLC0415 - keeps app import light

        if service.backend is None:
            await websocket.close(CloseCode.TRY_AGAIN_LATER)
            return
        connection = SessionConnection(
            websocket,
            backend_for=service.backend_for,
            verifier=container.verifier,
            repository=container.services.repository,
            metrics=container.services.metrics,
            defaults=container.defaults,
            max_frame_bytes=settings.sessions_max_frame_bytes,
            max_buffer_bytes=settings.sessions_outbound_buffer_bytes,
            idle_timeout_seconds=settings.sessions_idle_timeout_seconds,
        )
        await _serve_tracked(service, connection)

    async def synthesize(websocket: WebSocket) -> None:
        await _serve_text_synthesis(websocket, service)

    async def webrtc_offer(request: Request) -> Response:
        # aiortc is imported with the first offer: WebSocket-only instances never load it.
        from session.webrtc import answer_offer  # noqa: PLC0415

        return await answer_offer(request, service)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        status, answer = await service.readiness()
        return JSONResponse(answer, status_code=status)

    async def metrics(request: Request) -> Response:
        return Response(container.services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def backends(request: Request) -> Response:
        try:
            token = bearer_token(request.headers.get("authorization"))
            await asyncio.to_thread(container.verifier.verify, token)
        except PlatformError as exc:
            container.services.metrics.backends_list_errors.labels(exc.code).inc()
            return error_response(request, exc, auth_status(exc))
        return JSONResponse({"backends": container.backends.describe()})

    app = Starlette(
        routes=[
            WebSocketRoute("/v1/sessions", sessions),
            WebSocketRoute("/v1/synthesize/ws", synthesize),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/v1/backends", backends),
            Route("/v1/sessions/webrtc", webrtc_offer, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app
