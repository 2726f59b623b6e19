"""Voice sync jobs (``voice_sync_jobs/{id}``) and each provider's sync summary.

Every change of a job goes through ``transition``: read the job in a transaction, let the
domain's state machine produce the next job (or refuse), and write it together with the
provider's summary (``voice_provider_state/{provider}``: last job, its status, the last
successful sync and the languages seen). The summary makes ``GET /voices/providers`` one
read per provider, with no composite index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from shared.catalog.model import VoiceSyncJob, VoiceSyncStatus
from shared.errors import NotFoundError, echoed
from shared.store.base import DocumentStore, Query, Transaction

SYNC_JOBS = "voice_sync_jobs"
PROVIDER_STATE = "voice_provider_state"

JobChange = Callable[[VoiceSyncJob], VoiceSyncJob | None]
"""Returns the job's next state, or None to leave it as it is."""


class VoiceSyncJobNotFoundError(NotFoundError):
    code = "VOICE_SYNC_JOB_NOT_FOUND"
    default_message = "Voice sync job not found"


def _job_document(job: VoiceSyncJob) -> dict[str, Any]:
    data = job.model_dump(mode="python", by_alias=False)
    data["status"] = job.status.value
    return data


class VoiceSyncJobRepository:
    """Reads and writes sync jobs; every state change is one transaction."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def add(self, job: VoiceSyncJob) -> bool:
        """Store a new job; return False when a job with its id already exists."""

        def create(tx: Transaction) -> bool:
            if tx.get(SYNC_JOBS, job.id) is not None:
                return False
            tx.set(SYNC_JOBS, job.id, _job_document(job))
            if job.provider:
                tx.set(PROVIDER_STATE, job.provider, _state_for(job), merge=True)
            return True

        return self._store.run_transaction(create)

    def remove(self, job_id: str) -> None:
        """Delete a job that never got queued."""
        self._store.delete(SYNC_JOBS, job_id)

    def get(self, job_id: str) -> VoiceSyncJob | None:
        """Return the job or None."""
        if not job_id or "/" in job_id:
            return None
        document = self._store.get(SYNC_JOBS, job_id)
        return VoiceSyncJob.model_validate(document.data) if document else None

    def require(self, job_id: str) -> VoiceSyncJob:
        """Return the job; raise VoiceSyncJobNotFoundError."""
        job = self.get(job_id)
        if job is None:
            raise VoiceSyncJobNotFoundError(f"Voice sync job not found: {echoed(job_id)}")
        return job

    def list_recent(
        self, *, limit: int, cursor: str | None = None
    ) -> tuple[list[VoiceSyncJob], str | None]:
        """Return one page of jobs, newest first, and the next page's cursor."""
        query = Query(SYNC_JOBS).order("created_at", descending=True).take(limit).after(cursor)
        page = self._store.query(query)
        return [VoiceSyncJob.model_validate(d.data) for d in page.documents], page.next_cursor

    def transition(
        self, job_id: str, change: JobChange, *, languages: Iterable[str] | None = None
    ) -> VoiceSyncJob:
        """Apply ``change`` to the stored job atomically and return the job as stored.

        ``languages`` (on completion) is recorded in the provider's summary.

        Raises:
            VoiceSyncJobNotFoundError: no such job.
            InvalidStateTransitionError: ``change`` attempted an illegal move.
        """

        def apply(tx: Transaction) -> VoiceSyncJob:
            document = tx.get(SYNC_JOBS, job_id)
            if document is None:
                raise VoiceSyncJobNotFoundError(f"Voice sync job not found: {echoed(job_id)}")
            current = VoiceSyncJob.model_validate(document.data)
            state = tx.get(PROVIDER_STATE, current.provider) if current.provider else None
            changed = change(current)
            if changed is None or changed == current:
                return current
            tx.set(SYNC_JOBS, job_id, _job_document(changed))
            if changed.provider:
                summary = _summary_changes(changed, state.data if state else None, languages)
                tx.set(PROVIDER_STATE, changed.provider, summary, merge=True)
            return changed

        return self._store.run_transaction(apply)

    def provider_states(self, providers: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Return each provider's sync summary (providers never synced are absent)."""
        names = list(providers)
        found = self._store.get_many(PROVIDER_STATE, names) if names else {}
        return {name: document.data for name, document in found.items()}


def _summary_changes(
    job: VoiceSyncJob, state: dict[str, Any] | None, languages: Iterable[str] | None
) -> dict[str, Any]:
    summary: dict[str, Any] = (
        _state_for(job) if _is_latest(job, state) else {"provider": job.provider}
    )
    if job.status is VoiceSyncStatus.COMPLETED and job.completed_at is not None:
        previous = (state or {}).get("last_synced_at")
        if not isinstance(previous, datetime) or job.completed_at >= previous:
            summary["last_synced_at"] = job.completed_at
            if languages is not None:
                summary["languages"] = sorted(set(languages))
    return summary


def _is_latest(job: VoiceSyncJob, state: dict[str, Any] | None) -> bool:
    # An older job finishing after a newer one started does not become "the last job".
    if state is None or state.get("last_job_id") == job.id:
        return True
    created = state.get("last_job_created_at")
    return not isinstance(created, datetime) or job.created_at >= created


def _state_for(job: VoiceSyncJob) -> dict[str, Any]:
    return {
        "provider": job.provider,
        "last_job_id": job.id,
        "last_job_status": job.status.value,
        "last_job_created_at": job.created_at,
        "last_error": job.error_message,
    }
