"""Large samples through a signed upload URL; the storage event starts their processing.

The URL is used as a phone would (a PUT to the local blob server, which checks the
signature, content type and size); the finalize event is built as Eventarc sends it and
given to the ``sample-uploaded`` function directly, as Google's storage-trigger samples
test theirs, and once through the Functions Framework in binary content mode.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import functions_framework
import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from werkzeug.test import Client

from functions.sample_uploaded import sample_uploaded
from local.blob_server import BlobServer
from shared.blobs.events import finalized_event, finalized_object
from shared.blobs.local import LocalObjectStorage
from shared.bootstrap import get_container
from shared.samples.deps import Caller, SampleDeps
from shared.samples.library import delete_sample, purge_samples
from shared.samples.model import UploadUrlRequest, VoiceSampleCreate
from shared.samples.processing import process_sample
from shared.samples.repository import VOICE_SAMPLES
from shared.samples.uploads import create_upload_url, sample_object_finalized, upload_sample
from shared.store import Query
from tests.functions.conftest import bearer
from tests.functions.samples_fixtures import samples_client, wait_for_sample, worker
from tests.support.interleaved_storage import InterleavedStorage
from tests.support.ports import FixedPorts
from tests.support.voice_samples import TEXTS, encode, sample_file, speech

__all__ = ["samples_client", "worker"]

ROOT = Path(__file__).resolve().parents[2]


def ask_for_url(client, token, **body):
    body = {"contentType": "audio/flac", "sizeBytes": 400_000, "name": "Big one", **body}
    return client.post("/samples/upload-url", json=body, headers=bearer(token))


def put(url: str, data: bytes, headers: dict[str, str]):
    parts = urlsplit(url)
    return Client(BlobServer(get_container().blobs)).put(
        parts.path, query_string=parts.query, data=data, headers=headers
    )


def event_for(name: str, **changes) -> CloudEvent:
    container = get_container()
    info = container.blobs.info(container.settings.samples_bucket, name)
    event = finalized_event(info)
    for key, value in changes.items():
        event[key] = value
    return event


def test_a_signed_upload_and_its_event_process_the_sample(samples_client, token):
    ann = token("ann")
    response = ask_for_url(samples_client, ann, isPublic=True, language="fr-FR")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    sample, signed = body["sample"], body["upload"]
    assert sample["status"] == "awaiting_upload"
    assert (sample["name"], sample["language"], sample["isPublic"]) == ("Big one", "fr-FR", True)
    assert signed["method"] == "PUT"
    assert signed["headers"] == {"Content-Type": "audio/flac"}
    assert signed["maxBytes"] == 400_000
    assert datetime.fromisoformat(signed["expiresAt"].replace("Z", "+00:00")) > datetime.now(UTC)

    data = sample_file("en-US+f4", 0, fmt="flac")
    assert put(signed["url"], data, signed["headers"]).status_code == 200
    sample_uploaded(event_for(sample["filePath"]))

    ready = wait_for_sample(samples_client, ann, sample["id"])
    assert ready["status"] == "ready", ready
    assert (ready["format"], ready["sizeBytes"]) == ("flac", len(data))


def test_the_url_honours_the_declared_size_and_content_type(samples_client, token):
    ann = token("ann")
    signed = ask_for_url(samples_client, ann, sizeBytes=1000).get_json()["upload"]
    too_big = put(signed["url"], sample_file("en-US", fmt="flac"), signed["headers"])
    assert too_big.status_code == 413
    other_type = put(signed["url"], b"fLaC....", {"Content-Type": "audio/wav"})
    assert other_type.status_code == 403
    container = get_container()
    assert container.blobs.list(container.settings.samples_bucket).items == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"contentType": "text/html"}, 415, "UNSUPPORTED_AUDIO_FORMAT"),
        ({"contentType": "video/mp4"}, 415, "UNSUPPORTED_AUDIO_FORMAT"),
        ({"sizeBytes": 10**12}, 413, "SAMPLE_TOO_LARGE"),
        ({"sizeBytes": 0}, 400, "VALIDATION_ERROR"),
        ({"sizeBytes": "big"}, 400, "VALIDATION_ERROR"),
        ({"contentType": ""}, 400, "VALIDATION_ERROR"),
        ({"extra": 1}, 400, "VALIDATION_ERROR"),
    ],
)
def test_upload_url_requests_are_checked(samples_client, token, body, status, code):
    response = ask_for_url(samples_client, token("ann"), **body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["code"] == code
    assert get_container().store.count(Query(VOICE_SAMPLES)) == 0


def test_a_bad_file_sent_to_the_url_fails_the_sample_with_the_reason(samples_client, token):
    ann = token("ann")
    body = ask_for_url(samples_client, ann, contentType="audio/wav").get_json()
    assert (
        put(
            body["upload"]["url"], b"RIFF\x00\x00\x00\x00WAVEjunk" * 10, body["upload"]["headers"]
        ).status_code
        == 200
    )
    sample_uploaded(event_for(body["sample"]["filePath"]))
    failed = wait_for_sample(samples_client, ann, body["sample"]["id"])
    assert failed["status"] == "failed"
    assert "damaged" in failed["failureReason"] or "decoded" in failed["failureReason"]


def test_audio_whose_rate_a_sample_cannot_hold_fails_it_rather_than_leave_it_processing(
    samples_client, token
):
    ann = token("ann")
    body = ask_for_url(samples_client, ann, contentType="audio/wav").get_json()
    data = encode(speech("en-US", TEXTS[0]), rate=4_000)
    assert put(body["upload"]["url"], data, body["upload"]["headers"]).status_code == 200
    sample_uploaded(event_for(body["sample"]["filePath"]))
    failed = wait_for_sample(samples_client, ann, body["sample"]["id"], timeout=20)
    assert failed["status"] == "failed", failed
    assert "4000 Hz" in failed["failureReason"]


def test_duplicate_stale_foreign_and_unknown_object_events(samples_client, token, caplog):
    ann = token("ann")
    container = get_container()
    bucket = container.settings.samples_bucket
    body = ask_for_url(samples_client, ann, contentType="audio/wav").get_json()
    data = sample_file("en-US+m2", 1)
    put(body["upload"]["url"], data, body["upload"]["headers"])
    event = event_for(body["sample"]["filePath"])

    # An event older than the cutoff is acknowledged and dropped.
    sample_uploaded(event_for(body["sample"]["filePath"], time="2020-01-01T00:00:00.000Z"))
    assert (
        samples_client.get(f"/samples/{body['sample']['id']}", headers=bearer(ann)).get_json()[
            "status"
        ]
        == "awaiting_upload"
    )

    sample_uploaded(event)
    sample_uploaded(event)  # Eventarc delivers at least once
    ready = wait_for_sample(samples_client, ann, body["sample"]["id"])
    assert ready["status"] == "ready"
    assert ready["sizeBytes"] == len(data)
    sample_uploaded(event)  # ... even after the sample is processed: its object stays
    assert container.blobs.exists(bucket, body["sample"]["filePath"])

    # Other objects of the bucket are left alone, and so are names no sample id takes under
    # samples/: pre-call mappings may name recordings put under samples/{account}/.
    container.blobs.put(bucket, "other/readme.txt", b"x", content_type="text/plain")
    sample_uploaded(event_for("other/readme.txt"))
    assert container.blobs.exists(bucket, "other/readme.txt")
    recording = f"samples/acme/{uuid.uuid4().hex}.wav"
    container.blobs.put(bucket, recording, data, content_type="audio/wav")
    sample_uploaded(event_for(recording))
    assert container.blobs.exists(bucket, recording)
    # An object named like a sample that no sample names is deleted (see below).
    unknown = f"samples/ann/{uuid.uuid4().hex}"
    container.blobs.put(bucket, unknown, data, content_type="audio/wav")
    sample_uploaded(event_for(unknown))
    assert not container.blobs.exists(bucket, unknown)
    assert get_container().store.get(VOICE_SAMPLES, unknown.rsplit("/", 1)[1]) is None
    # ... and so is one under another user's folder that bears a live sample's id; the
    # sample and its own object are untouched.
    misplaced = f"samples/bob/{body['sample']['id']}"
    container.blobs.put(bucket, misplaced, data, content_type="audio/wav")
    sample_uploaded(event_for(misplaced))
    assert not container.blobs.exists(bucket, misplaced)
    assert container.blobs.exists(bucket, body["sample"]["filePath"])
    assert wait_for_sample(samples_client, ann, body["sample"]["id"])["status"] == "ready"

    # A malformed event is logged and acknowledged, never raised (no retry loop).
    sample_uploaded(
        CloudEvent(
            {
                "type": "google.cloud.storage.object.v1.finalized",
                "source": "//storage.googleapis.com/projects/_/buckets/b",
            },
            {"no": "object"},
        )
    )


def test_an_upload_to_a_deleted_samples_url_is_deleted_and_never_counted(
    samples_client, function_client, token, caplog
):
    ann = token("ann")
    users = function_client("users")
    assert (
        users.post("/users", json={"email": "ann@example.com"}, headers=bearer(ann)).status_code
        == 201
    )
    container = get_container()
    bucket = container.settings.samples_bucket
    body = ask_for_url(samples_client, ann, contentType="audio/wav").get_json()
    sample, signed = body["sample"], body["upload"]
    deleted = samples_client.delete(f"/samples/{sample['id']}", headers=bearer(ann))
    assert deleted.status_code == 200, deleted.get_json()

    # The signed URL cannot be recalled: it still takes the file until it expires.
    data = sample_file("en-US+m2", 1)
    assert put(signed["url"], data, signed["headers"]).status_code == 200
    event = event_for(sample["filePath"])
    with caplog.at_level(logging.INFO, logger="shared.samples.uploads"):
        sample_uploaded(event)  # acknowledged: returns, so the event is not sent again

    assert not container.blobs.exists(bucket, sample["filePath"])
    assert any(
        record.levelno == logging.INFO and sample["filePath"] in record.getMessage()
        for record in caplog.records
    ), caplog.text
    sample_uploaded(event)  # a duplicate delivery finds nothing left to do
    assert samples_client.get(f"/samples/{sample['id']}", headers=bearer(ann)).status_code == 404
    assert users.get("/users/me", headers=bearer(ann)).get_json()["storageUsedBytes"] == 0
    assert container.store.count(Query(VOICE_SAMPLES)) == 0


def test_the_function_takes_the_event_in_binary_mode_as_eventarc_posts_it(samples_client, token):
    ann = token("ann")
    body = ask_for_url(samples_client, ann, contentType="audio/wav").get_json()
    put(body["upload"]["url"], sample_file("en-US", 2), body["upload"]["headers"])
    headers, payload = to_binary(event_for(body["sample"]["filePath"]))
    app = functions_framework.create_app("sample_uploaded", str(ROOT / "main.py"), "cloudevent")
    response = app.test_client().post("/", headers=headers, data=payload)
    assert response.status_code == 200
    assert wait_for_sample(samples_client, ann, body["sample"]["id"])["status"] == "ready"


S = TypeVar("S", bound=LocalObjectStorage)


def eventful_deps(storage_type: type[S], path: Path) -> tuple[SampleDeps, S, list[str]]:
    """Return the samples' deps over an embedded storage of ``storage_type`` that hands
    each object's event to the trigger synchronously, inside the write itself; and the
    trigger's outcomes, in order."""
    container = get_container()
    deps: list[SampleDeps] = []
    outcomes: list[str] = []

    def deliver(event: CloudEvent) -> None:
        found = finalized_object(event)
        outcomes.append(
            sample_object_finalized(
                deps[0],
                name=found.name,
                size=found.size,
                content_type=found.content_type,
                generation=found.generation,
            )
        )

    storage = storage_type(
        path / "blobs",
        signing_key=b"k" * 32,
        public_base_url="http://127.0.0.1:8080",
        max_upload_bytes=10**8,
        on_finalized=deliver,
    )
    ports = FixedPorts(
        container.store, storage, container.settings, container.providers, container.task_queue
    )
    deps.append(SampleDeps(ports))
    return deps[0], storage, outcomes


