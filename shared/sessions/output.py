"""The output stage: reply audio to the client at playback pace, and who is speaking.

Audio goes out in small chunks no further than ``lead_seconds`` ahead of real time, so the
client never holds more than that in its playback buffer and a barge-in silences the bot
within about that much (the interruption cancels this stage's pacing at once, and the
client is told to flush what it holds). The stage reports ``BotStartedSpeakingFrame`` with
the first chunk of a reply, ``BotStoppedSpeakingFrame`` when the last chunk has played
(or was cut off), then ``TurnFinishedFrame``; each goes both downstream (to the session)
and upstream (so turn detection and recognition know).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from shared.audio.pcm import resample
from shared.sessions.frames import (
    AgentResponseStartedFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    OutputAudioFrame,
    SystemFrame,
    TurnCompleteFrame,
    TurnFinishedFrame,
)
from shared.sessions.processors import Direction, FrameProcessor


class AudioOutput(Protocol):
    """Where reply audio goes (the transport)."""

    async def send_audio(self, pcm: bytes) -> None:
        """Send one chunk of 16-bit mono PCM at the session's output rate."""
        ...


class OutputProcessor(FrameProcessor):
    """Paces reply audio out to ``output``; see the module docstring."""

    def __init__(
        self,
        output: AudioOutput,
        *,
        sample_rate: int,
        chunk_seconds: float = 0.04,
        lead_seconds: float = 0.25,
    ) -> None:
        super().__init__(name="output")
        self._output = output
        self._sample_rate = sample_rate
        self._chunk_bytes = max(2, int(sample_rate * chunk_seconds) * 2)
        self._lead = lead_seconds
        self._turn = 0
        self._speaking = False
        self._playback_started = 0.0
        self._sent_seconds = 0.0

    async def queue_frame(self, frame: Frame, direction: Direction) -> None:
        """Queue reply audio and the turn's end (they wait for playback); pass the rest at once.

        Text and transcripts must not wait behind seconds of paced audio.
        """
        paced = isinstance(frame, OutputAudioFrame | TurnCompleteFrame)
        if paced or isinstance(frame, SystemFrame) or direction is Direction.UPSTREAM:
            await super().queue_frame(frame, direction)
        else:
            await self._process_guarded(frame, direction)

    @property
    def speaking(self) -> bool:
        """Return whether a reply is playing."""
        return self._speaking

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if direction is Direction.UPSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, AgentResponseStartedFrame):
            self._turn = frame.turn
            await self.push_frame(frame)
        elif isinstance(frame, OutputAudioFrame):
            await self._play(frame)
        elif isinstance(frame, TurnCompleteFrame):
            await self._finish(frame.turn)
        else:
            await self.push_frame(frame, direction)

    async def _both_ways(self, frame: Frame) -> None:
        await self.push_frame(frame, Direction.DOWNSTREAM)
        await self.push_frame(frame, Direction.UPSTREAM)

    async def _play(self, frame: OutputAudioFrame) -> None:
        pcm = resample(frame.pcm, frame.sample_rate, self._sample_rate)
        clock = self.context.clock
        if not self._speaking:
            self._speaking = True
            self._playback_started, self._sent_seconds = clock(), 0.0
            self.context.mark(self._turn, "first_audio")
            await self._both_ways(BotStartedSpeakingFrame(turn=self._turn))
        for start in range(0, len(pcm), self._chunk_bytes):
            ahead = self._sent_seconds - (clock() - self._playback_started)
            if ahead > self._lead:
                await asyncio.sleep(ahead - self._lead)
            chunk = pcm[start : start + self._chunk_bytes]
            await self._output.send_audio(chunk)
            self._sent_seconds += len(chunk) / 2 / self._sample_rate

    async def _finish(self, turn: int) -> None:
        if self._speaking:
            remaining = self._sent_seconds - (self.context.clock() - self._playback_started)
            if remaining > 0:
                await asyncio.sleep(remaining)
            self._speaking = False
            await self._both_ways(BotStoppedSpeakingFrame(turn=turn))
        await self._both_ways(TurnFinishedFrame(turn=turn))

    async def on_interrupted(self) -> None:
        if self._speaking:
            self._speaking = False
            await self._both_ways(BotStoppedSpeakingFrame(turn=self._turn, interrupted=True))
