"""Training results whose storage event never came: found and applied by a sweep.

A trainer's ``metadata.json`` completes (or fails) its model when the object's storage
event reaches ``training-completed``. An event that never arrives, or arrives older than
``training_event_max_age_seconds`` (after an outage longer than that) and is dropped,
would leave the model ``pending`` or ``training`` for good. Every 15 minutes
``samples.reconcile_training`` looks at the models still pending or training, unchanged
for ``TRAINING_GRACE`` (their event has had time to come), and applies the
``metadata.json`` of each that has one with ``complete_training``, the storage event's own
code: idempotent, so an event arriving after the sweep changes nothing. Models without a
result yet are left to their trainer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.model import utcnow
from shared.samples.deps import SampleDeps
from shared.samples.training.artifacts import METADATA_FILE, model_folder
from shared.samples.training.completion import complete_training
from shared.store import Query
from shared.voice_models.model import VoiceModelStatus
from shared.voice_models.repository import VOICE_MODELS, model_from

logger = logging.getLogger(__name__)

RECONCILE_TASK = "samples.reconcile_training"
TRAINING_GRACE = timedelta(minutes=15)
_UNSETTLED = (VoiceModelStatus.PENDING, VoiceModelStatus.TRAINING)


def reconcile_training(deps: SampleDeps, now: datetime | None = None) -> list[str]:
    """Apply the results no event applied; return the ids of the models settled."""
    cutoff = (now or utcnow()) - TRAINING_GRACE
    settled = []
    for status in _UNSETTLED:
        query = Query(VOICE_MODELS).where("status", "==", status.value)
        for document in deps.store.stream(query):
            model = model_from(document)
            if model.is_deleted or model.updated_at > cutoff:
                continue
            name = model_folder(model.user_id, model.id) + METADATA_FILE
            if not deps.blobs.exists(deps.models_bucket, name):
                continue
            outcome = complete_training(deps.models, deps.blobs, name=name)
            logger.warning(
                "Applied the training result of voice model %s, whose storage event never came: %s",
                model.id,
                outcome,
            )
            settled.append(model.id)
    return settled
