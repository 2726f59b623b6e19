"""Voice backends: where sessions run (the seed's ``VoiceBackend``), and the native one.

A backend has a connection state (disconnected -> connecting -> connected, error ->
reconnecting -> connected; only the seed's moves), a health status, a session limit from
its provider's capabilities, and the sessions running on it. ``NativeBackend`` runs our own
asyncio pipeline in this process: "connecting" loads what sessions share (the speech
model), health is unhealthy unless connected, degraded when the instance is nearly full or
when speech recognition is backlogged.

The session limit counts this instance's sessions, on all its backends together: each
Cloud Run instance has its own CPU, so capacity is per instance; a refused client
reconnects and lands on another instance. It counts sessions, not connections: a resume
that will take over its user's session live or starting here replaces it, and takes no
slot of its own. One user may hold at most ``max_sessions_per_user`` of those slots,
counted the same way, so that no user can take the instance's every slot. A session holds
its slot under its own id from the moment it is let in (the limits checked and the slot
taken in one step), so it counts once while it starts and once when it runs.

The backends of one instance share one ``LiveSessions``: the sessions live here and the
slots taken, whichever backend runs each. A resume runs on the backend its config names,
which need not be the one running the session: it finds the session wherever it runs here
and takes it over (closed with 4010), one resume of a session at a time whichever backend
each names. Moved to another backend, the session keeps its one slot.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from shared.errors import InvalidRequestError, RateLimitedError, ServiceUnavailableError
from shared.model import check_transition, new_id, utcnow
from shared.sessions.config import SessionConfig, client_config_schema
from shared.sessions.model import (
    CONNECTION_TRANSITIONS,
    ConnectionState,
    HealthStatus,
    PipelineType,
    ProviderCapabilities,
    UserConnection,
    VoiceSession,
)
from shared.sessions.pipeline import check_config
from shared.sessions.services import SessionServices
from shared.sessions.session import EngineFactory, LiveSession
from shared.sessions.transport import SessionTransport
from shared.sessions.vad import silero_model

logger = logging.getLogger(__name__)

DEGRADED_FILL = 0.9


class BackendProvider(abc.ABC):
    """Makes voice backends of one kind."""

    name: ClassVar[str]
    metadata: ClassVar[dict[str, Any]] = {}

    @abc.abstractmethod
    def capabilities(self) -> ProviderCapabilities:
        """Return what this provider's backends can do."""

    def config_schema(self) -> dict[str, Any]:
        """Return the JSON Schema of the session configs this provider accepts.

        It describes what a client sends (every field optional; see
        ``client_config_schema``). The pipeline types it lists are the ones the
        provider's capabilities support (``stt_tts`` alone without s2s support), as
        ``validate_config`` checks.
        """
        schema = client_config_schema()
        if not self.capabilities().s2s_support:
            schema["$defs"]["PipelineType"]["enum"] = [PipelineType.STT_TTS.value]
        return schema

    def validate_config(self, config: SessionConfig) -> None:
        """Return None if this provider can run ``config``.

        Raises:
            InvalidRequestError: with one ``details`` entry per problem.
        """
        capabilities = self.capabilities()
        problems: list[dict[str, str]] = []
        if not capabilities.supports(config.pipeline):
            problems.append(
                {"field": "pipeline.type", "message": f"backend {self.name} cannot run s2s"}
            )
        if config.pipeline.latency_target < capabilities.min_latency:
            problems.append(
                {
                    "field": "pipeline.latencyTarget",
                    "message": f"below this backend's minimum of {capabilities.min_latency}",
                }
            )
        if (
            capabilities.supported_codecs
            and config.audio.encoding not in capabilities.supported_codecs
        ):
            problems.append({"field": "audio.encoding", "message": "codec not supported"})
        if problems:
            raise InvalidRequestError("Invalid session config", details=problems)

    @abc.abstractmethod
    async def create_backend(self, backend_id: str) -> VoiceBackend:
        """Return a new, not yet started backend."""


class SessionLimitError(ServiceUnavailableError):
    """The instance runs as many sessions as it may."""

    code: ClassVar[str] = "SESSION_LIMIT_REACHED"
    default_message: ClassVar[str] = "This server is at its session limit; try again shortly"


class UserSessionLimitError(RateLimitedError):
    """The user runs as many sessions on the instance as one user may."""

    code: ClassVar[str] = "USER_SESSION_LIMIT_REACHED"
    default_message: ClassVar[str] = (
        "You run as many sessions on this server as one user may at once; stop one first"
    )


