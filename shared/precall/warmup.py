"""Warming the embedded cloner ahead of the first call, so a clone fits in a greeting.

The embedded cloner (the samples capability's voice match) compares every eSpeak variant
of the voice's language, from a table built once per language, engine and encoder and
kept in the models bucket and in memory. Building it takes 30-60 s on two busy cores:
the first clone ever of a language would wait that long, far longer than a greeting
plays. Setting a mapping therefore queues ``precall.warm_cloner`` for its sample's
language, which builds and stores the table unless the bucket has it already (then it
costs a read). One per language a day (de-duplicated); a failure is only logged: the
first clone builds the table itself then. ElevenLabs needs no warming.
"""

from __future__ import annotations

import logging

from shared.errors import PlatformError
from shared.model import RequestModel
from shared.precall.deps import PrecallDeps

logger = logging.getLogger(__name__)

WARM_TASK = "precall.warm_cloner"


class WarmTask(RequestModel):
    """Payload of ``precall.warm_cloner``: the language whose voices to get ready."""

    language: str


def queue_warm_up(deps: PrecallDeps, language: str) -> None:
    """Queue the warming of the embedded cloner for ``language`` (never raises)."""
    if deps.settings.precall_cloner != "embedded":
        return
    # With the task queue, which only requests that queue work build.
    from shared.tasks.errors import TaskAlreadyExistsError  # noqa: PLC0415 - see above

    try:
        deps.task_queue().enqueue(
            deps.settings.default_queue,
            WARM_TASK,
            WarmTask(language=language),
            dedup_key=f"precall-warm:{language.lower()}",
        )
    except TaskAlreadyExistsError:
        logger.debug("The cloner was warmed for %s today", language)
    except PlatformError:
        logger.exception("Could not queue the warming of the cloner for %s", language)


def warm_cloner(deps: PrecallDeps, task: WarmTask) -> None:
    """Get the cloner ready for ``task.language``; log, never raise, when it cannot."""
    from shared.precall.cloners import CloneFailedError  # noqa: PLC0415 - with the cloner

    try:
        deps.cloner.warm(task.language)
    except (CloneFailedError, PlatformError) as exc:
        logger.warning("The cloner could not be warmed for %s: %s", task.language, exc)
