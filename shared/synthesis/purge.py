"""Erasing a deleted account's synthesis data: its jobs (which hold the full text) and the
chunk objects of jobs still running. (Characters are counted in the voice models' usage
shards, which the voice-model purge erases.)
"""

from __future__ import annotations

from shared.store.base import Query
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.jobs import CHUNK_PREFIX
from shared.synthesis.repository import SYNTHESIS_JOBS


def purge_synthesis(deps: SynthesisDeps, user_id: str) -> int:
    """Delete ``user_id``'s synthesis jobs and what they left; return how many jobs went."""
    store, bucket = deps.store, deps.settings.audio_bucket
    jobs = Query(SYNTHESIS_JOBS).where("user_id", "==", user_id)
    for job in list(store.stream(jobs)):
        deps.blobs.delete_prefix(bucket, f"{CHUNK_PREFIX}/{job.id}/")
    return store.delete_matching(jobs)
