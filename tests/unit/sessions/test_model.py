"""Voice sessions (seed 004): pipeline configuration rules and session state machines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.errors import InvalidStateTransitionError
from shared.model import new_id
from shared.sessions.model import (
    CustomProcessorConfig,
    PersistenceStatus,
    PipelineConfiguration,
    PipelineState,
    PipelineType,
    ProviderCapabilities,
    VoiceSession,
)

NOW = datetime(2026, 1, 11, 8, 0, tzinfo=UTC)

STT_TTS = {"type": "stt_tts", "sttProvider": "whisper", "ttsProvider": "espeak"}


def test_stt_tts_pipeline_needs_both_providers():
    config = PipelineConfiguration.model_validate(STT_TTS)
    assert config.type is PipelineType.STT_TTS
    assert config.latency_target == timedelta(milliseconds=500)
    for missing in ["sttProvider", "ttsProvider"]:
        body = {key: value for key, value in STT_TTS.items() if key != missing}
        with pytest.raises(ValidationError, match="sttProvider and ttsProvider"):
            PipelineConfiguration.model_validate(body)


def test_s2s_pipeline_needs_an_s2s_provider():
    config = PipelineConfiguration.model_validate({"type": "s2s", "s2sProvider": "realtime"})
    assert config.s2s_provider == "realtime"
    assert PipelineConfiguration(type=PipelineType.S2S, s2s_provider="x").s2s_provider == "x"
    with pytest.raises(ValidationError, match="s2sProvider"):
        PipelineConfiguration.model_validate(
            {"type": "s2s", "sttProvider": "a", "ttsProvider": "b"}
        )


@pytest.mark.parametrize("latency", [0, -0.5])
def test_latency_target_must_be_positive(latency):
    with pytest.raises(ValidationError, match="latencyTarget"):
        PipelineConfiguration.model_validate(STT_TTS | {"latencyTarget": latency})


def test_unknown_pipeline_type_is_rejected():
    with pytest.raises(ValidationError):
        PipelineConfiguration.model_validate(STT_TTS | {"type": "duplex"})


def test_processing_order_must_cover_enabled_components():
    body = STT_TTS | {
        "vadProvider": "silero",
        "customProcessors": [{"name": "gain", "order": 1}, {"name": "off", "enabled": False}],
    }
    config = PipelineConfiguration.model_validate(body)
    assert config.enabled_components() == ("gain", "vad", "stt", "tts")
    assert config.effective_processing_order() == ("gain", "vad", "stt", "tts")
    ordered = PipelineConfiguration.model_validate(
        body | {"processingOrder": ["vad", "stt", "tts", "gain"]}
    )
    assert ordered.effective_processing_order() == ("vad", "stt", "tts", "gain")
    for order, message in [
        (["vad", "stt", "tts"], "misses"),
        (["vad", "stt", "tts", "gain", "off"], "not enabled"),
        (["vad", "stt", "stt", "tts", "gain"], "twice"),
    ]:
        with pytest.raises(ValidationError, match=message):
            PipelineConfiguration.model_validate(body | {"processingOrder": order})


def test_custom_processors_need_unique_names_and_non_negative_order():
    with pytest.raises(ValidationError, match="unique"):
        PipelineConfiguration.model_validate(
            STT_TTS | {"customProcessors": [{"name": "gain"}, {"name": "gain"}]}
        )
    with pytest.raises(ValidationError):
        CustomProcessorConfig(name="gain", order=-1)


def test_configuration_serializes_camel_case():
    api = PipelineConfiguration.model_validate({"type": "s2s", "s2sProvider": "rt"}).to_api()
    assert api["s2sProvider"] == "rt"
    assert api["latencyTarget"] == 0.5
    assert api["type"] == "s2s"


def test_provider_capabilities():
    caps = ProviderCapabilities.model_validate(
        {"s2sSupport": True, "maxConcurrentSessions": 2, "supportedCodecs": ["opus", "pcm"]}
    )
    assert caps.max_concurrent_sessions == 2
    assert caps.supported_codecs == ("opus", "pcm")
    s2s = PipelineConfiguration(type=PipelineType.S2S, s2s_provider="rt")
    assert caps.supports(s2s)
    assert not ProviderCapabilities().supports(s2s)
    assert ProviderCapabilities().supports(PipelineConfiguration.model_validate(STT_TTS))
    assert caps.to_api()["s2sSupport"] is True
    for bad in [{"maxConcurrentSessions": -1}, {"minLatency": -1}]:
        with pytest.raises(ValidationError):
            ProviderCapabilities.model_validate(bad)


def make_session(**overrides: object) -> VoiceSession:
    fields: dict[str, object] = {"backend_id": f"backend-{new_id()}", "user_id": "user-1"}
    fields.update(overrides)
    return VoiceSession.model_validate(fields)


PIPELINE_ALLOWED = {
    (PipelineState.IDLE, PipelineState.LISTENING),
    (PipelineState.LISTENING, PipelineState.PROCESSING),
    (PipelineState.PROCESSING, PipelineState.SPEAKING),
    # Barge-in before the reply is heard, or a turn with nothing to answer.
    (PipelineState.PROCESSING, PipelineState.LISTENING),
    (PipelineState.SPEAKING, PipelineState.LISTENING),
    (PipelineState.IDLE, PipelineState.ERROR),
    (PipelineState.LISTENING, PipelineState.ERROR),
    (PipelineState.PROCESSING, PipelineState.ERROR),
    (PipelineState.SPEAKING, PipelineState.ERROR),
}


@pytest.mark.parametrize("current", list(PipelineState))
@pytest.mark.parametrize("target", list(PipelineState))
def test_pipeline_allows_exactly_the_listed_transitions(current, target):
    session = make_session(pipeline_state=current, last_activity=NOW - timedelta(minutes=1))
    if (current, target) in PIPELINE_ALLOWED:
        moved = session.move_to(target, NOW)
        assert (moved.pipeline_state, moved.last_activity) == (target, NOW)
    else:
        with pytest.raises(InvalidStateTransitionError):
            session.move_to(target, NOW)
    assert session.pipeline_state is current


def test_session_completes_once_and_stops_persisting():
    session = make_session()
    assert session.pipeline_state is PipelineState.IDLE
    assert session.is_persistent
    done = session.complete(NOW)
    assert done.persistence_status is PersistenceStatus.COMPLETED
    assert not done.is_persistent
    with pytest.raises(InvalidStateTransitionError):
        done.complete(NOW)


def test_session_serializes_camel_case():
    session = make_session(metadata={"room": "r1"}).touched(NOW)
    api = session.to_api()
    assert api["backendId"].startswith("backend-")
    assert api["pipelineState"] == "idle"
    assert api["persistenceStatus"] == "active"
    assert api["lastActivity"] == "2026-01-11T08:00:00Z"
    for bad in [{"backend_id": ""}, {"pipeline_state": "sleeping"}, {"persistence_status": "x"}]:
        with pytest.raises(ValidationError):
            make_session(**bad)
