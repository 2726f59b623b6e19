"""Audio files: storing synthesis results, reading them back, deleting them.

A result is stored as ``audio/{fileId}.{ext}`` in ``settings.audio_bucket`` with its
timestamps beside it (``….timestamps.json``), and described by an ``AudioFile`` record:
sha256 checksum, size, duration, rate, format, ``expiresAt`` (``audio_file_ttl_days`` on),
public flag, download count and last access. A synthesis cache hit gives the requesting
user a record of their own naming the same object, so ownership, expiry and storage used
are per user while the bytes are stored once; for that reason the object name carries no
user id (a signed URL handed to one user must not reveal another's). The objects are
uploaded first (``upload_audio``) and the record added after, in the caller's own commit
(``new_file``, ``AudioFileRepository.add_in``), so no record names a missing object. An
object is deleted with the last record naming it, its cache entry first. Files are
owner-only unless public, and another user's private file is "not found" (404), so ids
cannot be probed. The daily cleanup of expired files is ``shared.files.tasks``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Annotated, Any, NamedTuple

from pydantic import Field

from shared.audio.encode import EncodedAudio
from shared.audio.formats import OutputFormat
from shared.errors import AudioFileNotFoundError, NotFoundError, echoed
from shared.files.cache import CachedAudio, SingleFlight
from shared.files.deps import AudioDeps
from shared.files.model import AudioFile, checksum_of
from shared.files.repository import AUDIO_FILES, AudioFileRepository
from shared.model import RequestModel, new_id, utcnow
from shared.store.base import Query

logger = logging.getLogger(__name__)

EXTENSIONS: dict[OutputFormat, str] = {
    OutputFormat.WAV: "wav",
    OutputFormat.MP3: "mp3",
    OutputFormat.FLAC: "flac",
    OutputFormat.OGG_OPUS: "ogg",
    OutputFormat.PCM: "pcm",
}
TIMESTAMPS_SUFFIX = ".timestamps.json"
CLEANUP_TASK = "audio_files.cleanup"
CLEANUP_BATCH = 200
MAX_FILES_PAGE = 100


TimestampsSource = dict[str, Any] | Callable[[], dict[str, Any] | None] | None
"""Timestamps to store beside the audio, or what computes them while the audio is written."""

# Audio objects are written on these threads while the request thread goes on with the
# timestamps: a network round trip to Cloud Storage in production, a write and an fsync
# locally. One object per synthesis, never nested, so a small pool cannot deadlock.
_UPLOADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="audio-upload")


class UploadedAudio(NamedTuple):
    """A synthesis result's stored objects: the cache entry naming them, its timestamps.

    No record names the objects yet: the caller adds the file record (``new_file``,
    ``AudioFileRepository.add_in``) in the same commit as the rest of its bookkeeping, or
    deletes the objects again (``discard_upload``) when that commit fails.
    """

    file_id: str
    cached: CachedAudio
    timestamps: dict[str, Any] | None


def upload_audio(
    deps: AudioDeps,
    *,
    user_id: str,
    encoded: EncodedAudio,
    timestamps: TimestampsSource,
    unapplied: tuple[str, ...] = (),
) -> UploadedAudio:
    """Store ``encoded`` (and its timestamps) as the objects of a new file of ``user_id``.

    The audio is written, and its checksum computed, on other threads while the timestamps
    are computed (when ``timestamps`` is a callable) and written. If either write fails,
    the other object is deleted again and the error raised.
    """
    file_id = new_id()
    path = f"audio/{file_id}.{EXTENSIONS[encoded.format]}"
    upload = _UPLOADS.submit(
        deps.blobs.put, deps.bucket, path, encoded.data, content_type=encoded.content_type
    )
    # hashlib releases the GIL on large buffers: the checksum takes another core.
    checksum = _UPLOADS.submit(checksum_of, encoded.data)
    body: dict[str, Any] | None = None
    timestamps_path = None
    try:
        body = timestamps() if callable(timestamps) else timestamps
        if body is not None:
            timestamps_path = path + TIMESTAMPS_SUFFIX
            data = json.dumps(body, separators=(",", ":")).encode()
            deps.blobs.put(deps.bucket, timestamps_path, data, content_type="application/json")
    except BaseException:
        if _succeeded(upload):
            _discard(deps, path)
        raise
    if not _succeeded(upload):
        if timestamps_path is not None:
            _discard(deps, timestamps_path)
        upload.result()  # raises the upload's error
    cached = CachedAudio(
        file_path=path,
        format=encoded.format.value,
        file_size=len(encoded.data),
        duration=encoded.duration_seconds,
        sample_rate=encoded.sample_rate,
        checksum=checksum.result(),
        timestamps_path=timestamps_path,
        unapplied=unapplied,
        user_id=user_id,
    )
    return UploadedAudio(file_id, cached, body)


def discard_upload(deps: AudioDeps, uploaded: UploadedAudio) -> None:
    """Delete the objects of an upload whose record was never committed (best effort)."""
    for path in (uploaded.cached.file_path, uploaded.cached.timestamps_path):
        if path is not None:
            _discard(deps, path)


def adopt(deps: AudioDeps, cached: CachedAudio, user_id: str) -> CachedAudio:
    """Return ``cached`` as ``user_id``'s own object: a copy when someone else's.

    A cache shared across users (for public catalog voices) shares rendered bytes, never
    another user's object: a signed URL, an account deletion or an expiry of one user's
    file must not reach another's. Raises NotFoundError when the object is gone.
    """
    if cached.user_id in (None, user_id):
        return cached
    path = f"audio/{new_id()}.{cached.file_path.rsplit('.', 1)[-1]}"
    deps.blobs.copy(deps.bucket, cached.file_path, deps.bucket, path)
    timestamps_path = None
    if cached.timestamps_path is not None:
        timestamps_path = path + TIMESTAMPS_SUFFIX
        try:
            deps.blobs.copy(deps.bucket, cached.timestamps_path, deps.bucket, timestamps_path)
        except BaseException:
            _discard(deps, path)
            raise
    return cached._replace(file_path=path, timestamps_path=timestamps_path, user_id=user_id)


def _succeeded(upload: Future[Any]) -> bool:
    """Wait for ``upload`` to finish; return whether it succeeded."""
    return upload.exception() is None


def _discard(deps: AudioDeps, path: str) -> None:
    # Best effort: an object left behind is unreferenced, and the bucket's lifecycle rule
    # deletes it after the audio retention period.
    try:
        deps.blobs.delete(deps.bucket, path)
    except Exception:
        logger.warning("Could not delete the unfinished object %s", path, exc_info=True)


def new_file(
    deps: AudioDeps,
    *,
    user_id: str,
    job_id: str,
    cached: CachedAudio,
    file_id: str | None = None,
    now: datetime | None = None,
) -> AudioFile:
    """Return a new record of ``user_id`` for the stored object ``cached`` describes.

    Not stored yet: ``AudioFileRepository.add_in`` adds it, with the owner's storage used,
    in the caller's transaction.
    """
    moment = now or utcnow()
    fmt = OutputFormat(cached.format)
    return AudioFile(
        id=file_id or new_id(),
        user_id=user_id,
        synthesis_job_id=job_id,
        file_path=cached.file_path,
        filename=f"synthesis-{job_id}.{EXTENSIONS[fmt]}",
        format=fmt,
        file_size=cached.file_size,
        duration=cached.duration,
        sample_rate=cached.sample_rate,
        checksum=cached.checksum,
        created_at=moment,
        expires_at=moment + timedelta(days=deps.settings.audio_file_ttl_days),
    )


def read_timestamps(deps: AudioDeps, timestamps_path: str | None) -> dict[str, Any] | None:
    """Return the timestamps stored at ``timestamps_path``; raise NotFoundError if gone."""
    if timestamps_path is None:
        return None
    data: dict[str, Any] = json.loads(deps.blobs.get(deps.bucket, timestamps_path))
    return data


def stored_audio(deps: AudioDeps, file_id: str) -> tuple[AudioFile, bytes]:
    """Return a file's record and its bytes; raise AudioFileNotFoundError if either is gone."""
    audio_file = AudioFileRepository(deps.store).get(file_id)
    if audio_file is None:
        raise AudioFileNotFoundError(f"Audio file not found: {echoed(file_id)}")
    try:
        return audio_file, deps.blobs.get(deps.bucket, audio_file.file_path)
    except NotFoundError:
        raise AudioFileNotFoundError(f"Audio file not found: {echoed(file_id)}") from None