class BackendUnavailableError(ServiceUnavailableError):
    """The backend is not connected."""

    code: ClassVar[str] = "BACKEND_UNAVAILABLE"
    default_message: ClassVar[str] = "The voice backend is not ready"


@dataclass(frozen=True)
class HealthReport:
    """A backend's health and why."""

    status: HealthStatus
    connection: ConnectionState
    active_sessions: int
    max_sessions: int
    checked_at: datetime
    details: dict[str, Any]

    def to_api(self) -> dict[str, Any]:
        """Return the report as camelCase JSON."""
        return {
            "status": self.status.value,
            "connection": self.connection.value,
            "activeSessions": self.active_sessions,
            "maxSessions": self.max_sessions,
            "checkedAt": self.checked_at.isoformat(),
            "details": self.details,
        }


class VoiceBackend(abc.ABC):
    """Runs voice sessions (the seed's interface, in asyncio)."""

    def __init__(self, backend_id: str, provider: BackendProvider) -> None:
        self.id = backend_id
        self.provider = provider
        self.created_at = utcnow()
        self.last_health_check: datetime | None = None
        self._connection = ConnectionState.DISCONNECTED
        self._sessions: dict[str, LiveSession] = {}

    @property
    def connection_state(self) -> ConnectionState:
        """Return the connection state."""
        return self._connection

    def _move(self, target: ConnectionState) -> None:
        check_transition("voice backend", CONNECTION_TRANSITIONS, self._connection, target)
        self._connection = target

    @property
    def active_session_count(self) -> int:
        """Return how many sessions run here now."""
        return len(self._sessions)

    def get_session(self, session_id: str) -> LiveSession | None:
        """Return the live session ``session_id`` on this backend, or None."""
        return self._sessions.get(session_id)

    def list_sessions(self) -> list[LiveSession]:
        """Return the live sessions."""
        return list(self._sessions.values())

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect; the backend takes sessions once connected."""

    @abc.abstractmethod
    async def reconnect(self) -> None:
        """Connect again after an error (error -> reconnecting -> connected, or error).

        Raises:
            Exception: whatever kept it from connecting; the state is ERROR again.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close every session (resumable) and disconnect."""

    @abc.abstractmethod
    async def create_session(
        self,
        config: SessionConfig,
        connection: UserConnection,
        transport: SessionTransport,
        *,
        resume_id: str | None = None,
    ) -> LiveSession:
        """Return a started session, new or resumed.

        Raises:
            SessionLimitError: the instance is full.
            UserSessionLimitError: the user runs as many sessions on the instance as one
                user may.
            BackendUnavailableError: the backend is not connected.
            SessionNotFoundError: ``resume_id`` names no resumable session of this user.
        """

    async def close_session(self, session_id: str, *, complete: bool = True) -> None:
        """Close one session (completing it unless ``complete`` is False)."""
        session = self._sessions.get(session_id)
        if session is not None:
            await session.close(complete=complete)

    @abc.abstractmethod
    async def health_check(self) -> HealthReport:
        """Return the backend's health now."""


