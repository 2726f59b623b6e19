"""A session's start configuration: what the client asks for, with the service's defaults.

The ``start`` message carries a ``config`` object (camelCase). Anything the client leaves
out comes from ``SessionDefaults`` (built from ``Settings``), so ``{"type": "start"}`` alone
opens an embedded STT_TTS session. Unknown fields are refused, and the pipeline must pass
``PipelineConfiguration``'s rules (providers present for its type, ``latencyTarget > 0``,
unique processor names, ``order >= 0``); the backend provider then checks that it can run
it. ``parse_session_config`` turns every problem into one ``InvalidRequestError`` whose
``details`` name each bad field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from shared.errors import InvalidRequestError
from shared.model import RequestModel, check_free_form, validation_problems
from shared.sessions.model import PipelineConfiguration, PipelineType
from shared.sessions.turns import TurnParams
from shared.sessions.vad import VADParams

INPUT_SAMPLE_RATES = (8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
SampleRateChoice = Literal[8000, 16000, 22050, 24000, 32000, 44100, 48000]


class AudioConfig(RequestModel):
    """The PCM both ways: 16-bit little-endian mono at these rates."""

    sample_rate: SampleRateChoice = 16_000
    output_sample_rate: SampleRateChoice | None = None
    encoding: Literal["pcm16"] = "pcm16"

    @property
    def output_rate(self) -> int:
        """Return the rate of the reply audio (the input rate unless set)."""
        return self.output_sample_rate or self.sample_rate


class AgentConfig(RequestModel):
    """Which of the service's agents answers, and how (the seed's agent integration flags)."""

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    system_prompt: Annotated[str, Field(max_length=4000)] | None = None
    streaming_mode: bool = True
    interruption_handling: bool = True
    preemptive_generation: bool = False


class SessionConfig(RequestModel):
    """The validated configuration a session runs with."""

    backend: Annotated[str, Field(min_length=1, max_length=100)]
    pipeline: PipelineConfiguration
    audio: AudioConfig = Field(default_factory=AudioConfig)
    voice: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    language: Annotated[str, Field(min_length=2, max_length=35)]
    agent: AgentConfig
    vad: VADParams
    turn: TurnParams
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Whether the client named pipeline.ttsProvider itself (not a default filled in).
    _tts_provider_named: bool = PrivateAttr(default=False)

    @property
    def tts_provider_named(self) -> bool:
        """True when the config named ``pipeline.ttsProvider`` itself (not a default filled in)."""
        return self._tts_provider_named

    @field_validator("metadata")
    @classmethod
    def _metadata_fits(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        # The same bounds as update_metadata's: the session's metadata is stored and handed
        # to the agent with every turn.
        return check_free_form(metadata)

    def to_document(self) -> dict[str, Any]:
        """Return the config as stored with the session (camelCase JSON)."""
        return self.model_dump(mode="json", by_alias=True)


class SessionDefaults(BaseModel):
    """What a session gets for the fields its client leaves out."""

    model_config = ConfigDict(frozen=True)

    backend: str = "native"
    stt_provider: str = "whisper"
    tts_provider: str = "espeak"
    s2s_provider: str = "embedded"
    vad_provider: str = "silero"
    turn_detection_provider: str = "silence"
    voice: str = "en-US"
    language: str = "en-US"
    agent: str = "local"
    vad: VADParams = Field(default_factory=VADParams)
    turn: TurnParams = Field(default_factory=TurnParams)

    @classmethod
    def from_settings(cls, settings: Any) -> SessionDefaults:
        """Return the defaults held by a ``Settings`` object."""
        return cls(
            backend=settings.sessions_backend,
            stt_provider=settings.sessions_default_stt,
            tts_provider=settings.sessions_default_tts,
            vad_provider=settings.sessions_vad_provider,
            voice=settings.sessions_default_voice,
            language=settings.sessions_default_language,
            agent=settings.sessions_default_agent,
            vad=VADParams(
                threshold=settings.sessions_vad_threshold,
                start_seconds=settings.sessions_vad_start_seconds,
                stop_seconds=settings.sessions_vad_stop_seconds,
            ),
            turn=TurnParams(
                silence_timeout_seconds=settings.sessions_silence_timeout_seconds,
                min_speech_seconds=settings.sessions_min_speech_seconds,
            ),
        )


def client_config_schema() -> dict[str, Any]:
    """Return the JSON Schema of a ``start`` message's ``config`` (camelCase).

    It is ``SessionConfig``'s, less the requirements ``parse_session_config`` fills from
    the defaults: a client may leave out any field (``{}`` is a valid config), and a
    pipeline its ``type`` (``stt_tts``). ``latencyTarget`` is seconds, as a number (what
    clients send) or an ISO 8601 duration (what a stored config holds).
    """
    schema = SessionConfig.model_json_schema(by_alias=True)
    schema.pop("required", None)
    pipeline = schema["$defs"]["PipelineConfiguration"]
    pipeline.pop("required", None)
    latency = pipeline["properties"]["latencyTarget"]
    pipeline["properties"]["latencyTarget"] = {
        "title": latency.get("title", "Latencytarget"),
        "default": latency.get("default"),
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "string", "format": "duration"},
        ],
    }
    return schema


def _with_pipeline_defaults(pipeline: Any, defaults: SessionDefaults, voice: Any) -> Any:
    if pipeline is None:
        pipeline = {}
    if not isinstance(pipeline, dict):
        return pipeline
    filled = dict(pipeline)
    filled.setdefault("type", PipelineType.STT_TTS.value)
    kind = filled["type"]
    if kind == PipelineType.STT_TTS.value:
        filled.setdefault("sttProvider", defaults.stt_provider)
        filled.setdefault("ttsProvider", _voice_provider(voice) or defaults.tts_provider)
        filled.setdefault("vadProvider", defaults.vad_provider)
        filled.setdefault("turnDetectionProvider", defaults.turn_detection_provider)
    elif kind == PipelineType.S2S.value:
        filled.setdefault("s2sProvider", defaults.s2s_provider)
    return filled


def _voice_provider(voice: Any) -> str | None:
    """Return the provider a ``provider:voiceId`` names (not a clone's ``clone:``), else None:
    a voice of another engine needs no ``ttsProvider`` of its own."""
    if not isinstance(voice, str):
        return None
    provider, colon, voice_id = voice.strip().partition(":")
    return provider if colon and provider and voice_id and provider != "clone" else None


def parse_session_config(raw: Any, defaults: SessionDefaults) -> SessionConfig:
    """Return the session config ``raw`` describes, defaults filled in.

    Raises:
        InvalidRequestError: ``raw`` is not an object, or a field is missing, unknown or
            breaks a rule (``details`` lists each problem with its field path).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidRequestError("config must be an object")
    data = dict(raw)
    data["pipeline"] = _with_pipeline_defaults(data.get("pipeline"), defaults, data.get("voice"))
    data.setdefault("backend", defaults.backend)
    data.setdefault("language", defaults.language)
    agent = data.get("agent")
    if agent is None:
        data["agent"] = {"name": defaults.agent}
    elif isinstance(agent, dict) and "name" not in agent:
        data["agent"] = {**agent, "name": defaults.agent}
    data["vad"] = _merged(defaults.vad, data.get("vad"))
    data["turn"] = _merged(defaults.turn, data.get("turn"))
    given = raw.get("pipeline")
    try:
        config = SessionConfig.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": field, "message": message}
            for field, message in validation_problems(exc, data)
        ]
        raise InvalidRequestError("Invalid session config", details=details) from None
    config._tts_provider_named = isinstance(given, dict) and "ttsProvider" in given
    return config


def _merged(default: BaseModel, given: Any) -> Any:
    if given is None:
        return default
    if not isinstance(given, dict):
        return given
    return {**default.model_dump(by_alias=True), **given}