def test_a_multipart_uploads_own_event_finds_its_sample(platform, tmp_path):
    # Eventarc may deliver the object's event before the upload's request has finished:
    # here the storage hands it over synchronously, inside the write itself.
    container = get_container()
    deps, storage, outcomes = eventful_deps(LocalObjectStorage, tmp_path)
    sample = upload_sample(
        deps, Caller("ann"), sample_file("en-US", 0), VoiceSampleCreate(name="race")
    )

    assert outcomes == ["processing enqueued (seen)"]  # not "ignored: no sample names..."
    assert storage.exists(container.settings.samples_bucket, sample.file_path)
    process_sample(deps, sample.id)
    stored = get_container().store.get(VOICE_SAMPLES, sample.id)
    assert stored.data["status"] == "ready"
    storage.close()


def test_the_daily_job_deletes_a_sample_whose_upload_never_came(
    samples_client, function_client, token
):
    from datetime import timedelta

    from shared.model import with_changes
    from shared.samples.repository import SampleRepository

    ann = token("ann")
    old = ask_for_url(samples_client, ann).get_json()["sample"]["id"]
    recent = ask_for_url(samples_client, ann).get_json()["sample"]["id"]
    container = get_container()
    repository = SampleRepository(container.store)
    stored = repository.get(old)
    assert stored is not None
    age = timedelta(seconds=container.settings.samples_awaiting_upload_max_seconds + 60)
    repository.save(with_changes(stored, created_at=stored.created_at - age))
    jobs = function_client("tasks")
    admin = bearer(token("root", admin=True))
    listed = jobs.get("/scheduler/jobs", headers=admin).get_json()
    assert "samples-upload-expiry" in json.dumps(listed)

    ran = jobs.post("/scheduler/jobs/samples-upload-expiry/run", headers=admin)

    assert ran.status_code == 202, ran.get_json()
    deadline = time.monotonic() + 30
    while samples_client.get(f"/samples/{old}", headers=bearer(ann)).status_code != 404:
        assert time.monotonic() < deadline, "the sample awaiting its upload was not deleted"
        time.sleep(0.05)
    kept = samples_client.get(f"/samples/{recent}", headers=bearer(ann)).get_json()
    assert kept["status"] == "awaiting_upload"


