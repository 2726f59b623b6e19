"""Cleanup of expired voice models (seed 001), daily and on an admin's demand.

A model is removed when it meets every criterion: created more than six months ago, not
active, quality below 0.5, unused for 30 days. Removal is the soft delete of
``voice_models`` (its own transaction, which re-checks that the model is still inactive)
plus moving its files to ``deleted/{userId}/``. A dry run lists what would go.
``expiring`` lists models meeting the criteria within the next 30 days, with the day
each becomes eligible. The daily run is the task ``voice_models.cleanup``, fired by the
``voice-model-cleanup`` scheduled job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.errors import VoiceModelNotFoundError
from shared.model import utcnow
from shared.voice_models import artifacts as files
from shared.voice_models.access_log import record_access
from shared.voice_models.activation import soft_delete
from shared.voice_models.deps import Caller, VoiceModelDeps
from shared.voice_models.model import CLEANUP_QUALITY_THRESHOLD, VoiceModel, cleanup_eligible_at
from shared.voice_models.repository import (
    VoiceModelRepository,
)
from shared.voice_models.schemas import CleanupCandidate, CleanupReport, ExpiringVoiceModels
from shared.voice_models.usage import usage_for_models

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

CLEANUP_TASK = "voice_models.cleanup"
EXPIRING_WITHIN = timedelta(days=30)
SYSTEM_CALLER = Caller("voice-model-cleanup", is_admin=True)


def _candidates(
    deps: VoiceModelDeps, *, user_id: str | None, until: datetime
) -> list[CleanupCandidate]:
    models = VoiceModelRepository(deps.store).cleanup_candidates(CLEANUP_QUALITY_THRESHOLD)
    if user_id is not None:
        models = [m for m in models if m.user_id == user_id]
    usage = usage_for_models(deps.store, [m.id for m in models], shards=deps.shards)
    found = []
    for model in models:
        last_used = usage[model.id].last_used
        if model.is_eligible_for_cleanup(last_used_at=last_used, now=until):
            found.append(_candidate(model, last_used))
    return sorted(found, key=lambda c: (c.eligible_at, c.model_id))


def _candidate(model: VoiceModel, last_used: datetime | None) -> CleanupCandidate:
    return CleanupCandidate(
        model_id=model.id,
        user_id=model.user_id,
        quality_score=model.quality_score,
        created_at=model.created_at,
        last_used=last_used,
        eligible_at=cleanup_eligible_at(model, last_used),
    )


def expiring_voice_models(
    deps: VoiceModelDeps, caller: Caller, *, user_id: str | None, now: datetime | None = None
) -> ExpiringVoiceModels:
    """Return the models that meet the cleanup criteria now or within 30 days.

    Non-admins see their own (``userId`` must be theirs); an admin without ``userId``
    sees every user's. Raises AccessDeniedError.
    """
    owner = caller.acting_for(user_id) if user_id is not None or not caller.is_admin else None
    moment = now or utcnow()
    found = _candidates(deps, user_id=owner, until=moment + EXPIRING_WITHIN)
    record_access(
        deps.store,
        actor_id=caller.user_id,
        action="expiring",
        model_ids=[c.model_id for c in found],
        owner_id=owner,
        request_id=caller.request_id,
    )
    return ExpiringVoiceModels(models=found)


def cleanup_expired_models(
    deps: VoiceModelDeps,
    *,
    dry_run: bool,
    caller: Caller = SYSTEM_CALLER,
    now: datetime | None = None,
) -> CleanupReport:
    """Remove (or with ``dry_run`` list) every model meeting all cleanup criteria."""
    moment = now or utcnow()
    eligible = _candidates(deps, user_id=None, until=moment)
    if dry_run:
        return CleanupReport(dry_run=True, would_remove=eligible)
    removed = []
    for candidate in eligible:
        try:
            soft_delete(deps, caller, candidate.model_id, owner=None, usage={}, unless_active=True)
        except VoiceModelNotFoundError:
            continue  # deleted or activated since it was listed
        model = VoiceModelRepository(deps.store).get(candidate.model_id)
        if model is not None:
            files.move_to_deleted(deps.blobs, deps.bucket, model)
        removed.append(candidate)
        record_access(
            deps.store,
            actor_id=caller.user_id,
            action="cleanup",
            model_ids=[candidate.model_id],
            owner_id=candidate.user_id,
            request_id=caller.request_id,
        )
    logger.info("Voice model cleanup removed %d of %d eligible", len(removed), len(eligible))
    return CleanupReport(dry_run=False, removed=removed)
