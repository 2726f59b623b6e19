"""Real-time voice sessions (seed 004): pipeline configuration, capabilities and session state.

A session runs either a speech-to-text -> agent -> text-to-speech pipeline or a
speech-to-speech one; ``PipelineConfiguration`` refuses a pipeline missing a provider it
needs. A session's pipeline cycles idle -> listening -> processing -> speaking -> listening
and may drop to error from any of those; an active session persists across restarts until
it completes. Transition methods return a new session and raise
``InvalidStateTransitionError`` for any other move. A backend's connection follows the
seed's connecting -> connected -> disconnected cycle with error -> reconnecting -> connected
recovery, and reports healthy, degraded or unhealthy.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, model_validator

from shared.model import (
    DomainModel,
    NonNegativeCount,
    TransitionTable,
    UtcDatetime,
    check_transition,
    new_id,
    utcnow,
    with_changes,
)

DEFAULT_LATENCY_TARGET = timedelta(milliseconds=500)

ProviderName = Annotated[str, Field(min_length=1, max_length=100)]

MAX_CUSTOM_PROCESSORS = 16
"""How many custom processors a pipeline may hold: every audio frame runs through each."""


class PipelineType(StrEnum):
    """The shape of a session's audio pipeline."""

    STT_TTS = "stt_tts"
    S2S = "s2s"


class PipelineState(StrEnum):
    """What a session's pipeline is doing now."""

    IDLE = "idle"
    LISTENING = "listening"
    PROCESSING = "processing"
    SPEAKING = "speaking"
    ERROR = "error"


PIPELINE_TRANSITIONS: TransitionTable[PipelineState] = {
    PipelineState.IDLE: frozenset({PipelineState.LISTENING, PipelineState.ERROR}),
    PipelineState.LISTENING: frozenset({PipelineState.PROCESSING, PipelineState.ERROR}),
    # Back to listening without speaking: the user barged in while the reply was being
    # prepared, or the turn held no words (a cough) or the agent chose to say nothing.
    PipelineState.PROCESSING: frozenset(
        {PipelineState.SPEAKING, PipelineState.LISTENING, PipelineState.ERROR}
    ),
    PipelineState.SPEAKING: frozenset({PipelineState.LISTENING, PipelineState.ERROR}),
}
"""Legal pipeline moves (seed 004's diagram plus processing -> listening); ERROR is final."""


class PersistenceStatus(StrEnum):
    """Whether a session's state is kept: active sessions persist, completed ones do not."""

    ACTIVE = "active"
    COMPLETED = "completed"


PERSISTENCE_TRANSITIONS: TransitionTable[PersistenceStatus] = {
    PersistenceStatus.ACTIVE: frozenset({PersistenceStatus.COMPLETED}),
}
"""Legal persistence moves; COMPLETED is final."""