@pytest.mark.parametrize("how", ["sample", "account"])
def test_an_upload_landing_while_its_sample_is_deleted_goes_too(platform, tmp_path, how):
    # The signed URL's file lands between the object's deletion and the record's, and its
    # event comes at once (the sample is still there: it is marked uploaded).
    container = get_container()
    deps, storage, outcomes = eventful_deps(InterleavedStorage, tmp_path)
    bucket = container.settings.samples_bucket
    asked = create_upload_url(
        deps, Caller("ann"), UploadUrlRequest(content_type="audio/wav", size_bytes=10**6)
    )
    path = asked.sample.file_path

    def upload() -> None:
        storage.put(bucket, path, sample_file("en-US", 0), content_type="audio/wav")

    if how == "sample":
        storage.after_delete = upload
        delete_sample(deps, Caller("ann"), asked.sample.id)
    else:
        # The account's purge deletes the folder, then the records.
        original = storage.delete_prefix

        def delete_prefix(bucket: str, prefix: str) -> int:
            count = original(bucket, prefix)
            if not outcomes:
                upload()
            return count

        storage.delete_prefix = delete_prefix  # type: ignore[method-assign]
        purge_samples(deps, "ann")
    assert outcomes == ["processing enqueued (uploaded)"]  # the sample was still there
    assert not storage.exists(bucket, path)
    assert container.store.count(Query(VOICE_SAMPLES)) == 0
    storage.close()
