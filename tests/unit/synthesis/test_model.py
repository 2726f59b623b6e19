"""Synthesis (seed 002): jobs and their state machine, timestamps, audio files."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.audio.formats import OutputFormat
from shared.errors import InvalidStateTransitionError
from shared.files.model import AudioFile, checksum_of
from shared.model import new_id
from shared.synthesis.model import (
    SyllableTimestamp,
    SynthesisJob,
    SynthesisStatus,
    TimestampGranularity,
    WordTimestamp,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DIGEST = "ab" * 32


def make_job(**overrides: object) -> SynthesisJob:
    fields: dict[str, object] = {
        "user_id": f"user-{new_id()}",
        "voice_model_id": f"model-{new_id()}",
        "text_content": "Hello world",
        "text_hash": hashlib.sha256(b"Hello world").hexdigest(),
    }
    fields.update(overrides)
    return SynthesisJob.model_validate(fields)


def make_file(**overrides: object) -> AudioFile:
    fields: dict[str, object] = {
        "user_id": "user-1",
        "synthesis_job_id": f"job-{new_id()}",
        "file_path": "/storage/audio/syn_123456.wav",
        "filename": "synthesis_output.wav",
        "format": "wav",
        "file_size": 1048576,
        "duration": 5.2,
        "sample_rate": 22050,
    }
    fields.update(overrides)
    return AudioFile.model_validate(fields)


def test_job_defaults_follow_the_seed():
    job = make_job()
    assert job.status is SynthesisStatus.PENDING
    assert job.output_format is OutputFormat.WAV
    assert job.sample_rate == 22050
    assert job.progress == 0.0
    assert job.cache_hit is False


def test_job_accepts_a_catalog_voice_instead_of_a_model():
    assert make_job(voice_model_id=None, voice_id="espeak:en-us").voice_id == "espeak:en-us"


def test_job_needs_a_voice():
    with pytest.raises(ValidationError, match="voiceModelId or voiceId"):
        make_job(voice_model_id=None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output_format", "aiff"),
        ("progress", 1.2),
        ("progress", -0.1),
        ("sample_rate", 4000),
        ("text_content", ""),
        ("estimated_duration", -1),
        ("status", "cancelled"),
    ],
)
def test_job_rejects_invalid_values(field, value):
    with pytest.raises(ValidationError):
        make_job(**{field: value})


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "ogg_opus", "pcm"])
def test_job_accepts_every_output_format(fmt):
    assert make_job(output_format=fmt).output_format.value == fmt


def apply(job: SynthesisJob, action: str) -> SynthesisJob:
    if action == "start":
        return job.start()
    if action == "complete":
        return job.complete(audio_file_id="file-1", now=NOW, billed_characters=11, cost=0.0)
    return job.fail("provider error", NOW)


ALLOWED = {
    (SynthesisStatus.PENDING, "start"): SynthesisStatus.PROCESSING,
    (SynthesisStatus.PENDING, "fail"): SynthesisStatus.FAILED,
    (SynthesisStatus.PROCESSING, "complete"): SynthesisStatus.COMPLETED,
    (SynthesisStatus.PROCESSING, "fail"): SynthesisStatus.FAILED,
}


@pytest.mark.parametrize("status", list(SynthesisStatus))
@pytest.mark.parametrize("action", ["start", "complete", "fail"])
def test_job_allows_exactly_the_listed_transitions(status, action):
    job = make_job(status=status)
    expected = ALLOWED.get((status, action))
    if expected is None:
        with pytest.raises(InvalidStateTransitionError):
            apply(job, action)
    else:
        assert apply(job, action).status is expected
    assert job.status is status


def test_completed_job_has_audio_full_progress_time_and_its_bill():
    done = (
        make_job()
        .start()
        .complete(
            audio_file_id="file-1", now=NOW, billed_characters=11, cost=0.00017, unapplied=["mark"]
        )
    )
    assert (done.audio_file_id, done.progress, done.completed_at) == ("file-1", 1.0, NOW)
    assert (done.billed_characters, done.cost, done.unapplied) == (11, 0.00017, ["mark"])
    for bill in ({"billed_characters": -1, "cost": 0.0}, {"billed_characters": 1, "cost": -0.1}):
        with pytest.raises(ValidationError):
            make_job().start().complete(audio_file_id="file-1", now=NOW, **bill)
    failed = make_job().start().fail("boom", NOW)
    assert (failed.error_message, failed.completed_at) == ("boom", NOW)


def test_job_serializes_camel_case():
    api = make_job(config={"include_timestamps": True}).to_api()
    assert api["textContent"] == "Hello world"
    assert api["outputFormat"] == "wav"
    assert api["cacheHit"] is False
    assert api["config"] == {"include_timestamps": True}
    assert "voiceModelId" in api


def test_granularities():
    assert [g.value for g in TimestampGranularity] == ["word", "syllable", "both"]


def test_timestamps_validate_their_span():
    word = WordTimestamp(text="hello", start=0.0, end=0.4, char_start=6, char_end=11)
    assert word.model_dump(by_alias=True, exclude_none=True) == {
        "text": "hello",
        "start": 0.0,
        "end": 0.4,
        "charStart": 6,
        "charEnd": 11,
    }
    assert WordTimestamp(text="a", start=0.2, end=0.2, char_start=0, char_end=1).end == 0.2
    syllable = SyllableTimestamp.model_validate(
        {"text": "hel", "start": 0, "end": 0.2, "charStart": 6, "charEnd": 9, "wordIndex": 0}
    )
    assert syllable.to_api()["wordIndex"] == 0
    bad_spans: list[dict[str, object]] = [
        {"start": 0.5, "end": 0.4},
        {"start": -0.1, "end": 0.4},
        {"start": 0, "end": float("inf")},
        {"text": "", "start": 0, "end": 1},
        {"start": 0, "end": 1, "charStart": 3, "charEnd": 2},
        {"start": 0, "end": 1, "charStart": -1, "charEnd": 2},
    ]
    for bad in bad_spans:
        with pytest.raises(ValidationError):
            WordTimestamp.model_validate({"text": "w", "charStart": 0, "charEnd": 1} | bad)
    with pytest.raises(ValidationError):
        SyllableTimestamp(text="x", start=0, end=1, char_start=0, char_end=1, word_index=-1)


def test_checksum_format():
    assert checksum_of(b"abc") == f"sha256:{hashlib.sha256(b'abc').hexdigest()}"
    assert make_file(checksum=f"SHA256:{DIGEST.upper()}").checksum == f"sha256:{DIGEST}"
    for bad in ["abc123", f"md5:{DIGEST}", "sha256:abc123...", f"sha256:{'g' * 64}"]:
        with pytest.raises(ValidationError, match="sha256"):
            make_file(checksum=bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("file_size", -1),
        ("duration", -0.5),
        ("download_count", -1),
        ("format", "wma"),
        ("filename", ""),
        ("sample_rate", 500_000),
    ],
)
def test_audio_file_rejects_invalid_values(field, value):
    with pytest.raises(ValidationError):
        make_file(**{field: value})


def test_audio_file_expiry():
    audio = make_file(expires_at=NOW + timedelta(days=30))
    assert not audio.is_expired(NOW)
    assert audio.is_expired(NOW + timedelta(days=30))
    assert not make_file().is_expired(NOW + timedelta(days=3650))


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("wav", "audio/wav"),
        ("mp3", "audio/mpeg"),
        ("flac", "audio/flac"),
        ("ogg_opus", "audio/ogg"),
    ],
)
def test_audio_file_content_type(fmt, content_type):
    assert make_file(format=fmt).content_type == content_type


def test_audio_file_serializes_camel_case():
    api = make_file(checksum=f"sha256:{DIGEST}").to_api()
    assert api["fileSize"] == 1048576
    assert api["synthesisJobId"].startswith("job-")
    assert api["isPublic"] is False
    assert api["checksum"] == f"sha256:{DIGEST}"
