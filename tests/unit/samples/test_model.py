"""Voice samples (seed 002): audio facts, quality scale and the processing state machine."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.errors import InvalidStateTransitionError
from shared.model import new_id
from shared.samples.model import SampleStatus, VoiceSample, VoiceSampleCreate


def make_sample(**overrides: object) -> VoiceSample:
    fields: dict[str, object] = {
        "user_id": f"user-{new_id()}",
        "name": "My Voice Sample",
        "file_path": "/uploads/sample.wav",
        "format": "wav",
        "duration": 15.5,
        "sample_rate": 22050,
    }
    fields.update(overrides)
    return VoiceSample.model_validate(fields)


def test_sample_defaults_follow_the_seed():
    sample = make_sample()
    assert sample.status is SampleStatus.UPLOADED
    assert sample.language == "en-US"
    assert sample.quality_score is None


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "ogg"])
def test_sample_accepts_supported_formats(fmt):
    assert make_sample(format=fmt).format.value == fmt


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", "aac"),
        ("duration", 0),
        ("duration", -1.0),
        ("sample_rate", 1000),
        ("quality_score", 10.5),
        ("quality_score", -0.1),
        ("language", "english please"),
        ("name", ""),
        ("status", "done"),
    ],
)
def test_sample_rejects_invalid_values(field, value):
    with pytest.raises(ValidationError):
        make_sample(**{field: value})


def test_sample_quality_is_on_a_zero_to_ten_scale():
    assert make_sample(quality_score=8.5).quality_score == 8.5


def test_sample_normalises_language_and_serializes_camel_case():
    api = make_sample(language="zh_tw", voice_embedding_id="emb-1").to_api()
    assert api["language"] == "zh-TW"
    assert api["filePath"] == "/uploads/sample.wav"
    assert api["sampleRate"] == 22050
    assert api["voiceEmbeddingId"] == "emb-1"


def apply(sample: VoiceSample, action: str) -> VoiceSample:
    if action == "start_processing":
        return sample.start_processing()
    if action == "mark_ready":
        return sample.mark_ready(quality_score=8.0, voice_embedding_id="emb-1")
    return sample.mark_failed()


ALLOWED = {
    (SampleStatus.UPLOADED, "start_processing"): SampleStatus.PROCESSING,
    (SampleStatus.PROCESSING, "mark_ready"): SampleStatus.READY,
    (SampleStatus.PROCESSING, "mark_failed"): SampleStatus.FAILED,
    (SampleStatus.FAILED, "start_processing"): SampleStatus.PROCESSING,
}


@pytest.mark.parametrize("status", list(SampleStatus))
@pytest.mark.parametrize("action", ["start_processing", "mark_ready", "mark_failed"])
def test_sample_allows_exactly_the_listed_transitions(status, action):
    sample = make_sample(status=status)
    expected = ALLOWED.get((status, action))
    if expected is None:
        with pytest.raises(InvalidStateTransitionError):
            apply(sample, action)
    else:
        assert apply(sample, action).status is expected
    assert sample.status is status


def test_ready_sample_records_analysis():
    ready = make_sample().start_processing().mark_ready(quality_score=7.5, voice_embedding_id="e")
    assert (ready.quality_score, ready.voice_embedding_id) == (7.5, "e")
    with pytest.raises(ValidationError):
        make_sample().start_processing().mark_ready(quality_score=11, voice_embedding_id=None)


def test_create_request():
    body = VoiceSampleCreate.model_validate({"name": " Mine ", "language": "en_gb"})
    assert (body.name, body.language, body.is_public) == ("Mine", "en-GB", False)
    with pytest.raises(ValidationError):
        VoiceSampleCreate.model_validate({"format": "wav"})  # told from the bytes only
    with pytest.raises(ValidationError):
        VoiceSampleCreate.model_validate({"name": ""})
    with pytest.raises(ValidationError):
        VoiceSampleCreate.model_validate({"name": "x", "filePath": "/etc/passwd"})


def test_a_signed_upload_is_awaited_then_uploaded_with_its_size():
    awaiting = make_sample(status="awaiting_upload", format=None, duration=None, sample_rate=None)
    uploaded = awaiting.mark_uploaded(size_bytes=1234, content_type="audio/wav")
    assert (uploaded.status, uploaded.size_bytes) == (SampleStatus.UPLOADED, 1234)
    with pytest.raises(InvalidStateTransitionError):
        uploaded.mark_uploaded(size_bytes=1, content_type="audio/wav")
    with pytest.raises(InvalidStateTransitionError):
        awaiting.start_processing()


def test_a_failed_sample_says_why_and_processing_again_clears_it():
    failed = make_sample().start_processing().mark_failed("The audio holds no speech")
    assert failed.failure_reason == "The audio holds no speech"
    assert failed.processed_at is not None
    again = failed.start_processing()
    assert (again.status, again.failure_reason) == (SampleStatus.PROCESSING, None)


def test_ready_sample_takes_the_measured_facts():
    ready = (
        make_sample(format=None, duration=None, sample_rate=None)
        .start_processing()
        .mark_ready(
            quality_score=6.5,
            voice_embedding_id="s1",
            format="flac",
            duration=4.25,
            sample_rate=48000,
            channels=2,
        )
    )
    assert (ready.format.value, ready.duration, ready.sample_rate, ready.channels) == (
        "flac",
        4.25,
        48000,
        2,
    )
    document = ready.to_document()
    assert (document["format"], document["status"]) == ("flac", "ready")
