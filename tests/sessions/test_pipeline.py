"""The pipeline's frame semantics, VAD, turn detection, sentence streaming and assembly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest

from shared.errors import InvalidRequestError
from shared.sessions.config import SessionDefaults, parse_session_config
from shared.sessions.custom import GainProcessor, ProcessorCatalog
from shared.sessions.frames import (
    DataFrame,
    EndFrame,
    Frame,
    InputAudioFrame,
    InterruptionFrame,
    SystemFrame,
    UserAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from shared.sessions.model import CustomProcessorConfig
from shared.sessions.processors import (
    Direction,
    FrameProcessor,
    Pipeline,
    PipelineContext,
    SessionTasks,
)
from shared.sessions.tts import SentenceBuffer
from shared.sessions.turns import TurnDetector, TurnParams
from shared.sessions.vad import (
    SileroDetector,
    SpeechSegmenter,
    VADAudioFrame,
    VADParams,
    VADProcessor,
    WebRtcDetector,
)
from tests.sessions.support import noise, silence, speech


@dataclass(frozen=True, kw_only=True)
class Note(DataFrame):
    text: str


class SlowStage(FrameProcessor):
    """Takes a while over each note (a stand-in for a decode or a synthesis)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(name="slow")
        self.seconds = seconds
        self.started: list[str] = []
        self.finished: list[str] = []

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, Note):
            self.started.append(frame.text)
            await asyncio.sleep(self.seconds)
            self.finished.append(frame.text)
        await self.push_frame(frame, direction)


def run(coroutine):
    return asyncio.run(coroutine)


def collecting_pipeline(stages: list[FrameProcessor]) -> tuple[Pipeline, list[Frame]]:
    seen: list[Frame] = []

    async def on_frame(frame: Frame) -> None:
        seen.append(frame)

    return Pipeline(stages, on_frame=on_frame), seen


def test_system_frames_overtake_queued_work_and_interruptions_drop_it():
    async def scenario():
        slow = SlowStage(0.2)
        pipeline, seen = collecting_pipeline([slow])
        tasks = SessionTasks("unit")
        await pipeline.start(PipelineContext(session_id="unit", tasks=tasks))
        for text in ("one", "two", "three"):
            await pipeline.queue_input(Note(text=text))
        await pipeline.queue_input(EndFrame())
        await asyncio.sleep(0.05)  # "one" is being worked on, the rest wait in the queue
        marker = SystemFrame()
        await pipeline.queue_input(marker)
        assert seen == [marker]  # at once, ahead of the queued notes
        await pipeline.queue_input(InterruptionFrame())
        await asyncio.sleep(0.3)
        kinds = [type(frame).__name__ for frame in seen]
        await pipeline.stop()
        await tasks.close()
        return slow, kinds, tasks

    slow, kinds, tasks = run(scenario())
    assert slow.started == ["one"]
    assert slow.finished == []
    assert kinds == ["SystemFrame", "InterruptionFrame", "EndFrame"]  # End survives
    assert tasks.running() == []


def test_closing_the_session_tasks_leaves_none_running():
    async def scenario():
        tasks = SessionTasks("unit")
        pipeline, _ = collecting_pipeline([SlowStage(10), GainProcessor("gain", 0.0)])
        await pipeline.start(PipelineContext(session_id="unit", tasks=tasks))
        await pipeline.queue_input(Note(text="long"))
        await asyncio.sleep(0.01)
        names = sorted(task.get_name() for task in tasks.running())
        await pipeline.stop()
        await tasks.close()
        leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("session:")]
        return names, leftover

    names, leftover = run(scenario())
    assert names == [
        "session:unit:gain",
        "session:unit:sink",
        "session:unit:slow",
        "session:unit:source",
    ]
    assert leftover == []


def test_the_segmenter_needs_sustained_speech_to_start_and_silence_to_stop():
    segmenter = SpeechSegmenter(VADParams(start_seconds=0.096, stop_seconds=0.096), 0.032)
    scores = [0.9, 0.1, 0.9, 0.9, 0.9, 0.4, 0.2, 0.9, 0.2, 0.2, 0.2]
    events = [segmenter.update(score) for score in scores]
    # One loud window is not speech; three are. 0.4 is inside the hysteresis band, and a
    # short dip does not stop speech; three quiet windows do.
    assert events == [None, None, None, None, "start", None, None, None, None, None, "stop"]


