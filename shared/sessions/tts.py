"""The speech synthesis stage: the agent's answer spoken sentence by sentence as it streams.

Text pieces collect in a ``SentenceBuffer``; each time a sentence is complete it is
synthesized through the TTS provider registry and its audio goes on at once, so the user
hears the first sentence while the agent is still writing the next. The voice comes from a
``VoiceResolver``: the service runs ``shared.sessions.voices.VoiceModelResolver`` (the
session's ``voice``, else the user's active voice model, else the service default);
``ConfiguredVoiceResolver`` (config or default only) serves tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from shared.errors import InvalidRequestError
from shared.providers import (
    AudioSettings,
    ProviderError,
    SynthesisRequest,
    TTSProvider,
)
from shared.sessions.frames import (
    AgentResponseEndedFrame,
    AgentResponseStartedFrame,
    AgentTextFrame,
    Frame,
    MetricsFrame,
    OutputAudioFrame,
)
from shared.sessions.processors import Direction, FrameProcessor

# A sentence ends at . ! ? (and closing quotes or brackets) followed by whitespace; a long
# run without one is cut at a clause mark so the first audio never waits for a paragraph.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s+")
_FINAL_MARK = re.compile(r"[^\W\d_][.!?…]+[\"')\]]*$")
_CLAUSE_END = re.compile(r"[,;:]\s+")
_ABBREVIATION = re.compile(r"\b(Mr|Mrs|Ms|Dr|Prof|St|vs|etc|e\.g|i\.e)\.\s+$", re.IGNORECASE)
LONG_CLAUSE_CHARS = 120


@dataclass(frozen=True)
class PlacedSentence:
    """A sentence, stripped, and where it starts in all the text added to its buffer."""

    text: str
    start: int


class SentenceBuffer:
    """Collects streamed text and hands out complete sentences."""

    def __init__(self) -> None:
        self._text = ""
        self._taken = 0  # characters of the text added before ``_text``

    def add(self, piece: str) -> list[str]:
        """Add ``piece``; return the sentences it completed, in order."""
        return [sentence.text for sentence in self.add_placed(piece)]

    def add_placed(self, piece: str) -> list[PlacedSentence]:
        """Add ``piece``; return the sentences it completed, in order, each with where it
        starts in all the text added."""
        self._text += piece
        sentences: list[PlacedSentence] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return sentences
            sentence = self._take(cut)
            if sentence.text:
                sentences.append(sentence)

    def flush(self) -> str:
        """Return whatever is left (the answer's last words) and empty the buffer."""
        return self.flush_placed().text

    def flush_placed(self) -> PlacedSentence:
        """Return whatever is left, with where it starts, and empty the buffer."""
        return self._take(len(self._text))

    def _take(self, cut: int) -> PlacedSentence:
        taken, self._text = self._text[:cut], self._text[cut:]
        start = self._taken + len(taken) - len(taken.lstrip())
        self._taken += cut
        return PlacedSentence(taken.strip(), start)

    def _next_cut(self) -> int | None:
        for match in _SENTENCE_END.finditer(self._text):
            if not _ABBREVIATION.search(self._text[: match.end()]):
                return match.end()
        # A sentence mark at the very end after a word ("now.") is released at once: the
        # next piece may be seconds away. Digits ("3.") and abbreviations wait.
        end = _FINAL_MARK.search(self._text)
        if end and not _ABBREVIATION.search(self._text + " "):
            return len(self._text)
        if len(self._text) >= LONG_CLAUSE_CHARS:
            clauses = list(_CLAUSE_END.finditer(self._text))
            if clauses:
                return clauses[-1].end()
        return None


@dataclass(frozen=True)
class VoiceChoice:
    """Which provider speaks, with which of its voices."""

    provider: str
    voice_id: str


class VoiceResolver(Protocol):
    """Chooses the voice a session speaks with."""

    async def resolve(self, user_id: str, requested: str | None) -> VoiceChoice:
        """Return the voice for ``user_id``'s session (``requested`` is the config's voice)."""
        ...

    async def default_of(self, provider: str, language: str) -> VoiceChoice:
        """Return ``provider``'s default voice for ``language``.

        Raises:
            InvalidRequestError: this service knows no such voice (name one).
        """
        ...


class ConfiguredVoiceResolver:
    """The session's voice (``provider:voice`` or a voice of the default provider), else the
    configured default; no voice models."""

    def __init__(self, default_provider: str, default_voice: str) -> None:
        self._provider = default_provider
        self._voice = default_voice

    async def resolve(self, user_id: str, requested: str | None) -> VoiceChoice:
        if not requested:
            return VoiceChoice(self._provider, self._voice)
        provider, colon, voice = requested.partition(":")
        if colon and provider and voice:
            return VoiceChoice(provider, voice)
        return VoiceChoice(self._provider, requested)

    async def default_of(self, provider: str, language: str) -> VoiceChoice:
        if provider == self._provider:
            return VoiceChoice(self._provider, self._voice)
        raise no_default_voice(provider, language)


def no_default_voice(provider: str, language: str) -> InvalidRequestError:
    """Return the error of a config naming ``ttsProvider`` without a voice it can default to."""
    return InvalidRequestError(
        "Invalid session config",
        details=[
            {
                "field": "voice",
                "message": f"no default voice of {provider} for {language} here: name one",
            }
        ],
    )


class TTSProcessor(FrameProcessor):
    """Speaks agent text as it streams; see the module docstring."""

    def __init__(
        self,
        provider: TTSProvider,
        voice: VoiceChoice,
        *,
        sample_rate: int,
        language: str | None = None,
        executor: Executor | None = None,
    ) -> None:
        super().__init__(name="tts")
        self._provider = provider
        self._voice = voice
        self._sample_rate = sample_rate
        self._language = language
        self._executor = executor
        self._buffer = SentenceBuffer()
        self._turn = 0
        self._spoken_first = False

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if direction is Direction.UPSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, AgentResponseStartedFrame):
            self._buffer, self._turn, self._spoken_first = SentenceBuffer(), frame.turn, False
            await self.push_frame(frame)
        elif isinstance(frame, AgentTextFrame):
            await self.push_frame(frame)
            for sentence in self._buffer.add(frame.text):
                await self._speak(sentence)
        elif isinstance(frame, AgentResponseEndedFrame):
            rest = self._buffer.flush()
            if rest:
                await self._speak(rest)
            await self.push_frame(frame)
        else:
            await self.push_frame(frame, direction)

    async def _speak(self, text: str) -> None:
        if not any(character.isalnum() for character in text):
            return
        request = SynthesisRequest(
            text=text,
            voice_id=self._voice.voice_id,
            language=self._language,
            settings=AudioSettings(sample_rate=self._sample_rate),
            want_timings=False,
        )
        clock = self.context.clock
        started = clock()
        self.context.mark(self._turn, "tts_started", started)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self._provider.synthesize, request)
        except ProviderError as exc:
            await self.push_error("TTS_FAILED", exc.message)
            return
        if not self._spoken_first:
            self._spoken_first = True
            ready = clock()
            self.context.mark(self._turn, "tts_first_byte", ready)
            await self.push_frame(
                MetricsFrame(turn=self._turn, values={"tts_ttfb_seconds": ready - started})
            )
        if result.pcm:
            await self.push_frame(OutputAudioFrame(pcm=result.pcm, sample_rate=result.sample_rate))

    async def on_interrupted(self) -> None:
        self._buffer = SentenceBuffer()
