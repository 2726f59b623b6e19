"""Our recogniser, agent and TTS as pipecat-ai services, and the bridge back to the session.

Imported only by ``shared.sessions.pipecat_backend`` when a pipecat session starts (this
module imports pipecat at its top). See that module's docstring for the pipeline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Protocol

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams as PipecatVADParams
from pipecat.frames.frames import (
    ErrorFrame as PipecatErrorFrame,
)
from pipecat.frames.frames import (
    Frame as PipecatFrame,
)
from pipecat.frames.frames import (
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.frames.frames import (
    TranscriptionFrame as PipecatTranscription,
)
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.settings import STTSettings, TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService

from shared.audio.pcm import resample
from shared.model import utcnow
from shared.providers import AudioSettings, ProviderError, SynthesisRequest, TTSProvider
from shared.sessions.agents import Agent, AgentError
from shared.sessions.conversation import APOLOGY
from shared.sessions.frames import (
    AgentResponseEndedFrame,
    AgentResponseStartedFrame,
    AgentTextFrame,
    Frame,
    InterruptionFrame,
    MetricsFrame,
    OutputAudioFrame,
    TranscriptionFrame,
    TurnCompleteFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADSpeechStartedFrame,
    VADSpeechStoppedFrame,
)
from shared.sessions.model import ConversationRole
from shared.sessions.pipeline import SessionParts
from shared.sessions.processors import PipelineContext
from shared.speech import SpeechToText, SpeechToTextError

if TYPE_CHECKING:
    from shared.sessions.config import SessionConfig


class Turns:
    """The turn numbers the engine's processors share (``current`` the latest)."""

    def __init__(self, current: int = 0) -> None:
        self.current = current


class SessionSink(Protocol):
    """Where the wrapped services hand our frames (the engine: output stage, session)."""

    async def to_session(self, frame: Frame) -> None:
        """Hand ``frame`` on."""
        ...


def vad_processor(config: SessionConfig) -> VADProcessor:
    """Return pipecat's VAD stage with the session's thresholds (stop = silence timeout)."""
    return VADProcessor(
        vad_analyzer=SileroVADAnalyzer(
            params=PipecatVADParams(
                confidence=config.vad.threshold,
                start_secs=max(config.vad.start_seconds, config.turn.min_speech_seconds),
                stop_secs=config.turn.silence_timeout_seconds,
                min_volume=0.0,
            )
        )
    )


class PlatformSTTService(SegmentedSTTService):
    """Our speech-to-text provider as a pipecat segmented STT service."""

    def __init__(
        self,
        provider: SpeechToText,
        *,
        language: str,
        context: PipelineContext,
        turns: Turns,
    ) -> None:
        # Every settings field is set (None: not a runtime setting here); pipecat logs an
        # error for each one left unset when the service starts.
        super().__init__(
            trailing_silence_secs=0.0, settings=STTSettings(model=provider.name, language=None)
        )
        self._provider = provider
        self._language = language
        self._context = context
        self._turns = turns

    @property
    def wants_wav_segments(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[PipecatFrame | None, None]:
        """Yield the final transcript of one VAD segment."""
        turn = self._turns.current
        self._context.mark(turn, "stt_started")
        stream = self._provider.open_stream(sample_rate=self.sample_rate, language=self._language)
        stream.feed(audio)
        try:
            transcript = await stream.finish()
        except SpeechToTextError as exc:
            yield PipecatErrorFrame(error=f"{exc.code}: {exc.message}")
            return
        self._context.mark(turn, "stt_ended")
        yield PipecatTranscription(
            text=transcript.text,
            user_id="",
            timestamp=utcnow().isoformat(),
            result={"turn": turn, "seconds": transcript.seconds},
        )


class PlatformAgent(FrameProcessor):
    """Our agent as a pipecat processor: a transcript in, ``LLMTextFrame``s out."""

    def __init__(
        self,
        agent: Agent,
        *,
        engine: SessionSink,
        parts: SessionParts,
        context: PipelineContext,
        turns: Turns,
    ) -> None:
        super().__init__()
        self._agent = agent
        self._engine = engine
        self._parts = parts
        self._context = context
        self._turns = turns

    async def process_frame(self, frame: PipecatFrame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, PipecatTranscription):
            await self.push_frame(frame, direction)
            return
        result = frame.result if isinstance(frame.result, dict) else {}
        turn = int(result.get("turn", self._turns.current))
        seconds = float(result.get("seconds", 0.0))
        await self._engine.to_session(MetricsFrame(turn=turn, values={"stt_seconds": seconds}))
        await self._engine.to_session(TranscriptionFrame(text=frame.text, final=True, turn=turn))
        if not frame.text.strip():
            await self._engine.to_session(TurnCompleteFrame(turn=turn))
            return
        await self.push_frame(LLMFullResponseStartFrame())

        async def emit(piece: str) -> None:
            await self.push_frame(LLMTextFrame(text=piece))

        try:
            answer = await self._answer(turn, frame.text.strip(), emit)
        except AgentError as exc:
            await self.push_frame(LLMTextFrame(text=APOLOGY))
            answer = APOLOGY
            await self.push_error(f"AGENT_FAILED: {exc.message}")
        await self.push_frame(LLMFullResponseEndFrame())
        if not answer:
            await self._engine.to_session(TurnCompleteFrame(turn=turn))

    async def _answer(self, turn: int, text: str, emit: Callable[[str], Awaitable[None]]) -> str:
        """Ask the agent about ``text``, reporting to the session; return the whole answer."""
        conversation = self._parts.conversation
        history = conversation.lines
        conversation.add(ConversationRole.USER, text)
        await self._engine.to_session(AgentResponseStartedFrame(turn=turn))
        started = time.monotonic()
        self._context.mark(turn, "agent_started", started)
        pieces: list[str] = []
        async for piece in self._agent.respond(self._parts.agent_context(history), text):
            if not pieces:
                first = time.monotonic()
                self._context.mark(turn, "agent_first_token", first)
                await self._engine.to_session(
                    MetricsFrame(turn=turn, values={"agent_ttft_seconds": first - started})
                )
            pieces.append(piece)
            await self._engine.to_session(AgentTextFrame(text=piece, turn=turn))
            await emit(piece)
        answer = "".join(pieces).strip()
        if answer:
            conversation.add(ConversationRole.ASSISTANT, answer, utcnow())
        await self._engine.to_session(AgentResponseEndedFrame(turn=turn, text=answer))
        return answer


class PlatformTTSService(TTSService):
    """Our TTS provider (the session's voice) as a pipecat TTS service."""

    def __init__(
        self,
        provider: TTSProvider,
        *,
        voice_id: str,
        language: str,
        executor: Executor,
        context: PipelineContext,
        turns: Turns,
        sample_rate: int,
    ) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            sample_rate=sample_rate,
            settings=TTSSettings(model=None, voice=voice_id, language=None),
        )
        self._provider = provider
        self._voice_id = voice_id
        self._language = language
        self._executor = executor
        self._context = context
        self._turns = turns
        self._spoken_turn = -1

    def can_generate_metrics(self) -> bool:
        return False

    async def run_tts(
        self, text: str, context_id: str
    ) -> AsyncGenerator[PipecatFrame | None, None]:
        """Yield the sentence's audio at the service's rate."""
        turn = self._turns.current
        started = time.monotonic()
        self._context.mark(turn, "tts_started", started)
        request = SynthesisRequest(
            text=text,
            voice_id=self._voice_id,
            language=self._language,
            settings=AudioSettings(sample_rate=self.sample_rate),
            want_timings=False,
        )
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self._provider.synthesize, request)
        except ProviderError as exc:
            yield PipecatErrorFrame(error=f"TTS_FAILED: {exc.message}")
            return
        if self._spoken_turn != turn:
            self._spoken_turn = turn
            ready = time.monotonic()
            self._context.mark(turn, "tts_first_byte", ready)
        pcm = resample(result.pcm, result.sample_rate, self.sample_rate)
        yield TTSAudioRawFrame(
            audio=pcm, sample_rate=self.sample_rate, num_channels=1, context_id=context_id
        )