def test_the_vad_thresholds_of_a_session_config_decide_what_is_speech():
    def events(vad: dict, scores: list[float]) -> list[str | None]:
        params = parse_session_config({"vad": vad}, SessionDefaults()).vad
        segmenter = SpeechSegmenter(params, 0.032)
        return [segmenter.update(score) for score in scores]

    voice = [0.8] * 4 + [0.5] * 4
    # The default threshold (0.5) hears the 0.8 windows start speech after 64 ms...
    assert events({}, voice)[:4] == [None, "start", None, None]
    # ... a stricter one does not, and a longer startSeconds waits for more of them.
    assert events({"threshold": 0.9}, voice) == [None] * 8
    assert events({"startSeconds": 0.128}, voice)[:4] == [None, None, None, "start"]
    # 0.5 stays speech at the default threshold; with threshold 0.8 it is below the stop
    # margin, and stopSeconds of it end the speech.
    assert "stop" not in events({}, voice)
    assert "stop" in events({"threshold": 0.8, "stopSeconds": 0.096}, voice)


@pytest.mark.parametrize("detector_class", [SileroDetector, WebRtcDetector])
def test_detectors_tell_espeak_speech_from_silence_and_noise(detector_class):
    detector = detector_class()
    window = detector.window_samples

    def speech_share(pcm: bytes) -> float:
        samples = np.frombuffer(pcm, dtype="<i2")
        scores = [
            detector.speech_probability(samples[start : start + window])
            for start in range(0, len(samples) - window + 1, window)
        ]
        return float(np.mean([score >= 0.5 for score in scores]))

    assert speech_share(speech("The quick brown fox jumps over the lazy dog.")) > 0.5
    detector.reset()
    assert speech_share(silence(1.0)) == 0.0
    if isinstance(detector, SileroDetector):  # WebRTC's GMM calls white noise speech
        detector.reset()
        assert speech_share(noise(1.0)) < 0.1


class Recorder(FrameProcessor):
    def __init__(self) -> None:
        super().__init__(name="recorder")
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        self.frames.append(frame)
        await self.push_frame(frame, direction)


def detect_turns(pcm: bytes, *, busy: bool = False, interruptions: bool = True, **turn):
    async def scenario():
        recorder = Recorder()
        params = VADParams()
        stages = [
            VADProcessor(SileroDetector(), params),
            TurnDetector(TurnParams(**turn), interruptions=interruptions),
            recorder,
        ]
        pipeline, _ = collecting_pipeline(stages)
        tasks = SessionTasks("turns")
        await pipeline.start(PipelineContext("turns", tasks, bot_busy=lambda: busy))
        for start in range(0, len(pcm), 640):
            await pipeline.queue_input(
                InputAudioFrame(pcm=pcm[start : start + 640], sample_rate=16_000)
            )
        await asyncio.sleep(0.3)
        await pipeline.stop()
        await tasks.close()
        return recorder.frames

    frames = run(scenario())
    return [f for f in frames if not isinstance(f, DataFrame | UserAudioFrame)], frames


def test_a_turn_ends_after_the_silence_timeout_and_carries_its_audio():
    utterance = speech("Good morning.")
    events, frames = detect_turns(
        silence(0.5) + utterance + silence(1.0), silence_timeout_seconds=0.5
    )
    kinds = [type(frame).__name__ for frame in events]
    assert kinds.count("UserStartedSpeakingFrame") == 1
    assert kinds.count("UserStoppedSpeakingFrame") == 1
    assert "InterruptionFrame" not in kinds
    audio = b"".join(frame.pcm for frame in frames if isinstance(frame, UserAudioFrame))
    # The turn holds the whole utterance (pre-roll included) plus the silence timeout.
    assert len(audio) >= len(utterance) * 0.9


def test_a_pause_shorter_than_the_silence_timeout_does_not_end_the_turn():
    pcm = speech("Good morning.") + silence(0.3) + speech("Thank you.") + silence(1.2)
    events, _ = detect_turns(pcm, silence_timeout_seconds=0.6)
    assert [type(frame).__name__ for frame in events].count("UserStoppedSpeakingFrame") == 1


