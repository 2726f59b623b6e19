"""The ``sample-uploaded`` function: a sample uploaded to its signed URL starts processing.

Eventarc delivers every ``google.cloud.storage.object.v1.finalized`` event of the samples
bucket (locally, the gateway does). A signed upload's sample becomes ``uploaded`` and is
enqueued for processing; an object named as a sample's that no sample names (the upload
to the still valid URL of a deleted sample) is deleted; the rest, including the events of
multipart uploads (already enqueued) and pre-call cloning's recordings, is ignored
(``shared.samples.uploads.sample_object_finalized``). Malformed and stale events are
logged and acknowledged; store, storage or queue outages raise, so the event comes again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import functions_framework
from cloudevents.http import CloudEvent

from shared.blobs.events import MalformedEventError, finalized_object
from shared.bootstrap import get_container
from shared.samples import CAPABILITY as SAMPLES
from shared.samples.uploads import sample_object_finalized

logger = logging.getLogger(__name__)


@functions_framework.cloud_event
def sample_uploaded(event: CloudEvent) -> None:
    """Cloud Function entry point (CloudEvent signature)."""
    container = get_container()
    try:
        found = finalized_object(event)
    except MalformedEventError as exc:
        logger.error("Dropped a malformed storage event %s: %s", event.get("id"), exc)
        return
    age = (datetime.now(UTC) - found.time).total_seconds()
    limit = container.settings.samples_upload_url_seconds + 3600
    if age > limit:
        logger.warning(
            "Dropped the event of %s: %.0f s old, older than %d s", found.name, age, limit
        )
        return
    outcome = sample_object_finalized(
        container.deps(SAMPLES),
        name=found.name,
        size=found.size,
        content_type=found.content_type,
        generation=found.generation,
    )
    logger.info("%s: %s", found.name, outcome)
