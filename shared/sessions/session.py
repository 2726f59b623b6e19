"""A live voice session: its pipeline, its state machine, its events and its persistence.

``LiveSession`` builds the pipeline for its config, feeds it the user's audio (resampled to
16 kHz), and turns what reaches the end of the pipeline into protocol events and pipeline
state moves: listening -> processing when the user's turn ends, -> speaking with the first
reply audio, -> listening when the reply has played, was cut off, or there was nothing to
say. After every turn the session (config, conversation, state) is saved, so a client that
reconnects — here or on another instance — resumes it; ``close`` either completes the
session (it is deleted: completed sessions are ephemeral) or leaves it resumable.

Closing cancels and awaits every task the session started. Nothing in the session blocks
the event loop on I/O: store calls run on threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import soxr  # type: ignore[import-untyped]  # no type hints shipped

from shared.errors import InvalidStateTransitionError
from shared.model import utcnow
from shared.sessions.agents import AgentContext
from shared.sessions.config import SessionConfig
from shared.sessions.conversation import Conversation
from shared.sessions.frames import (
    AgentResponseEndedFrame,
    AgentTextFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    EventFrame,
    Frame,
    InputAudioFrame,
    InterruptionFrame,
    MetricsFrame,
    TranscriptionFrame,
    TurnFinishedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADSpeechStartedFrame,
    VADSpeechStoppedFrame,
)
from shared.sessions.metrics import turn_metrics
from shared.sessions.model import (
    ConversationLine,
    PipelineState,
    UserConnection,
    VoiceSession,
)
from shared.sessions.pipeline import SessionParts, build_stages
from shared.sessions.processors import Pipeline, PipelineContext, SessionTasks
from shared.sessions.protocol import CloseCode, check_metadata, error_event, event
from shared.sessions.repository import SessionTakenOverError
from shared.sessions.services import SessionServices
from shared.sessions.transport import SessionTransport
from shared.sessions.tts import VoiceChoice
from shared.sessions.vad import VAD_SAMPLE_RATE

logger = logging.getLogger(__name__)

BUSY_STATES = (PipelineState.PROCESSING, PipelineState.SPEAKING)


class SessionEngine(Protocol):
    """What turns a session's input audio into its frames: our ``Pipeline``, or another
    framework's pipeline behind the same three calls (``shared.sessions.pipecat_backend``)."""

    async def start(self, context: PipelineContext) -> None:
        """Start processing within ``context``."""
        ...

    async def queue_input(self, frame: Frame) -> None:
        """Feed one frame of input audio."""
        ...

    async def stop(self) -> None:
        """Stop and release everything started."""
        ...


EngineFactory = Callable[
    [SessionConfig, SessionServices, SessionParts, Callable[[Frame], Awaitable[None]]],
    SessionEngine,
]


class _InputResampler:
    """Client-rate PCM to the pipeline's 16 kHz, keeping filter state across frames."""

    def __init__(self, rate: int) -> None:
        self._stream = (
            None
            if rate == VAD_SAMPLE_RATE
            else soxr.ResampleStream(rate, VAD_SAMPLE_RATE, 1, dtype="int16")
        )

    def convert(self, pcm: bytes) -> bytes:
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2")
        return bytes(np.asarray(self._stream.resample_chunk(samples), dtype="<i2").tobytes())


