"""Getting a sample's audio in: a multipart upload, or a signed URL and its storage event.

``upload_sample`` takes the bytes of ``POST /samples``: it decodes them at once (format
from the bytes, never the file name), refuses other content (415), damaged files (400),
sample rates or channels a sample cannot have (400) and durations outside the settings'
bounds (400 too short, 413 too long), stores the object as
``samples/{userId}/{sampleId}`` in the samples bucket, records the sample (``uploaded``,
its bytes added to the owner's storage used) and enqueues its processing.

``create_upload_url`` answers ``POST /samples/upload-url``: a sample ``awaiting_upload``
and a signed ``PUT`` URL for exactly the declared content type and at most the declared
size, which uploads once. When the object lands, the storage event reaches
``sample_object_finalized`` (the ``sample-uploaded`` function): the sample becomes
``uploaded`` with its size counted, and processing is enqueued. Processing judges the bytes
as it would any upload, so a bad file fails the sample with the reason.

A signed URL cannot be recalled: it still takes a file after its sample was deleted, until
it expires. Such an object, named ``samples/{userId}/{sampleId}`` by a sample id no sample
has (ids are never reused, so none ever will), is deleted when its event comes, and no
bytes are counted for it. Every sample is recorded before its object can be written (the
signed URL is handed out, the multipart object stored, only after the record), so a live
sample's object is never taken for such an orphan. Other objects of the bucket are left
alone, including names under ``samples/`` that no sample id takes: pre-call mappings may
name recordings put under ``samples/{accountId}/``.

Both paths enqueue ``samples.process`` with the de-duplication key of the object's
generation, so the event of a multipart upload's own write, or a duplicated event, never
processes a sample twice.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from shared.model import new_id, utcnow
from shared.samples.deps import Caller, SampleDeps
from shared.samples.errors import SampleTooLargeError, UnsupportedSampleTypeError
from shared.samples.model import (
    CONTENT_TYPES,
    UPLOAD_CONTENT_TYPES,
    SampleFormat,
    SampleStatus,
    SignedUploadPublic,
    UploadUrlRequest,
    UploadUrlResponse,
    VoiceSample,
    VoiceSampleCreate,
    VoiceSamplePublic,
)
from shared.samples.repository import VOICE_SAMPLES, SampleRepository
from shared.store.base import Transaction

if TYPE_CHECKING:
    from shared.blobs.base import SignedUpload

logger = logging.getLogger(__name__)

PROCESS_TASK = "samples.process"
SAMPLES_PREFIX = "samples"
_OBJECT_NAME = re.compile(r"^samples/([^/]+)/([^/]+)$")
# What ``new_id`` makes: an object under samples/ named otherwise is not a sample's.
_SAMPLE_ID = re.compile(r"^[0-9a-f]{32}$")
_MAX_NAME = 255


def object_name(user_id: str, sample_id: str) -> str:
    """Return the object name of a sample's audio in the samples bucket."""
    return f"{SAMPLES_PREFIX}/{user_id}/{sample_id}"


def user_prefix(user_id: str) -> str:
    """Return the prefix of every sample object of ``user_id``."""
    return f"{SAMPLES_PREFIX}/{user_id}/"


def parse_object_name(name: str) -> tuple[str, str] | None:
    """Return (user id, sample id) of a sample object's name, or None for another object."""
    match = _OBJECT_NAME.match(name)
    return (match.group(1), match.group(2)) if match else None


