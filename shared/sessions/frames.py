"""What flows through a session's pipeline: small immutable frames in three families.

The family decides how an interruption (the user barging in) treats a frame:

- ``SystemFrame``: urgent; bypasses every processor's queue and is never dropped
  (interruptions, speech start/stop, errors, metrics).
- ``DataFrame``: the content (audio, transcripts, agent text); frames still queued when an
  interruption arrives are dropped, since they belong to the reply being cut off.
- ``ControlFrame``: ordered with the data (a reply's start and end markers); dropped on
  interruption like data, unless it is also ``Uninterruptible`` (the pipeline's end).

Frames carry no behaviour; processors decide what to do with them.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


def _next_id() -> int:
    return next(_ids)


@dataclass(frozen=True, kw_only=True)
class Frame:
    """Base of every frame: a process-unique id and when it was made (monotonic seconds)."""

    id: int = field(default_factory=_next_id)
    created: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, kw_only=True)
class SystemFrame(Frame):
    """Urgent frames, handled at once and never dropped."""


@dataclass(frozen=True, kw_only=True)
class DataFrame(Frame):
    """Content frames, queued in order and dropped by an interruption."""


@dataclass(frozen=True, kw_only=True)
class ControlFrame(Frame):
    """Ordered markers, queued with the data and dropped by an interruption."""


class Uninterruptible:
    """Mixin: a queued frame of this kind survives interruptions."""


# -- audio --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AudioFrame(DataFrame):
    """16-bit little-endian mono PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int

    @property
    def duration(self) -> float:
        """Return the audio's length in seconds."""
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True, kw_only=True)
class InputAudioFrame(AudioFrame):
    """Audio from the user's microphone; ``received`` is when it arrived (monotonic)."""

    received: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, kw_only=True)
class UserAudioFrame(SystemFrame):
    """Audio inside a user turn, forwarded by the turn detector to speech recognition.

    A system frame, so it stays in order with the turn's start and stop frames.
    """

    pcm: bytes
    sample_rate: int


@dataclass(frozen=True, kw_only=True)
class OutputAudioFrame(AudioFrame):
    """Reply audio on its way to the user."""


# -- voice activity and turns ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VADSpeechStartedFrame(SystemFrame):
    """The voice activity detector heard speech begin (``stream_seconds`` into the input)."""

    stream_seconds: float


@dataclass(frozen=True, kw_only=True)
class VADSpeechStoppedFrame(SystemFrame):
    """The voice activity detector heard speech stop."""

    stream_seconds: float


@dataclass(frozen=True, kw_only=True)
class UserStartedSpeakingFrame(SystemFrame):
    """A user turn began: speech lasted at least the minimum speech duration."""

    turn: int


@dataclass(frozen=True, kw_only=True)
class UserStoppedSpeakingFrame(SystemFrame):
    """A user turn ended: silence lasted the silence timeout.

    ``speech_ended`` is when the last voiced audio arrived (monotonic), the start of the
    end-of-speech -> first-audio measure.
    """

    turn: int
    speech_ended: float


@dataclass(frozen=True, kw_only=True)
class UserPausedFrame(SystemFrame):
    """The user paused inside turn ``turn``: the turn may be over (if the silence lasts)."""

    turn: int


@dataclass(frozen=True, kw_only=True)
class UserResumedFrame(SystemFrame):
    """The user spoke again after a pause, inside the same turn."""

    turn: int


@dataclass(frozen=True, kw_only=True)
class InterruptionFrame(SystemFrame):
    """The user barged in: drop queued reply frames, cancel work in flight, flush playback."""


# -- text -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TranscriptionFrame(DataFrame):
    """Recognised user speech; ``final`` is the turn's last word, partials may follow changes."""

    text: str
    final: bool
    turn: int
    language: str | None = None


@dataclass(frozen=True, kw_only=True)
class AgentResponseStartedFrame(ControlFrame):
    """The agent began answering turn ``turn``."""

    turn: int


@dataclass(frozen=True, kw_only=True)
class AgentTextFrame(DataFrame):
    """A piece of the agent's answer, in order, as it streams."""

    text: str
    turn: int


@dataclass(frozen=True, kw_only=True)
class AgentResponseEndedFrame(ControlFrame):
    """The agent finished answering; ``text`` is the whole answer."""

    turn: int
    text: str


@dataclass(frozen=True, kw_only=True)
class TurnCompleteFrame(ControlFrame):
    """Everything for turn ``turn`` has been produced (the reply may still be playing)."""

    turn: int


# -- output side (pushed upstream by the output stage) --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BotStartedSpeakingFrame(SystemFrame):
    """The first reply audio of ``turn`` went out."""

    turn: int


@dataclass(frozen=True, kw_only=True)
class BotStoppedSpeakingFrame(SystemFrame):
    """The reply of ``turn`` finished playing (``interrupted`` when cut off)."""

    turn: int
    interrupted: bool = False


@dataclass(frozen=True, kw_only=True)
class TurnFinishedFrame(SystemFrame):
    """The reply to ``turn`` is over: played out, or there was nothing to say."""

    turn: int


# -- housekeeping ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ErrorFrame(SystemFrame):
    """A stage failed; ``fatal`` ends the session, otherwise the turn is abandoned."""

    code: str
    message: str
    fatal: bool = False


@dataclass(frozen=True, kw_only=True)
class MetricsFrame(SystemFrame):
    """A stage's measurement for the current turn (seconds), merged into the turn's metrics."""

    turn: int
    values: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class EventFrame(SystemFrame):
    """A protocol event a stage wants the client to see as is (S2S providers' extras)."""

    payload: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class EndFrame(ControlFrame, Uninterruptible):
    """The pipeline is ending; every stage finishes its queued work first."""
