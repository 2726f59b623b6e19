"""The trainer's ``metadata.json`` contract, and the storage events that announce it."""

from __future__ import annotations

import json

import pytest
from cloudevents.http import CloudEvent

from shared.blobs.events import MalformedEventError, finalized_object
from shared.samples.training.artifacts import (
    TrainingArtifactError,
    TrainingMetadata,
    parse_metadata_name,
    read_metadata,
    write_metadata,
)

COMPLETED = {
    "status": "completed",
    "voice": {"voiceId": "en-US+f3", "language": "en-US", "pitch": 1.1, "speed": 0.9},
    "qualityComponents": {"similarity": 0.9, "naturalness": 0.3, "clarity": 1, "consistency": 0.9},
    "metrics": {"matchCosine": 0.91},
}


def test_a_written_result_reads_back_the_same():
    metadata = TrainingMetadata.model_validate(COMPLETED)
    assert read_metadata(write_metadata(metadata)) == metadata


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"[]",
        b'{"status": "done"}',
        b'{"status": "completed"}',  # a completed training names its voice and quality
        json.dumps({**COMPLETED, "qualityComponents": {"similarity": 2}}).encode(),
        json.dumps({**COMPLETED, "voice": {"voiceId": "x", "pitch": 40}}).encode(),
        b'{"status": "failed", "metrics": {"x": NaN}}',
        b"\xff\xfe",
        b"[" * 5000 + b"]" * 5000,
        b" " * (300 * 1024),
    ],
)
def test_anything_else_is_an_artifact_error(data):
    with pytest.raises(TrainingArtifactError):
        read_metadata(data)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("models/ann/m1/metadata.json", ("ann", "m1")),
        ("models/ann/m1/model.json", None),
        ("models/ann/metadata.json", None),
        ("deleted/ann/m1/metadata.json", None),
        ("models/ann/m1/sub/metadata.json", None),
    ],
)
def test_only_a_models_metadata_json_completes_it(name, expected):
    assert parse_metadata_name(name) == expected


def event(data: object, **attributes: str) -> CloudEvent:
    base = {
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/b",
    }
    return CloudEvent({**base, **attributes}, data)


def test_the_finalized_object_is_read_from_the_event():
    found = finalized_object(
        event(
            {
                "bucket": "b",
                "name": "x/y",
                "size": "12",
                "generation": "3",
                "contentType": "audio/wav",
                "updated": "2026-01-02T03:04:05.678Z",
            },
            time="2026-01-02T03:04:05.678Z",
        )
    )
    assert (found.bucket, found.name, found.size, found.generation) == ("b", "x/y", 12, 3)
    assert found.time.isoformat() == "2026-01-02T03:04:05.678000+00:00"


@pytest.mark.parametrize(
    "data",
    [None, [], {"bucket": "b"}, {"bucket": "b", "name": "n", "size": "many", "timeCreated": "x"}],
)
def test_a_malformed_event_is_a_malformed_event_error(data):
    with pytest.raises(MalformedEventError):
        finalized_object(event(data))
