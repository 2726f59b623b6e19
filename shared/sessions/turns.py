"""Turn detection: when the user has started a turn, and when they have finished it.

A turn starts once speech has lasted ``min_speech_seconds`` (shorter bursts — a cough, a
click, a "hm" — neither start a turn nor interrupt the bot) and ends after
``silence_timeout_seconds`` with no speech. Both are measured in audio time, not wall
time, so the decision depends only on the audio (a client may send faster than real time).
While a turn is open its audio goes on as ``UserAudioFrame`` (with ``pre_roll_seconds``
from before the detector fired, so no word onset is lost); at the end comes
``UserStoppedSpeakingFrame``. When a turn starts while the bot is busy (preparing or
playing a reply) and interruptions are on, an ``InterruptionFrame`` goes first: that is
barge-in. With interruptions off, speech during a reply is ignored. Inside a turn, a pause
(the VAD's stop) is announced with ``UserPausedFrame`` and speech after it with
``UserResumedFrame``, so later stages may start work before the turn is confirmed over.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.sessions.frames import (
    Frame,
    InterruptionFrame,
    UserAudioFrame,
    UserPausedFrame,
    UserResumedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADSpeechStartedFrame,
    VADSpeechStoppedFrame,
)
from shared.sessions.processors import Direction, FrameProcessor, PipelineContext
from shared.sessions.vad import VADAudioFrame

TURN_DETECTION_PROVIDERS = ("silence",)


class TurnParams(BaseModel):
    """Turn-taking settings (the ``turn`` section of a session's config)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    silence_timeout_seconds: Annotated[
        float, Field(gt=0.0, le=10.0, alias="silenceTimeoutSeconds")
    ] = 0.5
    min_speech_seconds: Annotated[float, Field(ge=0.0, le=5.0, alias="minSpeechSeconds")] = 0.2
    pre_roll_seconds: Annotated[float, Field(ge=0.0, le=2.0, alias="preRollSeconds")] = 0.3
    max_turn_seconds: Annotated[float, Field(gt=1.0, le=120.0, alias="maxTurnSeconds")] = 30.0


@dataclass
class TurnDetectionState:
    """The seed's turn detection state, as the detector keeps it."""

    silence_timeout_seconds: float
    is_listening: bool = True
    in_turn: bool = False
    turn_end_detected: bool = False
    last_speech_time: float | None = None  # monotonic arrival of the last voiced window
    turn: int = 0


class TurnDetector(FrameProcessor):
    """Opens and closes user turns from VAD windows; see the module docstring."""

    def __init__(self, params: TurnParams, *, interruptions: bool = True) -> None:
        super().__init__(name="turn_detection")
        self.params = params
        self.interruptions = interruptions
        self.state = TurnDetectionState(params.silence_timeout_seconds)
        self._window_seconds = 0.0
        self._recent: collections.deque[VADAudioFrame] = collections.deque()
        self._recent_seconds = 0.0
        self._speech_seconds = 0.0  # voiced audio since the VAD start (candidate turn)
        self._silence_seconds = 0.0
        self._turn_seconds = 0.0
        self._candidate = False
        self._paused = False

    @property
    def current_turn(self) -> int:
        """Return the number of the latest turn (``turns_before`` before the first)."""
        return self.state.turn

    async def setup(self, context: PipelineContext) -> None:
        await super().setup(context)
        self.state.turn = context.turns_before

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if not isinstance(frame, VADAudioFrame) or direction is Direction.UPSTREAM:
            await self.push_frame(frame, direction)
            return
        self._window_seconds = frame.duration
        if frame.event == "start":
            await self.push_frame(VADSpeechStartedFrame(stream_seconds=frame.stream_seconds))
        elif frame.event == "stop":
            await self.push_frame(VADSpeechStoppedFrame(stream_seconds=frame.stream_seconds))
        if frame.voiced:
            self.state.last_speech_time = frame.received
        if self.state.in_turn:
            await self._continue_turn(frame)
        else:
            await self._maybe_start_turn(frame)

    async def _maybe_start_turn(self, frame: VADAudioFrame) -> None:
        self._remember(frame)
        if frame.event == "start":
            # The VAD fired after start_seconds of voiced windows: those count already.
            self._candidate = True
            self._speech_seconds = sum(
                remembered.duration for remembered in self._recent if remembered.voiced
            ) - (frame.duration if frame.voiced else 0.0)
        if not self._candidate:
            return
        if not frame.speaking:
            self._candidate = False  # too short: a false start, not a turn
            return
        if frame.voiced:
            self._speech_seconds += frame.duration
        if self._speech_seconds < self.params.min_speech_seconds:
            return
        self._candidate = False
        busy = self.context.bot_busy()
        if busy and not self.interruptions:
            return
        self.state.turn += 1
        self.state.in_turn, self.state.turn_end_detected = True, False
        self._silence_seconds, self._paused = 0.0, False
        if busy:
            await self.push_frame(InterruptionFrame())
        await self.push_frame(UserStartedSpeakingFrame(turn=self.state.turn))
        self._turn_seconds = 0.0
        for remembered in self._recent:
            await self._forward(remembered)
        self._recent.clear()
        self._recent_seconds = 0.0

    async def _continue_turn(self, frame: VADAudioFrame) -> None:
        await self._forward(frame)
        if frame.event == "stop" and not self._paused:
            self._paused = True
            await self.push_frame(UserPausedFrame(turn=self.state.turn))
        elif frame.voiced and self._paused:
            self._paused = False
            await self.push_frame(UserResumedFrame(turn=self.state.turn))
        # Silence counts from the last voiced window, not from the VAD's (later) stop.
        self._silence_seconds = 0.0 if frame.voiced else self._silence_seconds + frame.duration
        timed_out = self._silence_seconds >= self.params.silence_timeout_seconds
        if timed_out or self._turn_seconds >= self.params.max_turn_seconds:
            await self._end_turn(frame)

    async def _end_turn(self, frame: VADAudioFrame) -> None:
        self.state.in_turn, self.state.turn_end_detected = False, True
        speech_ended = self.state.last_speech_time or frame.received
        self.context.mark(self.state.turn, "speech_ended", speech_ended)
        self.context.mark(self.state.turn, "turn_ended")
        await self.push_frame(
            UserStoppedSpeakingFrame(turn=self.state.turn, speech_ended=speech_ended)
        )

    async def _forward(self, frame: VADAudioFrame) -> None:
        self._turn_seconds += frame.duration
        await self.push_frame(UserAudioFrame(pcm=frame.pcm, sample_rate=frame.sample_rate))

    def _remember(self, frame: VADAudioFrame) -> None:
        self._recent.append(frame)
        self._recent_seconds += frame.duration
        limit = self.params.pre_roll_seconds + self.params.min_speech_seconds + 0.1
        while self._recent and self._recent_seconds - self._recent[0].duration >= limit:
            self._recent_seconds -= self._recent.popleft().duration
