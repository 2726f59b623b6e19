"""Voice samples over HTTP: upload, processing, reading, changing and deleting them.

Every upload is real speech (eSpeak) in a real container; processing runs on the embedded
task worker, as under ``make run``.
"""

from __future__ import annotations

import uuid
from io import BytesIO

import numpy as np
import pytest

from shared.bootstrap import get_container
from shared.samples.repository import VOICE_EMBEDDINGS, VOICE_SAMPLES
from shared.store import Query
from tests.functions.conftest import bearer
from tests.functions.samples_fixtures import (
    ready_sample,
    samples_client,
    upload,
    wait_for_sample,
    worker,
)
from tests.support.voice_samples import (
    RATE,
    TEXTS,
    clipped,
    encode,
    noisy,
    sample_file,
    silence,
    speech,
)

__all__ = ["samples_client", "worker"]


def assert_error(response, status: int, code: str) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert {"error", "code", "timestamp", "requestId"} <= set(body)
    assert body["code"] == code, body
    return body


def stored_documents(collection: str) -> int:
    return get_container().store.count(Query(collection))


@pytest.mark.parametrize(
    ("fmt", "rate", "channels"),
    [
        ("wav", 22_050, 1),
        ("wav", 48_000, 2),
        ("flac", 16_000, 1),
        ("ogg", 22_050, 1),
        ("mp3", 22_050, 1),
    ],
)
def test_each_format_is_processed_to_its_facts_quality_voice_and_prosody(
    samples_client, token, fmt, rate, channels
):
    ann = token("ann")
    audio = speech("en-US+f3", TEXTS[0], rate=rate)
    response = upload(
        samples_client, ann, encode(audio, fmt, rate=rate, channels=channels), name="Take 1"
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["status"] == "uploaded"
    assert (created["format"], created["sampleRate"], created["channels"]) == (fmt, rate, channels)

    sample = wait_for_sample(samples_client, ann, created["id"])

    assert sample["status"] == "ready", sample
    assert sample["name"] == "Take 1"
    assert sample["format"] == fmt
    assert sample["sampleRate"] == rate
    assert sample["channels"] == channels
    assert sample["duration"] == pytest.approx(len(audio) / rate, abs=0.06)
    assert sample["language"] == "en-US"
    assert 0 <= sample["qualityScore"] <= 10
    assert set(sample["quality"]["components"]) == {"snr", "clipping", "silence", "bandwidth"}
    assert sample["voiceEmbeddingId"] == sample["id"]
    assert sample["prosody"]["f0MedianHz"] > 100
    assert sample["prosody"]["syllablesPerSecond"] > 2
    embedding = get_container().store.get(VOICE_EMBEDDINGS, sample["id"]).data
    assert len(embedding["embedding"]) == 256
    assert np.linalg.norm(embedding["embedding"]) == pytest.approx(1.0, abs=1e-5)
    assert (embedding["user_id"], embedding["is_public"]) == ("ann", False)


def test_the_format_comes_from_the_bytes_never_the_file_name(samples_client, token):
    ann = token("ann")
    response = upload(samples_client, ann, sample_file("en-US", fmt="flac"), filename="song.mp3")
    assert response.get_json()["format"] == "flac"
    assert response.get_json()["name"] == "song"


def test_quality_ranks_clean_above_noisy_and_flags_clipping(samples_client, token):
    ann = token("ann")
    clean = speech("en-US+m3", TEXTS[1])
    scores = {
        name: ready_sample(samples_client, ann, encode(audio))
        for name, audio in {
            "clean": clean,
            "noisy": noisy(clean, snr_db=8),
            "clipped": clipped(clean),
        }.items()
    }
    assert scores["clean"]["qualityScore"] > scores["noisy"]["qualityScore"]
    assert scores["clean"]["qualityScore"] > scores["clipped"]["qualityScore"]
    assert "snr" in scores["noisy"]["quality"]["problems"]
    assert "clipping" in scores["clipped"]["quality"]["problems"]
    assert scores["clean"]["quality"]["usable"] is True


def test_audio_without_speech_fails_processing_with_the_reason(samples_client, token):
    ann = token("ann")
    response = upload(samples_client, ann, encode(silence(5.0)))
    assert response.status_code == 201
    sample = wait_for_sample(samples_client, ann, response.get_json()["id"])
    assert sample["status"] == "failed"
    assert "speech" in sample["failureReason"].lower() or "silent" in sample["failureReason"]
    assert stored_documents(VOICE_EMBEDDINGS) == 0


def multipart(body: bytes, boundary: str = "b0undary") -> dict:
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def form(**fields) -> dict:
    return {"data": fields, "content_type": "multipart/form-data"}


TRUNCATED_WAV = sample_file("en-US")[:30_000]
GARBLED_FLAC = sample_file("en-US", fmt="flac")[:200] + bytes(range(256)) * 200
ONE_SECOND = encode(speech("en-US", "Hello.")[:RATE])
# Well-formed files the sample's facts cannot hold: 8-192 kHz and at most 64 channels.
LOW_RATE_WAV = encode(speech("en-US", TEXTS[0]), rate=4_000)
HIGH_RATE_WAV = encode(np.repeat(speech("en-US", TEXTS[0]), 9), rate=RATE * 9)
MANY_CHANNELS_WAV = encode(speech("en-US", TEXTS[0])[: 4 * RATE : 2], rate=RATE // 2, channels=70)


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        ({"json": {"file": "abc"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ({"data": b"RIFF", "content_type": "audio/wav"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (form(name="no file"), 400, "INVALID_UPLOAD"),
        (form(file=(BytesIO(b""), "empty.wav")), 400, "INVALID_UPLOAD"),
        (
            form(file=(BytesIO(b"hello, this is text" * 50), "a.wav")),
            415,
            "UNSUPPORTED_AUDIO_FORMAT",
        ),
        (
            form(file=(BytesIO(b"<html><body>hi</body></html>"), "a.mp3")),
            415,
            "UNSUPPORTED_AUDIO_FORMAT",
        ),
        (form(file=(BytesIO(TRUNCATED_WAV), "a.wav")), 400, "CORRUPT_AUDIO"),
        (form(file=(BytesIO(GARBLED_FLAC), "a.flac")), 400, "CORRUPT_AUDIO"),
        (form(file=(BytesIO(ONE_SECOND), "a.wav")), 400, "SAMPLE_TOO_SHORT"),
        (form(file=(BytesIO(LOW_RATE_WAV), "a.wav")), 400, "SAMPLE_AUDIO_UNSUPPORTED"),
        (form(file=(BytesIO(HIGH_RATE_WAV), "a.wav")), 400, "SAMPLE_AUDIO_UNSUPPORTED"),
        (form(file=(BytesIO(MANY_CHANNELS_WAV), "a.wav")), 400, "SAMPLE_AUDIO_UNSUPPORTED"),
        (form(file=(BytesIO(ONE_SECOND), "a.wav"), color="red"), 400, "INVALID_UPLOAD"),
        (form(file=(BytesIO(ONE_SECOND), "a.wav"), isPublic="maybe"), 400, "VALIDATION_ERROR"),
        (
            form(file=(BytesIO(ONE_SECOND), "a.wav"), language="not a language"),
            400,
            "VALIDATION_ERROR",
        ),
        (
            form(file=[(BytesIO(ONE_SECOND), "a.wav"), (BytesIO(ONE_SECOND), "b.wav")]),
            400,
            "INVALID_UPLOAD",
        ),
        (multipart(b'--b0undary\r\nContent-Disposition: form-data; name="file"'), 400, None),
        (multipart(b"garbage without any boundary at all"), 400, "INVALID_UPLOAD"),
        (multipart(b"--x\r\n\r\n", boundary=""), 400, None),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_uploads_get_a_clear_4xx_and_store_nothing(
    samples_client, token, request_args, status, code
):
    response = samples_client.post("/samples", headers=bearer(token("ann")), **request_args)
    body = response.get_json()
    assert body is not None, response.get_data()[:200]
    assert response.status_code == status, body
    assert {"error", "code", "timestamp", "requestId"} <= set(body)
    if code is not None:
        assert body["code"] == code
    assert stored_documents(VOICE_SAMPLES) == 0
    assert get_container().blobs.list(get_container().settings.samples_bucket).items == []


def test_durations_and_sizes_beyond_the_settings_are_413(samples_client, token, monkeypatch):
    ann = token("ann")
    five_seconds = encode(speech("en-US", TEXTS[2])[: 5 * RATE])
    monkeypatch.setattr(get_container().settings, "samples_max_seconds", 4.0)
    assert_error(upload(samples_client, ann, five_seconds), 413, "SAMPLE_TOO_LONG")
    monkeypatch.setattr(get_container().settings, "samples_max_seconds", 600.0)
    monkeypatch.setattr(get_container().settings, "samples_max_upload_bytes", 100_000)
    body = assert_error(upload(samples_client, ann, five_seconds), 413, "SAMPLE_TOO_LARGE")
    assert "upload-url" in body["error"]
    assert stored_documents(VOICE_SAMPLES) == 0


def test_users_see_their_own_samples_and_public_ones_only(samples_client, token):
    ann, bob = token("ann"), token("bob")
    private = upload(samples_client, ann, sample_file("en-US", 0)).get_json()
    public = upload(samples_client, ann, sample_file("en-US", 1), isPublic="true").get_json()
    assert public["isPublic"] is True

    assert samples_client.get(f"/samples/{public['id']}", headers=bearer(bob)).status_code == 200
    assert_error(
        samples_client.get(f"/samples/{private['id']}", headers=bearer(bob)),
        404,
        "SAMPLE_NOT_FOUND",
    )
    assert samples_client.get("/samples", headers=bearer(bob)).get_json()["samples"] == []
    listed = samples_client.get("/samples?scope=public", headers=bearer(bob)).get_json()
    assert [s["id"] for s in listed["samples"]] == [public["id"]]
    assert_error(
        samples_client.patch(
            f"/samples/{public['id']}", json={"name": "mine"}, headers=bearer(bob)
        ),
        403,
        "ACCESS_DENIED",
    )
    assert_error(
        samples_client.delete(f"/samples/{public['id']}", headers=bearer(bob)), 403, "ACCESS_DENIED"
    )
    assert_error(
        samples_client.delete(f"/samples/{private['id']}", headers=bearer(bob)),
        404,
        "SAMPLE_NOT_FOUND",
    )
    admin = token("root", admin=True)
    assert samples_client.get(f"/samples/{private['id']}", headers=bearer(admin)).status_code == 200


def test_patch_changes_name_language_and_public_flag(samples_client, token):
    ann = token("ann")
    sample = ready_sample(samples_client, ann, sample_file("en-US+f2", 0))
    response = samples_client.patch(
        f"/samples/{sample['id']}",
        json={"name": "Morning take", "language": "en_gb", "isPublic": True},
        headers=bearer(ann),
    )
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert (changed["name"], changed["language"], changed["isPublic"]) == (
        "Morning take",
        "en-GB",
        True,
    )
    stored = get_container().store.get(VOICE_EMBEDDINGS, sample["id"]).data
    assert (stored["is_public"], stored["language"]) == (True, "en-GB")
    for body in ({}, {"name": None}, {"name": ""}, {"status": "ready"}, {"isPublic": "yes"}):
        response = samples_client.patch(f"/samples/{sample['id']}", json=body, headers=bearer(ann))
        assert response.status_code == 400, (body, response.get_json())


def test_the_list_is_paged_newest_first(samples_client, token):
    ann = token("ann")
    ids = [upload(samples_client, ann, sample_file("en-US", i)).get_json()["id"] for i in range(3)]
    first = samples_client.get("/samples?limit=2", headers=bearer(ann)).get_json()
    assert [s["id"] for s in first["samples"]] == ids[::-1][:2]
    second = samples_client.get(
        f"/samples?limit=2&cursor={first['nextCursor']}", headers=bearer(ann)
    ).get_json()
    assert [s["id"] for s in second["samples"]] == [ids[0]]
    assert second["nextCursor"] is None
    assert_error(
        samples_client.get("/samples?cursor=not-a-cursor", headers=bearer(ann)),
        400,
        "VALIDATION_ERROR",
    )
    for query in ("limit=0", "limit=101", "scope=everyone", "status=done"):
        assert samples_client.get(f"/samples?{query}", headers=bearer(ann)).status_code == 400


def test_samples_uploaded_before_registering_count_in_storage_used(
    samples_client, function_client, token
):
    ann = token("ann")
    users = function_client("users")
    early = ready_sample(samples_client, ann, sample_file("en-US+m1", 0))
    registered = users.post("/users", json={"email": "ann@example.com"}, headers=bearer(ann))
    assert registered.status_code == 201
    assert registered.get_json()["storageUsedBytes"] == early["sizeBytes"] > 0
    # Deleting it frees exactly its bytes: the counter never drifts below what is held.
    assert samples_client.delete(f"/samples/{early['id']}", headers=bearer(ann)).status_code == 200
    assert users.get("/users/me", headers=bearer(ann)).get_json()["storageUsedBytes"] == 0


def test_delete_removes_the_object_the_embedding_and_the_storage_used(
    samples_client, function_client, token
):
    ann = token("ann")
    users = function_client("users")
    assert (
        users.post("/users", json={"email": "ann@example.com"}, headers=bearer(ann)).status_code
        == 201
    )
    sample = ready_sample(samples_client, ann, sample_file("en-US+m1", 0))
    container = get_container()
    used = users.get("/users/me", headers=bearer(ann)).get_json()["storageUsedBytes"]
    assert used == sample["sizeBytes"] > 0
    assert container.blobs.exists(container.settings.samples_bucket, sample["filePath"])

    response = samples_client.delete(f"/samples/{sample['id']}", headers=bearer(ann))

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "id": sample["id"],
        "deletedObject": True,
        "deletedEmbedding": True,
        "freedBytes": sample["sizeBytes"],
    }
    assert not container.blobs.exists(container.settings.samples_bucket, sample["filePath"])
    assert container.store.get(VOICE_EMBEDDINGS, sample["id"]) is None
    assert users.get("/users/me", headers=bearer(ann)).get_json()["storageUsedBytes"] == 0
    assert_error(
        samples_client.delete(f"/samples/{sample['id']}", headers=bearer(ann)),
        404,
        "SAMPLE_NOT_FOUND",
    )


def test_the_openapi_document_describes_the_upload_form_that_is_accepted(
    samples_client, function_client, token
):
    document = function_client("openapi").get("/openapi.json").get_json()
    body = document["paths"]["/samples"]["post"]["requestBody"]
    assert body["required"] is True
    assert list(body["content"]) == ["multipart/form-data"]
    ref = body["content"]["multipart/form-data"]["schema"]["$ref"]
    form_schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert form_schema["required"] == ["file"]
    assert form_schema["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "title": "File",
        "description": "The audio: wav, mp3, flac or ogg, read from the bytes",
    }
    assert {"name", "language", "isPublic"} <= set(form_schema["properties"])
    # A form made of exactly the fields the document names is accepted as documented.
    fields = {"name": "From the document", "language": "fr", "isPublic": "true"}
    assert set(fields) | {"file"} == set(form_schema["properties"])
    response = upload(samples_client, token("ann"), sample_file("fr"), **fields)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert (created["name"], created["language"], created["isPublic"]) == (
        "From the document",
        "fr",
        True,
    )


def a_ready_sample(samples_client, ann):
    """Return a sample of ``ann`` processed to ready: its API form, the samples' deps, a
    repository and its record."""
    from shared.samples import CAPABILITY as SAMPLES
    from shared.samples.repository import SampleRepository

    sample = ready_sample(samples_client, ann, sample_file("en-US", 1))
    deps = get_container().deps(SAMPLES)
    repository = SampleRepository(deps.store)
    ready = repository.get(sample["id"])
    assert ready is not None
    return sample, deps, repository, ready


def test_processing_is_idempotent_and_redoes_only_an_attempt_that_died(samples_client, token):
    from shared.samples.model import SampleStatus
    from shared.samples.processing import process_sample

    ann = token("ann")
    sample, deps, repository, ready = a_ready_sample(samples_client, ann)

    process_sample(deps, sample["id"])  # a duplicate delivery: nothing changes
    assert repository.get(sample["id"]) == ready
    assert stored_documents(VOICE_EMBEDDINGS) == 1

    # An attempt that died mid-way left it "processing": the next delivery finishes it.
    repository.save(ready.model_copy(update={"status": SampleStatus.PROCESSING}))
    process_sample(deps, sample["id"])
    redone = repository.get(sample["id"])
    assert redone is not None
    assert redone.status is SampleStatus.READY
    assert redone.quality_score == ready.quality_score
    assert stored_documents(VOICE_EMBEDDINGS) == 1

    # Its audio gone meanwhile: the sample fails with the reason, never stays "processing".
    repository.save(ready.model_copy(update={"status": SampleStatus.PROCESSING}))
    deps.blobs.delete(deps.bucket, ready.file_path)
    process_sample(deps, sample["id"])
    failed = repository.get(sample["id"])
    assert failed is not None
    assert failed.status is SampleStatus.FAILED
    assert "upload the sample again" in (failed.failure_reason or "")


def test_a_sample_deleted_while_it_is_analysed_leaves_no_embedding(samples_client, token):
    from shared.samples.deps import SampleDeps
    from shared.samples.model import SampleStatus
    from shared.samples.processing import process_sample

    ann = token("ann")
    sample, deps, repository, ready = a_ready_sample(samples_client, ann)
    repository.save(ready.model_copy(update={"status": SampleStatus.PROCESSING}))

    class DeletedMeanwhile(SampleDeps):
        """The owner deletes the sample while its speaker embedding is computed."""

        def encoder(self):
            encoder = super().encoder()

            class Encoder:
                def embed(self, *args, **kwargs):
                    deleted = samples_client.delete(f"/samples/{sample['id']}", headers=bearer(ann))
                    assert deleted.status_code == 200, deleted.get_json()
                    return encoder.embed(*args, **kwargs)

            return Encoder()

    process_sample(DeletedMeanwhile(deps.ports), sample["id"])

    assert repository.get(sample["id"]) is None  # not brought back as "ready"
    assert stored_documents(VOICE_EMBEDDINGS) == 0  # and no embedding left to match


@pytest.mark.parametrize("last_attempt", [False, True])
def test_a_result_the_store_cannot_take_is_retried_or_given_up_never_left_processing(
    samples_client, token, last_attempt
):
    from shared.errors import ServiceUnavailableError
    from shared.samples.deps import SampleDeps
    from shared.samples.model import SampleStatus
    from shared.samples.processing import GAVE_UP, process_sample

    ann = token("ann")
    sample, deps, repository, ready = a_ready_sample(samples_client, ann)
    repository.save(ready.model_copy(update={"status": SampleStatus.UPLOADED}))
    deps.store.delete(VOICE_EMBEDDINGS, sample["id"])

    class StoreDownAtTheFinish:
        """The store: its second transaction (the one recording the analysis) fails."""

        def __init__(self, store):
            self._store, self._transactions = store, 0

        def __getattr__(self, name):
            return getattr(self._store, name)

        def run_transaction(self, work):
            self._transactions += 1
            if self._transactions == 2:
                raise ServiceUnavailableError("The store is unavailable")
            return self._store.run_transaction(work)

    class Deps(SampleDeps):
        store = StoreDownAtTheFinish(deps.store)

    with pytest.raises(ServiceUnavailableError):
        process_sample(Deps(deps.ports), sample["id"], last_attempt=last_attempt)

    after = repository.get(sample["id"])
    assert after is not None
    assert stored_documents(VOICE_EMBEDDINGS) == 0
    if last_attempt:  # no retry will come: the sample says so
        assert after.status is SampleStatus.FAILED
        assert after.failure_reason == GAVE_UP
    else:  # the retry the error asks for finishes it
        assert after.status is SampleStatus.PROCESSING
        process_sample(deps, sample["id"])
        redone = repository.get(sample["id"])
        assert redone is not None
        assert redone.status is SampleStatus.READY
        assert stored_documents(VOICE_EMBEDDINGS) == 1


def test_a_404_echoes_the_beginning_of_a_very_long_id_only(samples_client, function_client, token):
    ann = bearer(token("ann"))
    long_id = (uuid.uuid4().hex * 100)[:3000]
    mapping = {"callerId": "+14155550100", "sampleId": long_id[:255], "voiceName": "Ann"}
    for response in (
        samples_client.get(f"/samples/{long_id}", headers=ann),
        samples_client.patch(f"/samples/{long_id}", json={"name": "x"}, headers=ann),
        samples_client.delete(f"/samples/{long_id}", headers=ann),
        samples_client.get(f"/samples/{long_id}/similar", headers=ann),
        # Pre-call cloning looks the sample up through the samples capability.
        function_client("precall").post("/precall/mappings", json=mapping, headers=ann),
    ):
        message = assert_error(response, 404, "SAMPLE_NOT_FOUND")["error"]
        assert len(message) < 200, message
        assert message.startswith("Voice sample not found or access denied: " + long_id[:64])
    # An id of ordinary length is still named whole.
    unknown = uuid.uuid4().hex
    message = samples_client.get(f"/samples/{unknown}", headers=ann).get_json()["error"]
    assert message == f"Voice sample not found or access denied: {unknown}"