def test_short_bursts_do_not_start_a_turn_or_interrupt():
    click = speech("Hm.")[: 16_000 * 2 // 10]  # 100 ms of a voice
    events, _ = detect_turns(
        silence(0.3) + click + silence(1.0), busy=True, min_speech_seconds=0.25
    )
    kinds = [type(frame).__name__ for frame in events]
    assert "UserStartedSpeakingFrame" not in kinds
    assert "InterruptionFrame" not in kinds


def test_speech_while_the_bot_is_busy_interrupts_first_unless_interruptions_are_off():
    pcm = silence(0.3) + speech("Stop, please stop.") + silence(1.0)
    events, _ = detect_turns(pcm, busy=True)
    kinds = [type(frame).__name__ for frame in events]
    assert kinds.index("InterruptionFrame") < kinds.index("UserStartedSpeakingFrame")
    ignored, _ = detect_turns(pcm, busy=True, interruptions=False)
    assert not any(
        isinstance(f, UserStartedSpeakingFrame | UserStoppedSpeakingFrame) for f in ignored
    )


def test_sentences_are_released_as_soon_as_they_are_complete():
    buffer = SentenceBuffer()
    assert buffer.add("Hello there! How ") == ["Hello there!"]
    assert buffer.add("are you") == []
    assert buffer.add("? I met Dr. Smith today. And") == ["How are you?", "I met Dr. Smith today."]
    assert buffer.flush() == "And"
    # A sentence ending the text so far goes at once; numbers and abbreviations wait.
    assert buffer.add("It is ready now.") == ["It is ready now."]
    assert buffer.add("Version 3.") == []
    assert buffer.add("5 is out. Ask Dr.") == ["Version 3.5 is out."]
    assert buffer.add(" Who.") == ["Ask Dr. Who."]
    long_clause = "word, " * 30
    assert buffer.add(long_clause)  # a long run is cut at a clause mark


def test_custom_processors_follow_the_catalog_and_their_options():
    catalog = ProcessorCatalog()
    built = catalog.build(CustomProcessorConfig(name="louder", kind="gain", options={"gainDb": 6}))
    assert isinstance(built, GainProcessor)
    assert built.name == "louder"
    assert built.factor == pytest.approx(2.0, rel=0.01)
    with pytest.raises(InvalidRequestError):
        catalog.build(CustomProcessorConfig(name="gain", options={"gainDb": "loud"}))
    with pytest.raises(InvalidRequestError, match="unknown options gaindb"):  # misspelt
        catalog.build(CustomProcessorConfig(name="gain", options={"gaindb": 6}))
    with pytest.raises(InvalidRequestError):
        catalog.build(CustomProcessorConfig(name="echo"))
    catalog.register("echo", lambda config: Recorder())
    assert catalog.build(CustomProcessorConfig(name="echo")).name == "echo"
    with pytest.raises(ValueError, match="already registered"):
        catalog.register("echo", lambda config: Recorder())


def test_a_gain_with_very_many_unknown_options_names_a_few_and_counts_the_rest():
    # Each unknown option was listed (each cut at the echo limit): 1,000 of them made a
    # message of some 66,000 characters.
    unknown = {f"option{index:04d}" + "x" * 100: 1 for index in range(1000)}
    config = CustomProcessorConfig(name="loud", kind="gain", options={"gainDb": 3, **unknown})
    with pytest.raises(InvalidRequestError) as refused:
        ProcessorCatalog().build(config)
    message = refused.value.message
    for index in range(5):
        assert f"option{index:04d}" in message
    assert "option0005" not in message
    assert "and 995 more; gain takes gainDb" in message
    assert len(message) < 500
    # A few are all listed, with no count.
    with pytest.raises(InvalidRequestError) as refused:
        ProcessorCatalog().build(
            CustomProcessorConfig(name="loud", kind="gain", options={"a": 1, "b": 2})
        )
    assert refused.value.message == "processor loud: unknown options a, b; gain takes gainDb"


def test_gain_keeps_the_kind_of_frame_it_scales():
    async def scenario():
        recorder = Recorder()
        pipeline, _ = collecting_pipeline([GainProcessor("gain", 20.0), recorder])
        tasks = SessionTasks("gain")
        await pipeline.start(PipelineContext("gain", tasks))
        window = VADAudioFrame(
            pcm=np.full(512, 100, dtype="<i2").tobytes(),
            sample_rate=16_000,
            probability=0.9,
            voiced=True,
            speaking=True,
            event="start",
            stream_seconds=0.032,
        )
        await pipeline.queue_input(window)
        await asyncio.sleep(0.05)
        await pipeline.stop()
        await tasks.close()
        return recorder.frames

    (scaled,) = run(scenario())
    assert isinstance(scaled, VADAudioFrame)
    assert scaled.event == "start"
    assert np.frombuffer(scaled.pcm, dtype="<i2")[0] == 1000
