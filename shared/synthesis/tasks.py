"""Synthesis's background work: the chunk and assembly tasks of long jobs.

``synthesis.chunk`` renders one sentence chunk of a job and ``synthesis.assemble`` stitches
them into the job's file (``shared.synthesis.job_tasks``); an assembly failing on its last
attempt fails the job. ``synthesis.callback`` POSTs a finished job to its ``callbackUrl``
(``shared.synthesis.callbacks``). Every 15 minutes ``synthesis.requeue_stalled`` queues the
tasks a long job lost to an instance that died while queuing them
(``shared.synthesis.job_sweep``).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.config import Settings
from shared.errors import SynthesisJobNotFoundError
from shared.synthesis.callbacks import CALLBACK_TASK, CallbackTask, deliver_callback
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.job_sweep import REQUEUE_TASK, requeue_stalled_jobs
from shared.synthesis.job_tasks import run_assemble, run_chunk
from shared.synthesis.jobs import (
    ASSEMBLE_TASK,
    CHUNK_TASK,
    AssembleTask,
    ChunkTask,
    fail_job,
    job_with_file,
)
from shared.synthesis.repository import SynthesisJobRepository, job_from
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import JobRun, ScheduledJob


def register_tasks(registry: TaskRegistry, deps: Callable[[], SynthesisDeps]) -> None:
    """Register the chunk, assembly, callback and sweep tasks."""

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
        shown = job_with_file(synthesis, job, callback=True).to_api()
        deliver_callback(synthesis.settings, job, shown, ctx)

    def requeue(payload: JobRun, ctx: TaskContext) -> None:
        del payload, ctx  # each task is queued under its own key, once
        requeue_stalled_jobs(deps())

    registry.register(CHUNK_TASK, ChunkTask, chunk)
    registry.register(ASSEMBLE_TASK, AssembleTask, assemble)
    registry.register(CALLBACK_TASK, CallbackTask, callback)
    registry.register(REQUEUE_TASK, JobRun, requeue)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return synthesis's scheduled job: the sweep of stalled long jobs."""
    return [
        ScheduledJob(
            name="synthesis-job-requeue",
            cron="*/15 * * * *",
            description="Queue the tasks long synthesis jobs lost before they were queued",
            queue=settings.default_queue,
            task_type=REQUEUE_TASK,
        )
    ]
