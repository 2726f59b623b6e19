"""Frame processors and the pipeline that chains them.

A processor overrides ``process_frame`` for the frames it cares about and passes every other
frame on with ``push_frame``. Each processor has its own queue and task, so slow work (a
speech decode, an agent's answer, a synthesis) never holds up the stages before it: voice
activity detection keeps running while the reply is prepared, which is what makes barge-in
possible. System frames skip the queue and are handled at once, in the caller's task. An
``InterruptionFrame`` travelling downstream makes each processor it reaches drop its queued
interruptible frames and cancel the frame it is working on, then pass the interruption on.

Every task a pipeline starts is named ``session:<id>:<stage>`` and tracked by
``SessionTasks``, so closing a session can cancel and await them all (and a test can check
none is left).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from shared.sessions.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    SystemFrame,
    Uninterruptible,
)

logger = logging.getLogger(__name__)


class Direction(Enum):
    """Which way a frame travels: toward the output, or back toward the input."""

    DOWNSTREAM = "downstream"
    UPSTREAM = "upstream"


class SessionTasks:
    """The asyncio tasks one session started; ``close`` cancels and awaits every one."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coroutine: Coroutine[Any, Any, Any], stage: str) -> asyncio.Task[Any]:
        """Return a started task named ``session:<id>:<stage>`` that ``close`` will stop.

        Raises:
            RuntimeError: the session's tasks were already closed.
        """
        if self._closed:
            coroutine.close()
            raise RuntimeError("the session is closed")
        task = asyncio.get_running_loop().create_task(
            coroutine, name=f"session:{self.session_id}:{stage}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def running(self) -> list[asyncio.Task[Any]]:
        """Return the tasks not yet finished."""
        return [task for task in self._tasks if not task.done()]

    async def close(self) -> None:
        """Cancel every task and wait until each has finished."""
        self._closed = True
        current = asyncio.current_task()
        while pending := [task for task in self._tasks if task is not current and not task.done()]:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class PipelineContext:
    """What every processor of one session may use.

    ``bot_busy`` tells whether a reply is being prepared or played (so user speech is a
    barge-in); ``clock`` is the monotonic clock the metrics use. ``turns_before`` is how
    many user turns the session had before this pipeline started: the stage that numbers
    turns gives the next one the number after it, so a resumed session goes on counting.
    """

    session_id: str
    tasks: SessionTasks
    turns_before: int = 0
    bot_busy: Callable[[], bool] = lambda: False
    clock: Callable[[], float] = time.monotonic
    turn_marks: dict[int, dict[str, float]] = field(default_factory=dict)

    def mark(self, turn: int, name: str, at: float | None = None) -> None:
        """Record when ``name`` happened in ``turn`` (first mark wins)."""
        marks = self.turn_marks.setdefault(turn, {})
        marks.setdefault(name, self.clock() if at is None else at)


class FrameProcessor:
    """One pipeline stage. Subclasses override ``process_frame`` and call ``push_frame``."""

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self._next: FrameProcessor | None = None
        self._previous: FrameProcessor | None = None
        self._queue: asyncio.Queue[tuple[Frame, Direction]] = asyncio.Queue()
        self._task: asyncio.Task[Any] | None = None
        self._context: PipelineContext | None = None

    @property
    def context(self) -> PipelineContext:
        """Return the session context (set by ``setup``)."""
        if self._context is None:
            raise RuntimeError(f"processor {self.name} is not set up")
        return self._context

    def link(self, following: FrameProcessor) -> None:
        """Make ``following`` the next stage downstream of this one."""
        self._next = following
        following._previous = self

    async def setup(self, context: PipelineContext) -> None:
        """Start the processor's queue task within ``context``."""
        self._context = context
        self._start_task()

    async def cleanup(self) -> None:
        """Stop the queue task; subclasses release their resources after calling this."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        """Handle ``frame``; the default passes it on unchanged."""
        await self.push_frame(frame, direction)

    async def push_frame(self, frame: Frame, direction: Direction = Direction.DOWNSTREAM) -> None:
        """Send ``frame`` to the neighbouring stage in ``direction`` (dropped at either end)."""
        target = self._next if direction is Direction.DOWNSTREAM else self._previous
        if target is not None:
            await target.queue_frame(frame, direction)

    async def push_error(self, code: str, message: str, *, fatal: bool = False) -> None:
        """Report a failure downstream, toward the session."""
        await self.push_frame(ErrorFrame(code=code, message=message, fatal=fatal))

    async def queue_frame(self, frame: Frame, direction: Direction) -> None:
        """Accept ``frame``: system frames at once, the others in order through the queue."""
        if not isinstance(frame, SystemFrame):
            self._queue.put_nowait((frame, direction))
            return
        if isinstance(frame, InterruptionFrame) and direction is Direction.DOWNSTREAM:
            await self._interrupt()
        await self._process_guarded(frame, direction)

    async def on_interrupted(self) -> None:
        """Reset per-reply state after an interruption (the default keeps nothing)."""

    async def _interrupt(self) -> None:
        kept: list[tuple[Frame, Direction]] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item[0], Uninterruptible):
                kept.append(item)
        for item in kept:
            self._queue.put_nowait(item)
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._start_task()
        await self.on_interrupted()

    def _start_task(self) -> None:
        self._task = self.context.tasks.spawn(self._run(), self.name)

    async def _run(self) -> None:
        while True:
            frame, direction = await self._queue.get()
            await self._process_guarded(frame, direction)

    async def _process_guarded(self, frame: Frame, direction: Direction) -> None:
        try:
            await self.process_frame(frame, direction)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception(
                "Session stage failed",
                extra={"fields": {"stage": self.name, "sessionId": self.context.session_id}},
            )
            if not isinstance(frame, ErrorFrame):
                await self.push_error("STAGE_FAILED", f"{self.name} failed: {type(exc).__name__}")


FrameHandler = Callable[[Frame], Awaitable[None]]


class PipelineSink(FrameProcessor):
    """The last stage: hands each downstream frame, in order, to the session."""

    def __init__(self, handler: FrameHandler) -> None:
        super().__init__(name="sink")
        self._handler = handler

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        await self._handler(frame)


class PipelineSource(FrameProcessor):
    """The first stage: where input enters; frames pushed upstream past it go to a handler."""

    def __init__(self, upstream_handler: FrameHandler) -> None:
        super().__init__(name="source")
        self._upstream_handler = upstream_handler

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if direction is Direction.UPSTREAM:
            await self._upstream_handler(frame)
        else:
            await self.push_frame(frame, direction)


class Pipeline:
    """Stages linked in order between a source and a sink."""

    def __init__(
        self,
        stages: Sequence[FrameProcessor],
        *,
        on_frame: FrameHandler,
        on_upstream: FrameHandler | None = None,
    ) -> None:
        names = [stage.name for stage in stages]
        if len(names) != len(set(names)):
            raise ValueError(f"pipeline stage names must be unique: {names}")

        async def ignore(frame: Frame) -> None:
            return None

        self.stages = list(stages)
        self._source = PipelineSource(on_upstream or ignore)
        self._sink = PipelineSink(on_frame)
        chain = [self._source, *self.stages, self._sink]
        for current, following in itertools.pairwise(chain):
            current.link(following)
        self._chain = chain

    async def start(self, context: PipelineContext) -> None:
        """Start every stage's task."""
        for stage in self._chain:
            await stage.setup(context)

    async def stop(self) -> None:
        """Stop every stage, last first."""
        for stage in reversed(self._chain):
            await stage.cleanup()

    async def queue_input(self, frame: Frame) -> None:
        """Feed ``frame`` into the first stage."""
        await self._source.queue_frame(frame, Direction.DOWNSTREAM)

    def stage(self, name: str) -> FrameProcessor:
        """Return the stage called ``name``.

        Raises:
            KeyError: no stage has that name.
        """
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)
