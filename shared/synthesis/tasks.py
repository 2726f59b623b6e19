"""Synthesis's background work: the chunk and assembly tasks of long jobs.

``synthesis.chunk`` renders one sentence chunk of a job and ``synthesis.assemble`` stitches
them into the job's file (``shared.synthesis.job_tasks``); an assembly failing on its last
attempt fails the job. ``synthesis.callback`` POSTs a finished job to its ``callbackUrl``
(``shared.synthesis.callbacks``). Synthesis has no scheduled jobs.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.config import Settings
from shared.errors import SynthesisJobNotFoundError
from shared.synthesis.callbacks import CALLBACK_TASK, CallbackTask, deliver_callback
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.job_tasks import run_assemble, run_chunk
from shared.synthesis.jobs import (
    ASSEMBLE_TASK,
    CHUNK_TASK,
    AssembleTask,
    ChunkTask,
    fail_job,
    job_summary,
)
from shared.synthesis.repository import SynthesisJobRepository, job_from
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import ScheduledJob


def register_tasks(registry: TaskRegistry, deps: Callable[[], SynthesisDeps]) -> None:
    """Register ``synthesis.chunk`` and ``synthesis.assemble``."""

    def chunk(payload: ChunkTask, ctx: TaskContext) -> None:
        run_chunk(deps(), payload, ctx)

    def assemble(payload: AssembleTask, ctx: TaskContext) -> None:
        synthesis = deps()
        try:
            run_assemble(synthesis, payload)
        except Exception:
            if ctx.is_last_attempt:
                fail_job(synthesis, payload.job_id, "Assembling the audio failed")
            raise

    def callback(payload: CallbackTask, ctx: TaskContext) -> None:
        synthesis = deps()
        try:
            document = SynthesisJobRepository(synthesis.store).document(payload.job_id)
        except SynthesisJobNotFoundError:
            return  # gone with its owner's account: nothing to tell
        job = job_from(document)
        summary = job_summary(synthesis, job).to_api()
        deliver_callback(synthesis.settings, job, summary, ctx)

    registry.register(CHUNK_TASK, ChunkTask, chunk)
    registry.register(ASSEMBLE_TASK, AssembleTask, assemble)
    registry.register(CALLBACK_TASK, CallbackTask, callback)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return synthesis's scheduled jobs: none."""
    del settings
    return []