class LiveSession:
    """One running session; see the module docstring."""

    def __init__(
        self,
        *,
        record: VoiceSession,
        config: SessionConfig,
        services: SessionServices,
        transport: SessionTransport,
        connection: UserConnection,
        resumed: bool,
        on_closed: Callable[[LiveSession], None] = lambda session: None,
        build_engine: EngineFactory | None = None,
    ) -> None:
        self.id = record.id
        self.config = config
        self.connection = connection
        self.resumed = resumed
        self.tasks = SessionTasks(record.id)
        # A config given on resume replaces the stored one: the next resume gets it too.
        self._record = record.model_copy(
            update={"pipeline_state": PipelineState.IDLE, "config": config.to_document()}
        )
        self._services = services
        self._transport = transport
        self._on_closed = on_closed
        self._audio_started: float | None = None  # when the first audio frame came
        self._audio_seconds = 0.0  # how much audio came since
        self.conversation = Conversation(record.history)
        self._turns = record.turn_count  # the user's turns so far: the latest one's number
        self._context = PipelineContext(
            session_id=record.id,
            tasks=self.tasks,
            bot_busy=self._bot_busy,
            turns_before=record.turn_count,
        )
        self._resampler = _InputResampler(config.audio.sample_rate)
        self._pipeline: SessionEngine | None = None
        self._build_engine = build_engine
        self._last_activity = time.monotonic()
        self._closing = False
        self._closed = asyncio.Event()
        self._persist_lock = asyncio.Lock()
        self._stage_figures: dict[int, dict[str, float]] = {}

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> PipelineState:
        """Return the pipeline state."""
        return self._record.pipeline_state

    @property
    def record(self) -> VoiceSession:
        """Return the session entity as it would be stored now."""
        return self._record.model_copy(
            update={"history": self.conversation.lines, "turn_count": self._turns}
        )

    @property
    def closed(self) -> bool:
        """Return whether the session has finished closing."""
        return self._closed.is_set()

    def _bot_busy(self) -> bool:
        return self.state in BUSY_STATES

    async def _move(self, target: PipelineState) -> None:
        if self.state is target:
            return
        previous = self.state
        try:
            self._record = self._record.move_to(target, utcnow())
        except InvalidStateTransitionError:
            logger.warning(
                "Ignored an impossible session state move",
                extra={"fields": {"sessionId": self.id, "from": previous, "to": target}},
            )
            return
        await self._send(event("state", state=target.value, previous=previous.value))

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Build and start the pipeline, listen, persist, and tell the client.

        Raises:
            PlatformError: a stage could not start (the session is closed again).
        """
        voice = await self._resolve_voice()
        parts = SessionParts(
            context=self._context,
            conversation=self.conversation,
            output=self._transport,
            user_id=self.connection.user_id,
            voice=voice,
            agent_context=self._agent_context,
            playback_lead_seconds=self._services.playback_lead_seconds,
        )
        if self._build_engine is None:
            self._pipeline = Pipeline(
                build_stages(self.config, self._services, parts), on_frame=self._on_frame
            )
        else:
            self._pipeline = self._build_engine(self.config, self._services, parts, self._on_frame)
        try:
            await self._pipeline.start(self._context)
        except BaseException:
            await self._pipeline.stop()
            await self.tasks.close()
            raise
        await self._send(
            event(
                "session.started",
                sessionId=self.id,
                resumed=self.resumed,
                config=self.config.to_document(),
                voice=f"{voice.provider}:{voice.voice_id}",
                history=[line.to_api() for line in self.conversation.lines],
            )
        )
        await self._move(PipelineState.LISTENING)
        self.tasks.spawn(self._watch_idle(), "idle")

    async def _resolve_voice(self) -> VoiceChoice:
        """Return the voice the session speaks with.

        With no voice named, the user's active model or the default voice speaks, unless the
        config named ``ttsProvider`` and that voice is another provider's: then that
        provider's default voice for the session's language does. Otherwise the config (and
        so the stored record, saved at once) names the provider that speaks, so a resume
        keeps it.
        """
        voices = self._services.voices
        voice = await voices.resolve(self.connection.user_id, self.config.voice)
        pipeline = self.config.pipeline
        if self.config.voice is not None or pipeline.tts_provider in (None, voice.provider):
            return voice
        if self.config.tts_provider_named:
            return await voices.default_of(pipeline.tts_provider, self.config.language)
        spoken = pipeline.model_copy(update={"tts_provider": voice.provider})
        self.config = self.config.model_copy(update={"pipeline": spoken})
        self._record = self._record.model_copy(update={"config": self.config.to_document()})
        # Stored before the client hears of the session: a resume straight after a dropped
        # connection reads the stored config before the dropped session's last save.
        await self._persist()
        return voice

    def _agent_context(self, history: tuple[ConversationLine, ...]) -> AgentContext:
        return AgentContext(
            session_id=self.id,
            user_id=self.connection.user_id,
            history=history,
            language=self.config.language,
            system_prompt=self.config.agent.system_prompt,
            metadata=dict(self._record.metadata),
        )

    async def push_audio(self, pcm: bytes) -> None:
        """Feed one frame of client audio (client rate) into the pipeline.

        Audio running more than ``max_audio_ahead_seconds`` ahead of real time (a file
        replayed at full speed) waits here until real time catches up: the connection
        reads no more meanwhile, so the client is slowed by its own socket and nothing
        piles up in the pipeline's queues.
        """
        if self._pipeline is None or self._closing:
            return
        converted = self._resampler.convert(pcm)
        if not converted:
            return
        now = time.monotonic()
        if self._audio_started is None:
            self._audio_started = now
        self._audio_seconds += len(converted) / (2 * VAD_SAMPLE_RATE)
        ahead = self._audio_seconds - (now - self._audio_started)
        if ahead > self._services.max_audio_ahead_seconds:
            await asyncio.sleep(ahead - self._services.max_audio_ahead_seconds)
        await self._pipeline.queue_input(
            InputAudioFrame(pcm=converted, sample_rate=VAD_SAMPLE_RATE)
        )

    def touch(self) -> None:
        """Note client activity (a message, or speech), postponing the idle timeout."""
        self._last_activity = time.monotonic()

    async def update_metadata(self, changes: dict[str, Any]) -> None:
        """Merge ``changes`` into the metadata (None removes a key), persist, confirm.

        Raises:
            ProtocolError: the merged metadata is not metadata a session may hold.
        """
        metadata = dict(self._record.metadata)
        for key, value in changes.items():
            if value is None:
                metadata.pop(key, None)
            else:
                metadata[key] = value
        check_metadata(metadata)
        self._record = self._record.model_copy(update={"metadata": metadata})
        self.tasks.spawn(self._persist(), "persist")
        await self._send(event("metadata.updated", metadata=metadata))

    async def close(
        self, *, complete: bool, code: CloseCode | None = None, reason: str = ""
    ) -> None:
        """Stop the pipeline and every task; complete (forget) or keep the session resumable.

        With ``code``, the connection is closed too. Safe to call more than once.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            if self._pipeline is not None:
                await self._pipeline.stop()
            await self.tasks.close()
            await self._save_final(complete)
            self._services.metrics.sessions_closed.labels(str(int(code)) if code else "none").inc()
            if code is not None:
                await self._send(event("session.ended", reason=reason or code.name.lower()))
                await self._transport.close(int(code), reason)
        finally:
            self._closed.set()
            self._on_closed(self)

    def request_close(self, *, complete: bool, code: CloseCode, reason: str) -> None:
        """Close from inside the session (a stage or the idle watch) on a fresh task."""
        if self._closing:
            return
        loop = asyncio.get_running_loop()
        task = loop.create_task(
            self.close(complete=complete, code=code, reason=reason), name=f"close:{self.id}"
        )
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)

    async def _watch_idle(self) -> None:
        timeout = self._services.idle_timeout_seconds
        while True:
            remaining = self._last_activity + timeout - time.monotonic()
            if remaining <= 0 and not self._bot_busy():
                self.request_close(
                    complete=True, code=CloseCode.IDLE_TIMEOUT, reason="idle timeout"
                )
                return
            await asyncio.sleep(max(remaining, 0.5))

    # -- persistence ------------------------------------------------------------------------

    async def _persist(self) -> None:
        async with self._persist_lock:
            record = self.record.touched(datetime.now(UTC))
            try:
                await asyncio.to_thread(self._services.repository.save, record)
            except SessionTakenOverError:
                self.request_close(
                    complete=False, code=CloseCode.TAKEN_OVER, reason="resumed elsewhere"
                )
            except Exception:
                # The store is down: the session goes on, and its next save (a turn, a
                # metadata update, the close) writes the whole record again.
                logger.exception(
                    "Could not save the session", extra={"fields": {"sessionId": self.id}}
                )

    async def _save_final(self, complete: bool) -> None:
        async with self._persist_lock:
            record = self.record.touched(datetime.now(UTC))
            if complete:
                record = record.complete(datetime.now(UTC))
            try:
                await asyncio.to_thread(self._services.repository.save, record)
            except SessionTakenOverError:
                pass  # another connection owns it now: nothing of ours to save or delete
            except Exception:
                logger.exception(
                    "Could not save the session", extra={"fields": {"sessionId": self.id}}
                )

    # -- frames to events -------------------------------------------------------------------

    async def _send(self, payload: dict[str, Any]) -> None:
        await self._transport.send_event(payload)

    async def _on_frame(self, frame: Frame) -> None:
        if isinstance(frame, VADSpeechStartedFrame | VADSpeechStoppedFrame):
            self.touch()
            kind = "started" if isinstance(frame, VADSpeechStartedFrame) else "stopped"
            await self._send(event(f"vad.speech_{kind}", streamSeconds=frame.stream_seconds))
        elif isinstance(frame, UserStartedSpeakingFrame):
            self.touch()
            self._turns = max(self._turns, frame.turn)
            await self._send(event("turn.started", turn=frame.turn))
        elif isinstance(frame, UserStoppedSpeakingFrame):
            await self._send(event("turn.ended", turn=frame.turn))
            await self._move(PipelineState.PROCESSING)
        elif isinstance(frame, InterruptionFrame):
            await self._send(event("interruption", flush=True))
            await self._finish_turn(interrupted=True)
        elif isinstance(frame, TurnFinishedFrame):
            await self._finish_turn(interrupted=False, turn=frame.turn)
        else:
            await self._on_reply_frame(frame)

    async def _on_reply_frame(self, frame: Frame) -> None:
        if isinstance(frame, TranscriptionFrame):
            kind = "transcript.final" if frame.final else "transcript.partial"
            await self._send(event(kind, text=frame.text, turn=frame.turn))
        elif isinstance(frame, AgentTextFrame):
            await self._send(event("agent.text", text=frame.text, turn=frame.turn))
        elif isinstance(frame, AgentResponseEndedFrame):
            await self._send(event("agent.done", text=frame.text, turn=frame.turn))
        elif isinstance(frame, BotStartedSpeakingFrame):
            await self._move(PipelineState.SPEAKING)
            await self._send(
                event("audio.started", turn=frame.turn, sampleRate=self.config.audio.output_rate)
            )
        elif isinstance(frame, BotStoppedSpeakingFrame):
            await self._send(event("audio.ended", turn=frame.turn, interrupted=frame.interrupted))
        elif isinstance(frame, MetricsFrame):
            self._stage_figures.setdefault(frame.turn, {}).update(frame.values)
        elif isinstance(frame, ErrorFrame):
            self._services.metrics.errors_total.labels(frame.code).inc()
            await self._send(error_event(frame.code, frame.message, fatal=frame.fatal))
            if frame.fatal:
                self.request_close(complete=False, code=CloseCode.INTERNAL_ERROR, reason=frame.code)
        elif isinstance(frame, EventFrame):
            await self._send(frame.payload)

    async def _finish_turn(self, *, interrupted: bool, turn: int | None = None) -> None:
        if self.state not in BUSY_STATES:
            return
        await self._move(PipelineState.LISTENING)
        self.tasks.spawn(self._persist(), "persist")
        marks = self._context.turn_marks
        turn = max(marks) if turn is None and marks else turn
        if turn is not None:
            figures = turn_metrics(marks.pop(turn, {}))
            for older in [number for number in marks if number < turn]:
                marks.pop(older)
            await self._report(turn, figures, interrupted)

    async def _report(self, turn: int, figures: dict[str, float], interrupted: bool) -> None:
        self._services.metrics.observe_turn(figures, interrupted=interrupted)
        stages = self._stage_figures.pop(turn, {})
        fields = {f"{_camel(name)}Ms": round(value * 1000, 1) for name, value in figures.items()}
        logger.info(
            "Turn metrics",
            extra={
                "fields": {
                    "sessionId": self.id,
                    "turn": turn,
                    "interrupted": interrupted,
                    **fields,
                    **{_camel(name): value for name, value in stages.items()},
                }
            },
        )
        await self._send(event("turn.metrics", turn=turn, interrupted=interrupted, **fields))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_CLOSING: set[asyncio.Task[None]] = set()
"""Close tasks started from inside sessions, kept referenced until they finish."""