def timestamps_path_of(audio_file: AudioFile) -> str:
    """Return where the timestamps of ``audio_file`` are stored (if it has any)."""
    return audio_file.file_path + TIMESTAMPS_SUFFIX


def download_url(deps: AudioDeps, audio_file: AudioFile) -> tuple[str, datetime]:
    """Return a signed URL that downloads the file's bytes, and when that URL expires."""
    lifetime = timedelta(seconds=deps.settings.audio_url_seconds)
    expires_at = utcnow() + lifetime
    url = deps.blobs.signed_url(deps.bucket, audio_file.file_path, expires_in=lifetime)
    return url, expires_at


def readable_file(deps: AudioDeps, user_id: str | None, file_id: str) -> AudioFile:
    """Return the file if ``user_id`` owns it or it is public and not expired.

    Raises AudioFileNotFoundError otherwise (also for another user's private file).
    """
    audio_file = AudioFileRepository(deps.store).get(file_id)
    if audio_file is None or audio_file.is_expired(utcnow()):
        raise AudioFileNotFoundError(f"Audio file not found: {echoed(file_id)}")
    if audio_file.user_id != user_id and not audio_file.is_public:
        raise AudioFileNotFoundError(f"Audio file not found: {echoed(file_id)}")
    return audio_file


def file_info(deps: AudioDeps, user_id: str, file_id: str) -> AudioFile:
    """Return a readable file's record, its last access time set to now."""
    audio_file = readable_file(deps, user_id, file_id)
    now = utcnow()
    AudioFileRepository(deps.store).touch(file_id, now)
    return audio_file.model_copy(update={"last_accessed_at": now})


