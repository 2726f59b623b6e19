"""Assembling a session's stages from its config, and checking a config before any session.

STT_TTS sessions run custom processors -> VAD -> turn detection -> STT -> agent -> TTS ->
output; S2S sessions run custom processors -> S2S -> output. ``processingOrder``, when
given, places the custom processors among the built-in stages (a custom stage before
``vad`` sees raw input audio, one after ``tts`` sees reply audio), but the built-in stages
keep their relative order. ``check_config`` refuses, with every problem listed, a config
this service cannot run: unknown or disabled providers, a language the recogniser does not
speak, an unknown agent, custom processor kinds or options that do not exist (a disabled
processor is not built, but its options' keys and strings must be Unicode text as well), a
voice of another provider, a built-in order that makes no sense.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidRequestError
from shared.sessions.agents import AgentContext
from shared.sessions.config import SessionConfig
from shared.sessions.conversation import AgentProcessor, Conversation
from shared.sessions.model import ConversationLine, PipelineType
from shared.sessions.output import AudioOutput, OutputProcessor
from shared.sessions.processors import FrameProcessor, PipelineContext
from shared.sessions.s2s import EmbeddedS2S, S2SOptions, S2SProcessor
from shared.sessions.services import SessionServices
from shared.sessions.stt import STTProcessor
from shared.sessions.tts import TTSProcessor, VoiceChoice
from shared.sessions.turns import TURN_DETECTION_PROVIDERS, TurnDetector, TurnParams
from shared.sessions.vad import (
    VAD_PROVIDERS,
    VAD_SAMPLE_RATE,
    VADParams,
    VADProcessor,
    build_detector,
)

BUILT_IN_ORDER = ("noise_cancellation", "vad", "turn_detection", "stt", "tts", "s2s")
NOISE_CANCELLATION_PROVIDERS: tuple[str, ...] = ()


def check_config(config: SessionConfig, services: SessionServices) -> None:
    """Return None if ``services`` can run ``config``.

    Raises:
        InvalidRequestError: with one ``details`` entry per problem.
    """
    problems: list[tuple[str, str]] = []
    pipeline = config.pipeline
    if pipeline.noise_cancellation_provider:
        problems.append(("pipeline.noiseCancellationProvider", "no noise cancellation provider"))
    if pipeline.type is PipelineType.STT_TTS:
        problems += _check_stt_tts(config, services)
    else:
        try:
            services.s2s.get(pipeline.s2s_provider or "").check(config.language)
        except InvalidRequestError as exc:
            problems.append(("pipeline.s2sProvider", exc.message))
    if (config.agent.name or "") not in services.agents.names:
        problems.append(
            ("agent.name", f"unknown agent; available: {', '.join(services.agents.names)}")
        )
    for processor in pipeline.custom_processors:
        try:
            if processor.enabled:
                services.processors.build(processor)
            else:
                # Not built, but stored with the config: its options must be storable too.
                services.processors.check_options(processor)
        except InvalidRequestError as exc:
            problems.append((f"pipeline.customProcessors.{processor.name}", exc.message))
    builtin = [name for name in pipeline.effective_processing_order() if name in BUILT_IN_ORDER]
    if builtin != sorted(builtin, key=BUILT_IN_ORDER.index):
        problems.append(
            ("pipeline.processingOrder", f"built-in stages must keep the order {BUILT_IN_ORDER}")
        )
    if problems:
        raise InvalidRequestError(
            "Invalid session config",
            details=[{"field": field, "message": message} for field, message in problems],
        )


def _check_stt_tts(config: SessionConfig, services: SessionServices) -> list[tuple[str, str]]:
    pipeline = config.pipeline
    problems: list[tuple[str, str]] = []
    stt = pipeline.stt_provider or ""
    if stt not in services.speech:
        problems.append(("pipeline.sttProvider", f"not enabled; enabled: {services.speech.names}"))
    elif stt == "whisper":
        from shared.speech.whisper import supports_language  # noqa: PLC0415 - light, no model

        if not supports_language(config.language):
            problems.append(("language", "the embedded recogniser speaks English only"))
    tts = pipeline.tts_provider or ""
    if tts not in services.tts:
        problems.append(("pipeline.ttsProvider", f"not enabled; enabled: {services.tts.names}"))
    voice_provider = (config.voice or "").split(":", 1)[0]
    # A pre-call clone ("clone:{id}") names its own provider: it resolves when the session starts.
    if config.voice and ":" in config.voice and voice_provider not in (tts, "clone"):
        problems.append(("voice", f"the voice must belong to the TTS provider {tts!r}"))
    if pipeline.vad_provider not in VAD_PROVIDERS:
        problems.append(("pipeline.vadProvider", f"must be one of {VAD_PROVIDERS}"))
    if pipeline.turn_detection_provider not in TURN_DETECTION_PROVIDERS:
        problems.append(
            ("pipeline.turnDetectionProvider", f"must be one of {TURN_DETECTION_PROVIDERS}")
        )
    return problems


@dataclass
class SessionParts:
    """The per-session objects the stages are wired to."""

    context: PipelineContext
    conversation: Conversation
    output: AudioOutput
    user_id: str
    voice: VoiceChoice
    agent_context: Callable[[tuple[ConversationLine, ...]], AgentContext]
    playback_lead_seconds: float = 0.25


def local_stages(
    services: SessionServices,
    parts: SessionParts,
    *,
    vad_provider: str,
    vad: VADParams,
    turn: TurnParams,
    stt_provider: str,
    language: str,
    agent_name: str,
    streaming: bool,
    interruptions: bool,
    output_rate: int,
    preemptive: bool = False,
) -> dict[str, list[FrameProcessor]]:
    """Return the built-in STT_TTS stages by component name (``stt`` includes the agent)."""
    integration = services.agents.get(agent_name)
    return {
        "vad": [VADProcessor(build_detector(vad_provider, vad), vad)],
        "turn_detection": [TurnDetector(turn, interruptions=interruptions)],
        "stt": [
            STTProcessor(
                services.speech.get(stt_provider),
                sample_rate=VAD_SAMPLE_RATE,
                language=language,
                preemptive=preemptive,
            ),
            AgentProcessor(
                integration.resolve(),
                parts.conversation,
                parts.agent_context,
                streaming=streaming and integration.streaming_mode,
            ),
        ],
        "tts": [
            TTSProcessor(
                services.tts.get(parts.voice.provider),
                parts.voice,
                sample_rate=output_rate,
                language=language,
                executor=services.tts_executor,
            )
        ],
    }


def build_stages(
    config: SessionConfig, services: SessionServices, parts: SessionParts
) -> list[FrameProcessor]:
    """Return the session's stages in order, the output stage last.

    Raises:
        InvalidRequestError: a custom processor cannot be built.
    """
    pipeline = config.pipeline
    agent = config.agent
    by_component: dict[str, list[FrameProcessor]]
    if pipeline.type is PipelineType.STT_TTS:
        by_component = local_stages(
            services,
            parts,
            vad_provider=pipeline.vad_provider or "silero",
            vad=config.vad,
            turn=config.turn,
            stt_provider=pipeline.stt_provider or "",
            language=config.language,
            agent_name=agent.name or "local",
            streaming=agent.streaming_mode,
            interruptions=agent.interruption_handling,
            output_rate=config.audio.output_rate,
            preemptive=agent.preemptive_generation,
        )
    else:
        options = S2SOptions(
            context=parts.context,
            conversation=parts.conversation,
            user_id=parts.user_id,
            language=config.language,
            voice=config.voice,
            instructions=agent.system_prompt,
            vad=config.vad,
            turn=config.turn,
            interruptions=agent.interruption_handling,
            agent_name=agent.name,
            output_sample_rate=config.audio.output_rate,
            metadata=dict(config.metadata),
        )
        provider = services.s2s.get(pipeline.s2s_provider or "")
        by_component = {"s2s": [S2SProcessor(provider, options)]}
    custom = {
        processor.name: processor for processor in pipeline.custom_processors if processor.enabled
    }
    stages: list[FrameProcessor] = []
    for name in pipeline.effective_processing_order():
        if name in custom:
            stages.append(services.processors.build(custom[name]))
        else:
            stages += by_component.get(name, [])
    stages.append(
        OutputProcessor(
            parts.output,
            sample_rate=config.audio.output_rate,
            lead_seconds=parts.playback_lead_seconds,
        )
    )
    return stages


def embedded_s2s(services_ref: Callable[[], SessionServices], defaults: Any) -> EmbeddedS2S:
    """Return the embedded S2S provider: the local stages chained behind the S2S interface.

    ``services_ref`` returns the services at open time (they hold the catalog this provider
    lives in); ``defaults`` (``SessionDefaults``) names the recogniser, VAD and voice.
    """

    async def stages(options: S2SOptions) -> list[FrameProcessor]:
        services = services_ref()
        voice = await services.voices.resolve(options.user_id, options.voice)
        parts = SessionParts(
            context=options.context,
            conversation=options.conversation,
            output=_NoOutput(),
            user_id=options.user_id,
            voice=voice,
            agent_context=lambda history: AgentContext(
                session_id=options.context.session_id,
                user_id=options.user_id,
                history=history,
                language=options.language,
                system_prompt=options.instructions,
                metadata=dict(options.metadata),
            ),
        )
        built = local_stages(
            services,
            parts,
            vad_provider=defaults.vad_provider,
            vad=options.vad,
            turn=options.turn,
            stt_provider=defaults.stt_provider,
            language=options.language,
            agent_name=options.agent_name or defaults.agent,
            streaming=True,
            interruptions=options.interruptions,
            output_rate=options.output_sample_rate,
        )
        return [stage for name in ("vad", "turn_detection", "stt", "tts") for stage in built[name]]

    def check_language(language: str) -> None:
        from shared.speech.whisper import supports_language  # noqa: PLC0415

        if defaults.stt_provider == "whisper" and not supports_language(language):
            raise InvalidRequestError("the embedded recogniser speaks English only")

    return EmbeddedS2S(stages, check_language)


class _NoOutput:
    async def send_audio(self, pcm: bytes) -> None:
        raise AssertionError("the embedded S2S hands its audio to the outer output stage")
