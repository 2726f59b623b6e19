"""Samples whose upload never came: ``samples.expire_uploads``, a daily scheduled job.

``POST /samples/upload-url`` records a sample ``awaiting_upload`` beside its signed URL;
when the file never arrives the sample would wait for ever. Daily at 04:15 UTC the job
deletes every sample still awaiting its upload that was created more than
``samples_awaiting_upload_max_seconds`` ago (24 h by default; the settings refuse a value
not longer than the upload URL's lifetime, so no URL that still works names a deleted
sample), and any object at its path. Deleted rather than marked expired: such a sample has
no audio, no embedding and no bytes counted, so nothing of it is worth keeping, and reading
it afterwards is the 404 of any deleted sample.

Each deletion reads the sample again in a transaction and goes ahead only if it still
awaits its upload, so an upload whose storage event lands meanwhile keeps its sample, and
running the job twice deletes nothing more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.model import utcnow
from shared.samples.deps import SampleDeps
from shared.samples.repository import SampleRepository

logger = logging.getLogger(__name__)

EXPIRE_UPLOADS_TASK = "samples.expire_uploads"
BATCH = 200


@dataclass(frozen=True)
class UploadExpiryReport:
    """What one run did: the samples deleted, and the objects found at their paths."""

    deleted: int
    objects_deleted: int


def expire_awaited_uploads(deps: SampleDeps, now: datetime | None = None) -> UploadExpiryReport:
    """Delete samples awaiting an upload past the settings' age; return what was deleted."""
    cutoff = (now or utcnow()) - timedelta(
        seconds=deps.settings.samples_awaiting_upload_max_seconds
    )
    repository = SampleRepository(deps.store)
    deleted = objects = 0
    while stale := repository.awaiting_upload_since(cutoff, limit=BATCH):
        removed = 0
        for sample in stale:
            gone = repository.delete_if_awaiting_upload(sample.id, cutoff)
            if gone is None:
                continue
            removed += 1
            # Normally no object: its URL expired unused. One whose event was lost goes too.
            if deps.blobs.delete(deps.bucket, gone.file_path):
                objects += 1
        deleted += removed
        if len(stale) < BATCH or removed == 0:
            break
    if deleted:
        logger.info("Deleted %d samples whose upload never came (%d objects)", deleted, objects)
    return UploadExpiryReport(deleted, objects)
