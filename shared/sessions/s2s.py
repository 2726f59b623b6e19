"""Speech-to-speech: a provider that hears the user and answers with audio by itself.

A ``SpeechToSpeechProvider`` opens one ``S2SSession`` per voice session. The pipeline's
``S2SProcessor`` streams the user's audio in and turns the provider's ``S2SEvent`` stream
(speech started/stopped, user and assistant transcripts, reply audio, response done) back
into the pipeline's frames, so the output stage, barge-in, metrics, persistence and the
protocol work exactly as for STT_TTS.

``EmbeddedS2S`` chains the local parts (VAD, turn detection, Whisper, the agent, eSpeak)
behind this interface, so the S2S path runs offline; ``shared.sessions.realtime`` holds
the OpenAI-Realtime-compatible client for production.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from shared.errors import InvalidRequestError
from shared.sessions.conversation import Conversation
from shared.sessions.frames import (
    AgentResponseEndedFrame,
    AgentResponseStartedFrame,
    AgentTextFrame,
    ErrorFrame,
    Frame,
    InputAudioFrame,
    InterruptionFrame,
    OutputAudioFrame,
    TranscriptionFrame,
    TurnCompleteFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADSpeechStartedFrame,
    VADSpeechStoppedFrame,
)
from shared.sessions.model import ConversationRole
from shared.sessions.processors import Direction, FrameProcessor, Pipeline, PipelineContext
from shared.sessions.turns import TurnParams
from shared.sessions.vad import VADParams

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    """The provider heard the user start speaking."""


@dataclass(frozen=True)
class SpeechStopped:
    """The provider heard the user stop (its turn detection ended the turn)."""


@dataclass(frozen=True)
class UserTranscript:
    """What the provider heard the user say."""

    text: str
    final: bool = True


@dataclass(frozen=True)
class ResponseStarted:
    """The provider began a reply."""


@dataclass(frozen=True)
class AssistantText:
    """A piece of the reply's transcript."""

    text: str


@dataclass(frozen=True)
class ReplyAudio:
    """A piece of reply audio (16-bit mono PCM)."""

    pcm: bytes
    sample_rate: int


@dataclass(frozen=True)
class ResponseDone:
    """The reply is complete (``text`` is its whole transcript)."""

    text: str = ""


@dataclass(frozen=True)
class S2SError:
    """The provider failed; ``fatal`` means the S2S session is unusable."""

    code: str
    message: str
    fatal: bool = False


S2SEvent = (
    SpeechStarted
    | SpeechStopped
    | UserTranscript
    | ResponseStarted
    | AssistantText
    | ReplyAudio
    | ResponseDone
    | S2SError
)


@dataclass
class S2SOptions:
    """What a provider needs to open a session (input audio is 16 kHz)."""

    context: PipelineContext
    conversation: Conversation
    user_id: str
    language: str
    voice: str | None
    instructions: str | None
    vad: VADParams
    turn: TurnParams
    interruptions: bool = True
    agent_name: str | None = None
    output_sample_rate: int = 16_000
    metadata: dict[str, object] = field(default_factory=dict)


class S2SSession(abc.ABC):
    """One voice session's link to a speech-to-speech provider."""

    @abc.abstractmethod
    async def send_audio(self, pcm: bytes) -> None:
        """Send user audio (16-bit mono PCM at 16 kHz)."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[S2SEvent]:
        """Yield the provider's events until the session closes."""

    async def interrupt(self) -> None:  # noqa: B027 - providers that cancel by themselves
        """Cancel the reply in progress (the user barged in)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the link."""


class SpeechToSpeechProvider(abc.ABC):
    """Opens S2S sessions; shared by every voice session of the process."""

    name: ClassVar[str]
    keeps_conversation: ClassVar[bool] = False
    """True when the provider records the conversation lines itself (the embedded one)."""

    @abc.abstractmethod
    async def open(self, options: S2SOptions) -> S2SSession:
        """Return a new S2S session.

        Raises:
            PlatformError: the provider cannot be reached or refused the session.
        """

    def check(self, language: str) -> None:  # noqa: B027 - most providers take any language
        """Raise ``InvalidRequestError`` when a session in ``language`` cannot run."""

    async def aclose(self) -> None:  # noqa: B027 - providers without resources need not override
        """Release shared resources."""


class S2SCatalog:
    """Speech-to-speech providers by name."""

    def __init__(self, providers: dict[str, Callable[[], SpeechToSpeechProvider]]) -> None:
        self._factories = dict(providers)
        self._built: dict[str, SpeechToSpeechProvider] = {}

    @property
    def names(self) -> list[str]:
        """Return the enabled provider names."""
        return sorted(self._factories)

    def get(self, name: str) -> SpeechToSpeechProvider:
        """Return provider ``name``, built on first use.

        Raises:
            InvalidRequestError: it is not enabled.
        """
        if name not in self._factories:
            raise InvalidRequestError(
                f"Speech-to-speech provider {name!r} is not enabled; enabled: {self.names}"
            )
        if name not in self._built:
            self._built[name] = self._factories[name]()
        return self._built[name]

    async def aclose(self) -> None:
        """Close every provider built so far."""
        built, self._built = list(self._built.values()), {}
        for provider in built:
            await provider.aclose()


# -- the pipeline stage ---------------------------------------------------------------------


