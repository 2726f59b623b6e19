"""The ``pipecat`` backend provider: sessions run as pipecat-ai pipelines.

For users who already build on pipecat. The session (state machine, events, persistence,
transports, limits) is the same as with the ``native`` provider; what changes is the
engine between the user's audio and the reply: a pipecat ``Pipeline`` run by a
``PipelineWorker``, made of pipecat's own ``VADProcessor`` (its Silero analyzer; the
session's ``turn.silenceTimeoutSeconds`` is its ``stop_secs``) and our parts wrapped as
pipecat services: ``PlatformSTTService`` (a ``SegmentedSTTService`` over our recogniser),
``PlatformAgent`` (our agent, streaming ``LLMTextFrame``s) and ``PlatformTTSService``
(a ``TTSService`` over our TTS provider, the session's voice). A last processor hands
the results back to the session as our frames, and reply audio goes through our paced
output stage. Barge-in: speech while the bot is busy broadcasts pipecat's
``InterruptionFrame`` and the client is told to flush.

pipecat-ai is an optional dependency (``requirements-pipecat.txt``); this module imports
it only when a pipecat session starts, and the service registers the provider only when
pipecat is installed.

LiveKit: a ``livekit`` provider would subclass ``BackendProvider`` the same way, its
backend connecting to a LiveKit server (its "connecting" state) and its sessions joining
a room per session with the LiveKit agents SDK; none is built in, as no LiveKit server
can run here to test it against.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from shared.sessions.backends import NativeBackend, NativeBackendProvider
from shared.sessions.config import SessionConfig
from shared.sessions.frames import (
    Frame,
    InputAudioFrame,
)
from shared.sessions.model import PipelineType, ProviderCapabilities
from shared.sessions.output import OutputProcessor
from shared.sessions.pipeline import SessionParts
from shared.sessions.processors import FrameHandler, Pipeline, PipelineContext
from shared.sessions.services import SessionServices
from shared.sessions.vad import VAD_SAMPLE_RATE

if TYPE_CHECKING:
    from shared.sessions.backends import BackendProvider


def pipecat_installed() -> bool:
    """Return whether pipecat-ai can be imported."""
    return importlib.util.find_spec("pipecat") is not None


class PipecatBackendProvider(NativeBackendProvider):
    """The ``pipecat`` provider: STT_TTS sessions as pipecat-ai pipelines."""

    name: ClassVar[str] = "pipecat"
    metadata: ClassVar[dict[str, Any]] = {
        "description": "pipecat-ai pipeline: pipecat's VAD; our STT, agent and TTS as services",
        "version": "1",
    }

    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            s2s_support=False,
            multi_user_support=True,
            session_persistence=True,
            custom_auth=False,
            custom_rate_limiting=False,
            max_concurrent_sessions=self._max,
            min_latency=timedelta(milliseconds=100),
            supported_codecs=("pcm16",),
        )

    async def create_backend(self, backend_id: str) -> NativeBackend:
        return PipecatBackend(backend_id, self)


class PipecatBackend(NativeBackend):
    """A native backend whose sessions run a pipecat engine."""

    def __init__(self, backend_id: str, provider: BackendProvider) -> None:
        assert isinstance(provider, PipecatBackendProvider)
        super().__init__(backend_id, provider)
        self.build_engine = PipecatEngine

    async def start(self) -> None:
        _quiet_pipecat_logs()
        await super().start()


def _quiet_pipecat_logs() -> None:
    # pipecat logs every frame at DEBUG through loguru; keep its warnings only.
    from loguru import logger  # noqa: PLC0415 - pipecat's logger, with pipecat

    logger.remove()
    logger.add(sys.stderr, level="WARNING")


class PipecatEngine:
    """A session's pipecat pipeline behind the engine interface (start, input, stop)."""

    def __init__(
        self,
        config: SessionConfig,
        services: SessionServices,
        parts: SessionParts,
        on_frame: FrameHandler,
    ) -> None:
        if config.pipeline.type is not PipelineType.STT_TTS:
            raise ValueError("the pipecat backend runs stt_tts sessions")
        self._config = config
        self._services = services
        self._parts = parts
        self._output = Pipeline(
            [
                OutputProcessor(
                    parts.output,
                    sample_rate=config.audio.output_rate,
                    lead_seconds=parts.playback_lead_seconds,
                )
            ],
            on_frame=on_frame,
        )
        self._task: Any = None
        self._runner: asyncio.Task[Any] | None = None

    async def to_session(self, frame: Frame) -> None:
        """Hand one of our frames to the output stage and the session."""
        await self._output.queue_input(frame)

    async def start(self, context: PipelineContext) -> None:
        """Build the pipecat pipeline and run it on a session task."""
        from pipecat.pipeline.pipeline import Pipeline as PipecatPipeline  # noqa: PLC0415
        from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: PLC0415
        from pipecat.workers.runner import WorkerRunner  # noqa: PLC0415

        from shared.sessions import _pipecat_services as wrapped  # noqa: PLC0415

        await self._output.start(context)
        config, services, parts = self._config, self._services, self._parts
        turns = wrapped.Turns(context.turns_before)
        integration = services.agents.get(config.agent.name or "local")
        stages = [
            wrapped.vad_processor(config),
            wrapped.PlatformSTTService(
                services.speech.get(config.pipeline.stt_provider or ""),
                language=config.language,
                context=context,
                turns=turns,
            ),
            wrapped.PlatformAgent(
                integration.resolve(),
                engine=self,
                parts=parts,
                context=context,
                turns=turns,
            ),
            wrapped.PlatformTTSService(
                services.tts.get(parts.voice.provider),
                voice_id=parts.voice.voice_id,
                language=config.language,
                executor=services.tts_executor,
                context=context,
                turns=turns,
                sample_rate=config.audio.output_rate,
            ),
            wrapped.SessionBridge(
                engine=self,
                context=context,
                turns=turns,
                interruptions=config.agent.interruption_handling,
            ),
        ]
        self._task = PipelineWorker(
            PipecatPipeline(stages),
            params=PipelineParams(
                audio_in_sample_rate=VAD_SAMPLE_RATE,
                audio_out_sample_rate=config.audio.output_rate,
                send_initial_empty_metrics=False,
            ),
            idle_timeout_secs=None,
            enable_rtvi=False,
            enable_turn_tracking=False,
            check_dangling_tasks=False,
        )
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(self._task)
        self._runner = context.tasks.spawn(runner.run(), "pipecat")

    async def queue_input(self, frame: Frame) -> None:
        """Feed the user's 16 kHz audio to the pipecat pipeline."""
        from pipecat.frames.frames import InputAudioRawFrame  # noqa: PLC0415

        if self._task is not None and isinstance(frame, InputAudioFrame):
            await self._task.queue_frame(
                InputAudioRawFrame(audio=frame.pcm, sample_rate=frame.sample_rate, num_channels=1)
            )

    async def stop(self) -> None:
        """Cancel the pipecat task, then stop the output stage."""
        if self._task is not None:
            await self._task.cancel()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        await self._output.stop()