class SessionBridge(FrameProcessor):
    """The last pipecat stage: turns, interruptions and reply audio back to the session."""

    def __init__(
        self,
        *,
        engine: SessionSink,
        context: PipelineContext,
        turns: Turns,
        interruptions: bool,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._context = context
        self._turns = turns
        self._interruptions = interruptions
        self._in_turn = False
        self._ttfb_reported = -1
        self._stream_started = time.monotonic()

    async def process_frame(self, frame: PipecatFrame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        to_session = self._engine.to_session
        elapsed = time.monotonic() - self._stream_started
        if (
            isinstance(frame, VADUserStartedSpeakingFrame)
            and direction is FrameDirection.DOWNSTREAM
        ):
            busy = self._context.bot_busy()
            await to_session(VADSpeechStartedFrame(stream_seconds=elapsed))
            if busy and not self._interruptions:
                return
            if busy:
                await self.broadcast_interruption()  # type: ignore[no-untyped-call]  # untyped
                await to_session(InterruptionFrame())
            self._turns.current += 1
            self._in_turn = True
            await to_session(UserStartedSpeakingFrame(turn=self._turns.current))
        elif (
            isinstance(frame, VADUserStoppedSpeakingFrame)
            and direction is FrameDirection.DOWNSTREAM
        ):
            await to_session(VADSpeechStoppedFrame(stream_seconds=elapsed))
            if not self._in_turn:
                return
            self._in_turn = False
            turn = self._turns.current
            speech_ended = time.monotonic() - frame.stop_secs
            self._context.mark(turn, "speech_ended", speech_ended)
            self._context.mark(turn, "turn_ended")
            await to_session(UserStoppedSpeakingFrame(turn=turn, speech_ended=speech_ended))
        elif isinstance(frame, TTSAudioRawFrame):
            turn = self._turns.current
            if self._ttfb_reported != turn:
                self._ttfb_reported = turn
                marks = self._context.turn_marks.get(turn, {})
                if "tts_started" in marks and "tts_first_byte" in marks:
                    await to_session(
                        MetricsFrame(
                            turn=turn,
                            values={
                                "tts_ttfb_seconds": marks["tts_first_byte"] - marks["tts_started"]
                            },
                        )
                    )
            await to_session(OutputAudioFrame(pcm=frame.audio, sample_rate=frame.sample_rate))
        elif isinstance(frame, TTSStoppedFrame):
            await to_session(TurnCompleteFrame(turn=self._turns.current))
        elif isinstance(frame, PipecatErrorFrame):
            await to_session(_error(frame))
        else:
            await self.push_frame(frame, direction)


def _error(frame: PipecatErrorFrame) -> Any:
    from shared.sessions.frames import ErrorFrame  # noqa: PLC0415

    code, _, message = str(frame.error).partition(": ")
    if not message:
        code, message = "STAGE_FAILED", str(frame.error)
    return ErrorFrame(code=code, message=message, fatal=False)
