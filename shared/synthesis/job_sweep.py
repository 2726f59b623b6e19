"""Long jobs whose tasks were never all queued: found and queued again by a sweep.

``start_job`` stores a long job, then queues its chunk tasks one by one; an instance that
dies in between leaves chunks no task will ever render, and the job pending for good.
Every 15 minutes ``synthesis.requeue_stalled`` looks at the jobs still running
``STALL_GRACE`` after they were made and queues again, under the keys ``start_job`` uses,
the chunk tasks of the chunks not done (one still queued refuses the duplicate; a chunk
task run twice renders once), and the assembly of a job whose chunks are all done. A job
whose tasks are merely waiting in a long queue is left as it is.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.model import utcnow
from shared.store.base import Query
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.jobs import chunk_spans, queue_assembly, queue_chunks
from shared.synthesis.model import SynthesisStatus
from shared.synthesis.repository import SYNTHESIS_JOBS, job_from

logger = logging.getLogger(__name__)

REQUEUE_TASK = "synthesis.requeue_stalled"
STALL_GRACE = timedelta(minutes=15)


def requeue_stalled_jobs(deps: SynthesisDeps, now: datetime | None = None) -> int:
    """Queue the missing tasks of long jobs still running after the grace; return how many."""
    cutoff = (now or utcnow()) - STALL_GRACE
    # A long job stays stored as pending while it runs (its chunk markers say the rest).
    query = Query(SYNTHESIS_JOBS).where("status", "==", SynthesisStatus.PENDING.value)
    requeued = 0
    for document in deps.store.stream(query):
        if "chunks" not in document.data or job_from(document).created_at > cutoff:
            continue
        done = document.data.get("chunks_done") or {}
        missing = [i for i in range(len(chunk_spans(document.data))) if f"c{i}" not in done]
        queued = queue_chunks(deps, document.id, missing) if missing else 0
        if not missing and queue_assembly(deps, document.id):
            queued += 1
        if queued:
            logger.warning("Queued %d missing tasks of synthesis job %s", queued, document.id)
        requeued += queued
    return requeued
