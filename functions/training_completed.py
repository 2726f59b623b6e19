"""The ``training-completed`` function: a trainer's ``metadata.json`` completes its model.

Eventarc delivers every ``google.cloud.storage.object.v1.finalized`` event of the models
bucket (locally, the gateway does). Only ``models/{userId}/{modelId}/metadata.json``
matters (``shared.samples.training.completion``): the model becomes completed (quality
score, activation rules) or failed with the trainer's reason; other objects are ignored.
As Google's storage-trigger samples do, returning acknowledges the event and raising asks
for it again: events older than ``training_event_max_age_seconds`` and malformed events
are logged and acknowledged, so nothing is retried forever; a store or storage outage
raises, and Eventarc delivers the event again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import functions_framework
from cloudevents.http import CloudEvent

from shared.blobs.events import MalformedEventError, finalized_object
from shared.bootstrap import get_container
from shared.samples.training.completion import complete_training
from shared.voice_models import CAPABILITY as VOICE_MODELS

logger = logging.getLogger(__name__)


@functions_framework.cloud_event
def training_completed(event: CloudEvent) -> None:
    """Cloud Function entry point (CloudEvent signature)."""
    container = get_container()
    try:
        found = finalized_object(event)
    except MalformedEventError as exc:
        logger.error("Dropped a malformed storage event %s: %s", event.get("id"), exc)
        return
    age = (datetime.now(UTC) - found.time).total_seconds()
    limit = container.settings.training_event_max_age_seconds
    if age > limit:
        logger.warning(
            "Dropped the event of %s: %.0f s old, older than %d s", found.name, age, limit
        )
        return
    outcome = complete_training(container.deps(VOICE_MODELS), container.blobs, name=found.name)
    logger.info("%s: %s", found.name, outcome)