class _KeyedLocks:
    """One asyncio lock per key, forgotten once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


Slot = tuple[str, str]
"""A session's place under the instance's limits: (session id, user id)."""


class LiveSessions:
    """The sessions live on one instance and the slots they hold, whichever of its
    backends runs each."""

    def __init__(self) -> None:
        self._sessions: dict[str, LiveSession] = {}
        # Slots of sessions being started: how many starts hold each (a new session's own
        # id; a session's resumes share its id).
        self._starting: collections.Counter[Slot] = collections.Counter()
        self._resumes = _KeyedLocks()

    def __len__(self) -> int:
        """Return how many sessions are live on the instance (``voice_sessions_active``)."""
        return len(self._sessions)

    def get(self, session_id: str) -> LiveSession | None:
        """Return the live session ``session_id``, or None."""
        return self._sessions.get(session_id)

    def add(self, session: LiveSession) -> None:
        """Record ``session`` as live (in place of any before under its id)."""
        self._sessions[session.id] = session

    def discard(self, session: LiveSession) -> None:
        """Forget ``session`` (not another that took its id over since)."""
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]

    def resuming(self, session_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Return a context in which this resume of ``session_id`` is the only one here."""
        return self._resumes.hold(session_id)

    def slots(self) -> set[Slot]:
        """Return the slots taken on the instance: its sessions live or starting."""
        taken = {(session.id, session.connection.user_id) for session in self._sessions.values()}
        taken.update(self._starting)
        return taken

    def admit(self, session_id: str, user_id: str, *, max_sessions: int, max_per_user: int) -> Slot:
        """Let session ``session_id`` of ``user_id`` in and return its slot, to
        ``release`` once it has started (or failed to).

        The limits (0: none) are checked and the slot taken in one step, nothing awaited
        between, so starts racing each other on any backends cannot pass a limit together.
        A session already live or starting here for the same user holds its slot already:
        the resume takes it over, and resumes of one session take it in turn, so together
        they hold one slot however many race, on whichever backends.

        Raises:
            UserSessionLimitError: the user runs as many sessions here as one user may.
            SessionLimitError: the instance runs as many sessions as it may.
        """
        slot = (session_id, user_id)
        taken = self.slots()
        if slot not in taken:
            users = sum(1 for _, holder in taken if holder == user_id)
            if max_per_user and users >= max_per_user:
                sessions = "1 session" if users == 1 else f"{users} sessions"
                raise UserSessionLimitError(
                    f"You already run {sessions} on this server, the most one user may at"
                    " once; stop one first"
                )
            if max_sessions and len(taken) >= max_sessions:
                raise SessionLimitError()
        self._starting[slot] += 1
        return slot

    def release(self, slot: Slot) -> None:
        """Release one start's hold on ``slot`` (the session, once live, holds it itself)."""
        self._starting[slot] -= 1
        if not self._starting[slot]:
            del self._starting[slot]


