"""The speech recognition stage: one recognition stream per user turn.

A stream opens when the turn starts and is fed the turn's audio as it arrives; when the
turn ends, its final transcript is awaited on this stage's own task, so recognition never
holds up voice activity detection (and so barge-in). Interim results, when the provider has
them, go out as partial transcripts.

Audio of a turn that has not been answered yet is kept: if the user speaks again before
the reply is heard (they paused mid-sentence, then went on), the interruption cancels the
pending recognition and the next turn is recognised with that audio in front, so the agent
hears one whole request rather than its second half.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shared.sessions.frames import (
    BotStartedSpeakingFrame,
    Frame,
    MetricsFrame,
    TranscriptionFrame,
    TurnFinishedFrame,
    UserAudioFrame,
    UserPausedFrame,
    UserResumedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from shared.sessions.processors import Direction, FrameProcessor
from shared.speech import RecognitionStream, SpeechToText, SpeechToTextError, Transcript

logger = logging.getLogger(__name__)


class _FinishTurn(UserStoppedSpeakingFrame):
    """Internal: recognise the turn that just ended (queued behind earlier work)."""


class STTProcessor(FrameProcessor):
    """Runs ``provider`` over each user turn; see the module docstring."""

    def __init__(
        self,
        provider: SpeechToText,
        *,
        sample_rate: int,
        language: str,
        preemptive: bool = False,
    ) -> None:
        super().__init__(name="stt")
        self._provider = provider
        self._sample_rate = sample_rate
        self._language = language
        self._preemptive = preemptive and not provider.streaming
        self._early: asyncio.Task[Transcript] | None = None
        self._stream: RecognitionStream | None = None
        self._unanswered = bytearray()
        self._turn_audio = bytearray()

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if direction is Direction.UPSTREAM:
            if isinstance(frame, BotStartedSpeakingFrame | TurnFinishedFrame):
                self._unanswered.clear()
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStartedSpeakingFrame):
            await self._open(frame.turn)
            await self.push_frame(frame)
        elif isinstance(frame, UserAudioFrame):
            self._turn_audio.extend(frame.pcm)
            if self._stream is not None:
                self._stream.feed(frame.pcm)
        elif isinstance(frame, UserPausedFrame):
            if self._preemptive:
                await self._drop_early()
                snapshot = bytes(self._turn_audio)
                self._early = self.context.tasks.spawn(self._decode(snapshot), "stt-early")
            await self.push_frame(frame)
        elif isinstance(frame, UserResumedFrame):
            await self._drop_early()
            await self.push_frame(frame)
        elif isinstance(frame, _FinishTurn):
            await self._finish(frame.turn)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._unanswered = bytearray(self._turn_audio)
            await self.push_frame(frame)
            # Recognition runs on this stage's task, behind nothing but earlier turns.
            self.context.mark(frame.turn, "stt_started")
            self._queue.put_nowait(
                (_FinishTurn(turn=frame.turn, speech_ended=frame.speech_ended), direction)
            )
        else:
            await self.push_frame(frame, direction)

    async def _decode(self, pcm: bytes) -> Transcript:
        stream = self._provider.open_stream(sample_rate=self._sample_rate, language=self._language)
        stream.feed(pcm)
        return await stream.finish()

    async def _drop_early(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await early

    async def _open(self, turn: int) -> None:
        await self._close_stream()
        await self._drop_early()
        self._turn_audio = bytearray(self._unanswered)

        def on_partial(text: str) -> None:
            partial = TranscriptionFrame(text=text, final=False, turn=turn)
            self._queue.put_nowait((partial, Direction.DOWNSTREAM))

        self._stream = self._provider.open_stream(
            sample_rate=self._sample_rate,
            language=self._language,
            on_partial=on_partial if self._provider.streaming else None,
        )
        if self._unanswered:
            self._stream.feed(bytes(self._unanswered))

    async def _finish(self, turn: int) -> None:
        stream, self._stream = self._stream, None
        early, self._early = self._early, None
        if stream is None:
            return
        try:
            if early is not None:
                await stream.aclose()
                transcript = await early
            else:
                transcript = await stream.finish()
        except SpeechToTextError as exc:
            await self.push_error(exc.code, exc.message)
            await self.push_frame(TranscriptionFrame(text="", final=True, turn=turn))
            return
        self.context.mark(turn, "stt_ended")
        await self.push_frame(MetricsFrame(turn=turn, values={"stt_seconds": transcript.seconds}))
        await self.push_frame(
            TranscriptionFrame(
                text=transcript.text, final=True, turn=turn, language=transcript.language
            )
        )

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    async def on_interrupted(self) -> None:
        await self._close_stream()
        await self._drop_early()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._close_stream()
        await self._drop_early()