class S2SProcessor(FrameProcessor):
    """Streams audio to an S2S session and turns its events into frames."""

    def __init__(self, provider: SpeechToSpeechProvider, options: S2SOptions) -> None:
        super().__init__(name="s2s")
        self._provider = provider
        self._options = options
        self._session: S2SSession | None = None
        self._turn = 0
        self._answer: list[str] = []

    async def setup(self, context: PipelineContext) -> None:
        await super().setup(context)
        self._turn = context.turns_before
        self._session = await self._provider.open(self._options)
        context.tasks.spawn(self._read_events(self._session), "s2s-events")

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, InputAudioFrame) and direction is Direction.DOWNSTREAM:
            if self._session is not None:
                await self._session.send_audio(frame.pcm)
        else:
            await self.push_frame(frame, direction)

    async def _read_events(self, session: S2SSession) -> None:
        async for item in session.events():
            await self._on_event(item, session)

    async def _on_event(self, item: S2SEvent, session: S2SSession) -> None:
        context, conversation = self.context, self._options.conversation
        if isinstance(item, SpeechStarted):
            await self.push_frame(VADSpeechStartedFrame(stream_seconds=0.0))
            busy = context.bot_busy()
            if busy and not self._options.interruptions:
                return
            self._turn += 1
            if busy:
                await session.interrupt()
                await self.push_frame(InterruptionFrame())
            await self.push_frame(UserStartedSpeakingFrame(turn=self._turn))
        elif isinstance(item, SpeechStopped):
            now = context.clock()
            await self.push_frame(VADSpeechStoppedFrame(stream_seconds=0.0))
            context.mark(self._turn, "speech_ended", now)
            context.mark(self._turn, "turn_ended", now)
            await self.push_frame(UserStoppedSpeakingFrame(turn=self._turn, speech_ended=now))
        elif isinstance(item, UserTranscript):
            if item.final and item.text.strip() and not self._provider.keeps_conversation:
                conversation.add(ConversationRole.USER, item.text.strip())
            await self.push_frame(
                TranscriptionFrame(text=item.text, final=item.final, turn=self._turn)
            )
        elif isinstance(item, ResponseStarted):
            self._answer = []
            context.mark(self._turn, "agent_started")
            await self.push_frame(AgentResponseStartedFrame(turn=self._turn))
        elif isinstance(item, AssistantText):
            context.mark(self._turn, "agent_first_token")
            self._answer.append(item.text)
            await self.push_frame(AgentTextFrame(text=item.text, turn=self._turn))
        elif isinstance(item, ReplyAudio):
            await self.push_frame(OutputAudioFrame(pcm=item.pcm, sample_rate=item.sample_rate))
        elif isinstance(item, ResponseDone):
            text = item.text or "".join(self._answer)
            if text.strip() and not self._provider.keeps_conversation:
                conversation.add(ConversationRole.ASSISTANT, text.strip())
            await self.push_frame(AgentResponseEndedFrame(turn=self._turn, text=text))
            await self.push_frame(TurnCompleteFrame(turn=self._turn))
        else:
            await self.push_frame(
                ErrorFrame(code=item.code, message=item.message, fatal=item.fatal)
            )

    async def cleanup(self) -> None:
        await super().cleanup()
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()


# -- the embedded provider ------------------------------------------------------------------


class EmbeddedS2S(SpeechToSpeechProvider):
    """The local parts chained behind the S2S interface (offline S2S).

    ``build_stages`` returns the VAD -> turn -> STT -> agent -> TTS stages for the options;
    the session is that small pipeline with a sink that turns its frames into events.
    """

    name: ClassVar[str] = "embedded"
    keeps_conversation: ClassVar[bool] = True

    def __init__(
        self,
        build_stages: Callable[[S2SOptions], Awaitable[list[FrameProcessor]]],
        check_language: Callable[[str], None] | None = None,
    ) -> None:
        self._build_stages = build_stages
        self._check_language = check_language

    def check(self, language: str) -> None:
        if self._check_language is not None:
            self._check_language(language)

    async def open(self, options: S2SOptions) -> S2SSession:
        session = _EmbeddedSession(await self._build_stages(options))
        await session.start(options.context)
        return session


class _EmbeddedSession(S2SSession):
    def __init__(self, stages: list[FrameProcessor]) -> None:
        self._events: asyncio.Queue[S2SEvent | None] = asyncio.Queue()
        self._pipeline = Pipeline(stages, on_frame=self._on_frame)

    async def start(self, context: PipelineContext) -> None:
        await self._pipeline.start(context)

    async def _on_frame(self, frame: Frame) -> None:
        item = _event_of(frame)
        if item is not None:
            self._events.put_nowait(item)

    async def send_audio(self, pcm: bytes) -> None:
        await self._pipeline.queue_input(InputAudioFrame(pcm=pcm, sample_rate=16_000))

    async def events(self) -> AsyncIterator[S2SEvent]:
        while (item := await self._events.get()) is not None:
            yield item

    async def aclose(self) -> None:
        await self._pipeline.stop()
        self._events.put_nowait(None)


def _event_of(frame: Frame) -> S2SEvent | None:
    if isinstance(frame, UserStartedSpeakingFrame):
        return SpeechStarted()
    if isinstance(frame, UserStoppedSpeakingFrame):
        return SpeechStopped()
    if isinstance(frame, TranscriptionFrame):
        return UserTranscript(frame.text, frame.final)
    if isinstance(frame, AgentResponseStartedFrame):
        return ResponseStarted()
    if isinstance(frame, AgentTextFrame):
        return AssistantText(frame.text)
    if isinstance(frame, OutputAudioFrame):
        return ReplyAudio(frame.pcm, frame.sample_rate)
    if isinstance(frame, TurnCompleteFrame):
        return ResponseDone()
    if isinstance(frame, ErrorFrame):
        return S2SError(frame.code, frame.message, frame.fatal)
    return None