class NativeBackend(VoiceBackend):
    """Sessions as our own asyncio pipelines in this process."""

    def __init__(self, backend_id: str, provider: BackendProvider) -> None:
        assert isinstance(provider, NativeBackendProvider)
        super().__init__(backend_id, provider)
        self._services = provider.services
        self._capabilities = provider.capabilities()
        self._max_per_user = provider.max_sessions_per_user
        self._live = provider.live
        self.build_engine: EngineFactory | None = None  # None: our own pipeline

    @property
    def services(self) -> SessionServices:
        """Return the parts the sessions share."""
        return self._services

    async def start(self) -> None:
        self._move(ConnectionState.CONNECTING)
        await self._load_models()

    async def reconnect(self) -> None:
        self._move(ConnectionState.RECONNECTING)
        await self._load_models()

    async def _load_models(self) -> None:
        try:
            await asyncio.to_thread(silero_model().load)
            for name in self._services.speech.names:
                await self._services.speech.get(name).warm_up()
        except Exception:
            logger.exception("The native backend failed to load its speech models")
            self._move(ConnectionState.ERROR)
            raise
        self._move(ConnectionState.CONNECTED)

    async def stop(self) -> None:
        sessions = list(self._sessions.values())
        await asyncio.gather(
            *(session.close(complete=False) for session in sessions), return_exceptions=True
        )
        if self._connection in (ConnectionState.CONNECTED, ConnectionState.ERROR):
            self._move(ConnectionState.DISCONNECTED)

    async def create_session(
        self,
        config: SessionConfig,
        connection: UserConnection,
        transport: SessionTransport,
        *,
        resume_id: str | None = None,
    ) -> LiveSession:
        if self._connection is not ConnectionState.CONNECTED:
            raise BackendUnavailableError()
        self.provider.validate_config(config)
        check_config(config, self._services)
        slot = self._admit(resume_id or new_id(), connection.user_id)
        session_id = slot[0]
        try:
            if resume_id is None:
                session = await self._open(config, connection, transport, session_id)
            else:
                # One resume of a session at a time on this instance, whichever backend
                # each names: each takes it from the one before, started, so the last
                # claim in the store is the session that runs here.
                async with self._live.resuming(resume_id):
                    session = await self._open(
                        config, connection, transport, session_id, resume=True
                    )
        finally:
            self._live.release(slot)
        self._services.metrics.active_sessions.set(len(self._live))
        self._services.metrics.sessions_total.labels("resumed" if resume_id else "new").inc()
        return session

    def _admit(self, session_id: str, user_id: str) -> Slot:
        """Return the slot the instance lets session ``session_id`` of ``user_id`` in with
        (``LiveSessions.admit``), counting a refusal.

        Raises:
            UserSessionLimitError: the user runs as many sessions here as one user may.
            SessionLimitError: the instance runs as many sessions as it may.
        """
        try:
            return self._live.admit(
                session_id,
                user_id,
                max_sessions=self._capabilities.max_concurrent_sessions,
                max_per_user=self._max_per_user,
            )
        except UserSessionLimitError:
            self._services.metrics.sessions_refused.labels("user_limit").inc()
            raise
        except SessionLimitError:
            self._services.metrics.sessions_refused.labels("limit").inc()
            raise

    async def _open(
        self,
        config: SessionConfig,
        connection: UserConnection,
        transport: SessionTransport,
        session_id: str,
        *,
        resume: bool = False,
    ) -> LiveSession:
        if resume:
            # The user's session still live here, on any backend, saves its last state (a
            # turn, metadata) before the claim, while it owns the record: once claimed it
            # no longer could.
            await self._take_over(self._live.get(session_id), connection.user_id)
        record = await self._record_for(config, connection, session_id, resume=resume)
        await self._take_over(self._live.get(record.id), connection.user_id)
        session = LiveSession(
            record=record,
            config=config,
            services=self._services,
            transport=transport,
            connection=connection,
            resumed=resume,
            on_closed=self._forget,
            build_engine=self.build_engine,
        )
        self._sessions[session.id] = session
        self._live.add(session)
        try:
            await session.start()
        except BaseException:
            self._forget(session)
            await session.close(complete=not resume)
            raise
        return session

    @staticmethod
    async def _take_over(previous: LiveSession | None, user_id: str) -> None:
        if previous is not None and previous.connection.user_id == user_id:
            from shared.sessions.protocol import CloseCode  # noqa: PLC0415

            await previous.close(complete=False, code=CloseCode.TAKEN_OVER, reason="resumed")

    async def _record_for(
        self, config: SessionConfig, connection: UserConnection, session_id: str, *, resume: bool
    ) -> VoiceSession:
        repository = self._services.repository
        if resume:
            return await asyncio.to_thread(
                repository.claim,
                session_id,
                user_id=connection.user_id,
                connection_id=connection.connection_id,
                backend_id=self.id,
                now=utcnow(),
                config=config.to_document(),
            )
        record = VoiceSession(
            id=session_id,
            backend_id=self.id,
            user_id=connection.user_id,
            metadata=dict(config.metadata),
            config=config.to_document(),
            connection_id=connection.connection_id,
        )
        await asyncio.to_thread(repository.create, record)
        return record

    def _forget(self, session: LiveSession) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
        self._live.discard(session)
        self._services.metrics.active_sessions.set(len(self._live))

    async def health_check(self) -> HealthReport:
        now = utcnow()
        self.last_health_check = now
        limit = self._capabilities.max_concurrent_sessions
        active = len(self._sessions)
        # The limit and the recognisers are the instance's: its sessions on every backend
        # fill the one and load the other.
        instance = len(self._live.slots())
        backlog = sum(getattr(stt, "queued", 0) for stt in self._services.speech.built())
        details: dict[str, Any] = {"instanceSessions": instance, "sttBacklog": backlog}
        if self._connection is not ConnectionState.CONNECTED:
            status = HealthStatus.UNHEALTHY
        elif (limit and instance >= DEGRADED_FILL * limit) or backlog > 4 * max(1, instance):
            status = HealthStatus.DEGRADED
        else:
            status = HealthStatus.HEALTHY
        return HealthReport(status, self._connection, active, limit, now, details)


class NativeBackendProvider(BackendProvider):
    """The ``native`` provider: our own lean asyncio pipeline (the default)."""

    name: ClassVar[str] = "native"
    metadata: ClassVar[dict[str, Any]] = {
        "description": "Asyncio pipeline in the session service: VAD, turns, STT, agent, TTS",
        "version": "1",
    }

    def __init__(
        self,
        services: SessionServices,
        *,
        max_concurrent_sessions: int = 30,
        max_sessions_per_user: int = 5,
        live: LiveSessions | None = None,
    ) -> None:
        self.services = services
        self._max = max_concurrent_sessions
        self.max_sessions_per_user = max_sessions_per_user  # on the instance; 0 = unlimited
        # The providers of one instance share one: the limits count the instance's
        # sessions on every backend, and a resume finds the session on any.
        self.live = live if live is not None else LiveSessions()

    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            s2s_support=True,
            multi_user_support=True,
            session_persistence=True,
            custom_auth=False,
            custom_rate_limiting=False,
            max_concurrent_sessions=self._max,
            min_latency=timedelta(milliseconds=100),
            supported_codecs=("pcm16",),
        )

    async def create_backend(self, backend_id: str) -> NativeBackend:
        return NativeBackend(backend_id, self)