def default_name(filename: str | None) -> str:
    """Return a sample's name from the uploaded file's name, or from the time."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem.strip() if filename else ""
    if stem:
        return stem[:_MAX_NAME]
    return f"Sample {utcnow():%Y-%m-%d %H:%M}"


def upload_sample(
    deps: SampleDeps,
    caller: Caller,
    data: bytes,
    request: VoiceSampleCreate,
    *,
    filename: str | None = None,
) -> VoiceSample:
    """Store an uploaded sample and enqueue its processing; return it (``uploaded``).

    Raises SampleTooLargeError, UnsupportedAudioFormatError, CorruptAudioError,
    SampleTooShortError, SampleTooLongError or SampleAudioUnsupportedError for audio it
    refuses, and the store's and queue's errors (nothing is left behind then).
    """
    limit = deps.settings.samples_max_upload_bytes
    if len(data) > limit:
        raise SampleTooLargeError(
            f"The file has {len(data)} bytes; upload at most {limit} here, "
            "or larger files through POST /samples/upload-url"
        )
    from shared.audio.decoding import decode  # noqa: PLC0415 - numpy and libsndfile
    from shared.samples.analysis import check_audio  # noqa: PLC0415 - audio analysis

    audio = decode(data)
    check_audio(audio, deps.settings)
    sample_format = SampleFormat(audio.format.value)
    sample_id = new_id()
    name = object_name(caller.user_id, sample_id)
    content_type = CONTENT_TYPES[sample_format]
    sample = VoiceSample(
        id=sample_id,
        user_id=caller.user_id,
        name=request.name or default_name(filename),
        file_path=name,
        format=sample_format,
        codec=audio.codec,
        duration=round(audio.duration_seconds, 3),
        sample_rate=audio.sample_rate,
        channels=audio.channels,
        size_bytes=len(data),
        content_type=content_type,
        language=request.language,
        is_public=request.is_public,
        status=SampleStatus.UPLOADED,
    )
    # The record first: the object's storage event must find the sample that names it
    # (an object no sample names is ignored, and this one's processing would wait for a retry).
    repository = SampleRepository(deps.store)
    repository.add(sample)
    try:
        info = deps.blobs.put(
            deps.bucket, name, data, content_type=content_type, if_generation_match=0
        )
        enqueue_processing(deps, sample.id, info.generation)
    except BaseException:
        deps.blobs.delete(deps.bucket, name)
        repository.delete(sample.id)
        raise
    return sample


def create_upload_url(
    deps: SampleDeps, caller: Caller, request: UploadUrlRequest
) -> UploadUrlResponse:
    """Record a sample awaiting its upload; return it with a signed URL to upload to.

    Raises UnsupportedSampleTypeError (a content type that is not audio we read) or
    SampleTooLargeError (more than the storage's upload limit).
    """
    content_type = request.content_type.split(";", 1)[0].strip().lower()
    if content_type not in UPLOAD_CONTENT_TYPES:
        raise UnsupportedSampleTypeError(
            f"Content type {request.content_type!r} is not wav, mp3, flac or ogg audio"
        )
    limit = deps.blobs.max_upload_bytes
    if request.size_bytes > limit:
        raise SampleTooLargeError(f"A sample may have at most {limit} bytes")
    sample_id = new_id()
    name = object_name(caller.user_id, sample_id)
    sample = VoiceSample(
        id=sample_id,
        user_id=caller.user_id,
        name=request.name or default_name(None),
        file_path=name,
        content_type=content_type,
        language=request.language,
        is_public=request.is_public,
        status=SampleStatus.AWAITING_UPLOAD,
    )
    upload = deps.blobs.signed_upload_url(
        deps.bucket,
        name,
        expires_in=timedelta(seconds=deps.settings.samples_upload_url_seconds),
        content_type=content_type,
        max_bytes=request.size_bytes,
    )
    SampleRepository(deps.store).add(sample)
    return UploadUrlResponse(sample=VoiceSamplePublic.from_entity(sample), upload=public(upload))


def public(upload: SignedUpload) -> SignedUploadPublic:
    """Return the API form of a signed upload."""
    return SignedUploadPublic(
        url=upload.url,
        method=upload.method,
        headers=upload.headers,
        max_bytes=upload.max_bytes,
        expires_at=upload.expires_at,
    )


def sample_object_finalized(
    deps: SampleDeps, *, name: str, size: int, content_type: str, generation: int
) -> str:
    """Handle a new object in the samples bucket; return what was done (for the logs).

    A signed upload's sample becomes ``uploaded`` (its bytes counted) and is enqueued for
    processing; a sample object no sample names is deleted (see the module docstring);
    anything else is left alone. Safe to run twice for one event. Raises the store's,
    storage's and queue's errors, so the event comes again.
    """
    parsed = parse_object_name(name)
    if parsed is None:
        return "ignored: not a sample object"
    user_id, sample_id = parsed

    def mark(tx: Transaction) -> tuple[str, VoiceSample | None]:
        sample = SampleRepository.tx_get(tx, sample_id)
        if sample is None or sample.user_id != user_id or sample.file_path != name:
            return "orphan", None
        if sample.status is not SampleStatus.AWAITING_UPLOAD:
            return "seen", sample
        owner = SampleRepository.tx_owner(tx, user_id)
        uploaded = sample.mark_uploaded(size_bytes=size, content_type=content_type)
        tx.set(VOICE_SAMPLES, sample_id, uploaded.to_document())
        SampleRepository.tx_change_storage(tx, owner, size)
        return "uploaded", uploaded

    outcome, sample = deps.store.run_transaction(mark)
    if outcome == "orphan":
        return _delete_orphan(deps, name, sample_id)
    assert sample is not None  # every other outcome found the sample
    if sample.status is SampleStatus.UPLOADED:
        enqueue_processing(deps, sample_id, generation)
        return f"processing enqueued ({outcome})"
    return f"ignored: the sample is {sample.status.value}"


def _delete_orphan(deps: SampleDeps, name: str, sample_id: str) -> str:
    """Delete an object no sample names, if a sample could have; return what was done."""
    if not _SAMPLE_ID.match(sample_id):
        logger.warning("No sample names %s; the object is left as it is", name)
        return "ignored: no sample names this object"
    deleted = deps.blobs.delete(deps.bucket, name)
    logger.info(
        "No sample names %s (deleted, or never made): %s",
        name,
        "the object was deleted" if deleted else "the object is gone already",
    )
    return "deleted: no sample names this object"


def enqueue_processing(deps: SampleDeps, sample_id: str, generation: int) -> None:
    """Enqueue ``samples.process`` once per stored object generation."""
    # With the task queue, which only requests that queue work build.
    from shared.tasks.errors import TaskAlreadyExistsError  # noqa: PLC0415 - see above

    try:
        deps.task_queue().enqueue(
            deps.settings.default_queue,
            PROCESS_TASK,
            {"sampleId": sample_id},
            dedup_key=f"{PROCESS_TASK}:{sample_id}:{generation}",
        )
    except TaskAlreadyExistsError:
        logger.info("Processing of sample %s was already enqueued", sample_id)