class CustomProcessorConfig(DomainModel):
    """A custom audio processor in a pipeline; lower ``order`` runs earlier.

    ``kind`` names the registered implementation (defaults to ``name``, so two instances of
    one kind need distinct names); ``options`` are handed to it.
    """

    model_config = ConfigDict(frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    order: NonNegativeCount = 0
    enabled: bool = True
    kind: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def implementation(self) -> str:
        """Return the registered processor kind this entry builds."""
        return self.kind or self.name


class PipelineConfiguration(DomainModel):
    """How a session's audio pipeline is assembled.

    STT_TTS needs ``stt_provider`` and ``tts_provider``; S2S needs ``s2s_provider``. When
    ``processing_order`` is given it must name every enabled component (see
    ``enabled_components``) exactly once and nothing else.
    """

    model_config = ConfigDict(frozen=True)

    type: PipelineType
    stt_provider: ProviderName | None = None
    tts_provider: ProviderName | None = None
    # The generated alias would be 's2SProvider'.
    s2s_provider: ProviderName | None = Field(default=None, alias="s2sProvider")
    vad_provider: ProviderName | None = None
    turn_detection_provider: ProviderName | None = None
    noise_cancellation_provider: ProviderName | None = None
    processing_order: tuple[str, ...] = ()
    latency_target: timedelta = DEFAULT_LATENCY_TARGET
    custom_processors: Annotated[
        tuple[CustomProcessorConfig, ...], Field(max_length=MAX_CUSTOM_PROCESSORS)
    ] = ()

    @model_validator(mode="after")
    def _is_complete(self) -> Self:
        if self.type is PipelineType.STT_TTS and not (self.stt_provider and self.tts_provider):
            raise ValueError("an stt_tts pipeline needs sttProvider and ttsProvider")
        if self.type is PipelineType.S2S and not self.s2s_provider:
            raise ValueError("an s2s pipeline needs s2sProvider")
        if self.latency_target <= timedelta(0):
            raise ValueError("latencyTarget must be greater than zero")
        names = [processor.name for processor in self.custom_processors]
        if len(names) != len(set(names)):
            raise ValueError("custom processor names must be unique")
        if self.processing_order:
            self._check_processing_order()
        return self

    def _check_processing_order(self) -> None:
        order = self.processing_order
        if len(order) != len(set(order)):
            raise ValueError("processingOrder names a component twice")
        enabled = set(self.enabled_components())
        missing = sorted(enabled - set(order))
        unknown = sorted(set(order) - enabled)
        if missing:
            raise ValueError(f"processingOrder misses enabled components: {', '.join(missing)}")
        if unknown:
            raise ValueError(f"processingOrder names components not enabled: {', '.join(unknown)}")

    def enabled_components(self) -> tuple[str, ...]:
        """Return the names of the enabled components in their default order.

        Enabled custom processors come first, by their order (they see the user's audio
        before anything else), then the built-in components ``noise_cancellation``,
        ``vad``, ``turn_detection``, then ``stt`` and ``tts`` or ``s2s``.
        """
        custom = sorted(
            (processor for processor in self.custom_processors if processor.enabled),
            key=lambda processor: processor.order,
        )
        components = [processor.name for processor in custom]
        optional = (
            ("noise_cancellation", self.noise_cancellation_provider),
            ("vad", self.vad_provider),
            ("turn_detection", self.turn_detection_provider),
        )
        components += [name for name, provider in optional if provider]
        if self.type is PipelineType.STT_TTS:
            components += ["stt", "tts"]
        else:
            components.append("s2s")
        return tuple(components)

    def effective_processing_order(self) -> tuple[str, ...]:
        """Return ``processing_order`` if given, else the default order of enabled components."""
        return self.processing_order or self.enabled_components()


class ProviderCapabilities(DomainModel):
    """What a voice backend provider can do; ``max_concurrent_sessions`` 0 means unlimited."""

    model_config = ConfigDict(frozen=True)

    s2s_support: bool = Field(default=False, alias="s2sSupport")
    multi_user_support: bool = False
    session_persistence: bool = False
    custom_auth: bool = False
    custom_rate_limiting: bool = False
    max_concurrent_sessions: NonNegativeCount = 0
    min_latency: timedelta = timedelta(0)
    supported_codecs: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _latency_not_negative(self) -> Self:
        if self.min_latency < timedelta(0):
            raise ValueError("minLatency cannot be negative")
        return self

    def supports(self, configuration: PipelineConfiguration) -> bool:
        """Return whether this provider can run ``configuration`` (S2S needs s2s support)."""
        return configuration.type is not PipelineType.S2S or self.s2s_support


class ConnectionState(StrEnum):
    """A backend's link to the service it runs sessions on."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ERROR = "error"


CONNECTION_TRANSITIONS: TransitionTable[ConnectionState] = {
    ConnectionState.DISCONNECTED: frozenset({ConnectionState.CONNECTING}),
    ConnectionState.CONNECTING: frozenset({ConnectionState.CONNECTED, ConnectionState.ERROR}),
    ConnectionState.CONNECTED: frozenset({ConnectionState.DISCONNECTED, ConnectionState.ERROR}),
    ConnectionState.ERROR: frozenset({ConnectionState.RECONNECTING, ConnectionState.DISCONNECTED}),
    ConnectionState.RECONNECTING: frozenset({ConnectionState.CONNECTED, ConnectionState.ERROR}),
}
"""Legal backend connection moves (seed 004's diagram; a failed backend may also be stopped)."""


class HealthStatus(StrEnum):
    """A backend's health: degraded still serves, unhealthy does not."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class Transport(StrEnum):
    """How a user's audio reaches a session."""

    WEBSOCKET = "websocket"
    WEBRTC = "webrtc"


class UserConnection(DomainModel):
    """A user's live link to a session; the bearer token itself is never kept."""

    user_id: Annotated[str, Field(min_length=1)]
    connection_id: Annotated[str, Field(min_length=1)] = Field(default_factory=new_id)
    transport: Transport = Transport.WEBSOCKET
    remote_address: str | None = None
    connected_at: UtcDatetime = Field(default_factory=utcnow)
    last_ping: UtcDatetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ConversationRole(StrEnum):
    """Who said a line of a conversation."""

    USER = "user"
    ASSISTANT = "assistant"


class ConversationLine(DomainModel):
    """One line of a session's conversation, kept so a reconnect resumes it."""

    model_config = ConfigDict(frozen=True)

    role: ConversationRole
    text: str
    at: UtcDatetime = Field(default_factory=utcnow)


class VoiceSession(DomainModel):
    """A voice conversation within a backend; only ACTIVE sessions are persisted.

    ``config`` is the session's validated start configuration (as sent, camelCase) and
    ``history`` its conversation so far: with them another instance can rebuild the
    pipeline when the client reconnects. ``connection_id`` names the connection that owns
    the session now; a resume hands it to the new one. ``turn_count`` counts the user's
    turns so far (answered or not): a resume numbers the next turn after them.
    """

    id: Annotated[str, Field(min_length=1)] = Field(default_factory=new_id)
    backend_id: Annotated[str, Field(min_length=1)]
    user_id: Annotated[str, Field(min_length=1)]
    pipeline_state: PipelineState = PipelineState.IDLE
    persistence_status: PersistenceStatus = PersistenceStatus.ACTIVE
    created_at: UtcDatetime = Field(default_factory=utcnow)
    last_activity: UtcDatetime = Field(default_factory=utcnow)
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    history: tuple[ConversationLine, ...] = ()
    connection_id: str | None = None
    turn_count: NonNegativeCount = 0

    @property
    def is_persistent(self) -> bool:
        """Return whether the session's state must survive restarts."""
        return self.persistence_status is PersistenceStatus.ACTIVE

    def move_to(self, state: PipelineState, now: datetime) -> Self:
        """Return the session in pipeline ``state``, last active at ``now``.

        Raises:
            InvalidStateTransitionError: the pipeline cannot move to ``state`` from its current one.
        """
        check_transition("voice session pipeline", PIPELINE_TRANSITIONS, self.pipeline_state, state)
        return with_changes(self, pipeline_state=state, last_activity=now)

    def complete(self, now: datetime) -> Self:
        """Return the session COMPLETED (no longer persisted), last active at ``now``.

        Raises:
            InvalidStateTransitionError: the session is already completed.
        """
        check_transition(
            "voice session",
            PERSISTENCE_TRANSITIONS,
            self.persistence_status,
            PersistenceStatus.COMPLETED,
        )
        return with_changes(self, persistence_status=PersistenceStatus.COMPLETED, last_activity=now)

    def touched(self, now: datetime) -> Self:
        """Return the session with ``last_activity`` set to ``now``."""
        return with_changes(self, last_activity=now)