class AudioFileUpdate(RequestModel):
    """Body of ``PATCH /files/{id}``: make a file public or private again."""

    is_public: bool


class AudioFileListQuery(RequestModel):
    """Query of ``GET /files``: one page of the caller's files, newest first."""

    limit: Annotated[int, Field(ge=1, le=MAX_FILES_PAGE)] = 20
    cursor: Annotated[str, Field(max_length=2000)] | None = None


def list_files(
    deps: AudioDeps, user_id: str, query: AudioFileListQuery
) -> tuple[list[AudioFile], str | None]:
    """Return one page of the user's unexpired files, newest first, and the next cursor."""
    files, cursor = AudioFileRepository(deps.store).newest_of(
        user_id, limit=query.limit, cursor=query.cursor
    )
    now = utcnow()
    return [f for f in files if not f.is_expired(now)], cursor


def update_file(deps: AudioDeps, user_id: str, file_id: str, change: AudioFileUpdate) -> AudioFile:
    """Return the owner's file with ``change`` applied; raise AudioFileNotFoundError."""
    audio_file = readable_file(deps, user_id, file_id)
    if audio_file.user_id != user_id:
        raise AudioFileNotFoundError(f"Audio file not found: {echoed(file_id)}")
    AudioFileRepository(deps.store).set_public(file_id, change.is_public)
    return audio_file.model_copy(update={"is_public": change.is_public})


def count_download(deps: AudioDeps, audio_file: AudioFile) -> None:
    """Count one download of ``audio_file`` (atomic increment) and set its last access."""
    AudioFileRepository(deps.store).count_download(audio_file.id, utcnow())


def delete_file(deps: AudioDeps, audio_file: AudioFile) -> None:
    """Delete the record, free the owner's storage, and the object once nothing names it."""
    repository = AudioFileRepository(deps.store)
    # Even when the record was already gone (a retried cleanup), the object may not be.
    repository.delete(audio_file.id)
    if repository.path_in_use(audio_file.file_path):
        return
    # The cache entry goes first: a hit must never name an object about to disappear.
    SingleFlight(deps.store, wait_seconds=1, lease_seconds=1).forget_path(audio_file.file_path)
    for name in (audio_file.file_path, audio_file.file_path + TIMESTAMPS_SUFFIX):
        try:
            deps.blobs.delete(deps.bucket, name)
        except NotFoundError:
            continue


def cleanup_expired_files(deps: AudioDeps, *, now: datetime | None = None) -> int:
    """Delete every expired file (records, objects, storage used); return how many."""
    moment = now or utcnow()
    repository = AudioFileRepository(deps.store)
    removed = 0
    while batch := repository.expired(moment, limit=CLEANUP_BATCH):
        for audio_file in batch:
            delete_file(deps, audio_file)
            removed += 1
    logger.info("Audio file cleanup removed %d expired files", removed)
    return removed


def purge_audio_files(deps: AudioDeps, user_id: str) -> int:
    """Delete every audio file of a deleted account: records, objects, cache entries.

    Returns how many records went. The cache entries naming the user's objects go first,
    so no request is served an object about to disappear; the objects then go, so the
    signed URLs handed out for them stop working. Objects are never shared between users
    (a shared cache copies them), so nobody else loses a file.
    """
    SingleFlight(deps.store, wait_seconds=1, lease_seconds=1).forget_user(user_id)
    paths = {
        str(document.data["file_path"])
        for document in deps.store.stream(Query(AUDIO_FILES).where("user_id", "==", user_id))
    }
    for path in sorted(paths):
        for name in (path, path + TIMESTAMPS_SUFFIX):
            deps.blobs.delete(deps.bucket, name)
    return deps.store.delete_matching(Query(AUDIO_FILES).where("user_id", "==", user_id))
