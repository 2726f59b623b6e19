"""Helpers shared by the entities' state machines.

Each entity lists its legal moves in a table mapping a status to the statuses it may move
to; ``check_transition`` enforces the table and raises ``InvalidStateTransitionError`` for
anything else. Transition methods on entities return a new, fully validated instance built
with ``with_changes`` and leave the original untouched, so a refused transition never leaves
an entity half-changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel

from shared.errors import InvalidStateTransitionError

StatusT = TypeVar("StatusT", bound=StrEnum)
ModelT = TypeVar("ModelT", bound=BaseModel)

TransitionTable = Mapping[StatusT, frozenset[StatusT]]
"""A status mapped to the statuses it may move to; absent statuses are terminal."""


def is_transition_allowed(
    table: TransitionTable[StatusT], current: StatusT, target: StatusT
) -> bool:
    """Return whether ``table`` allows moving from ``current`` to ``target``."""
    return target in table.get(current, frozenset())


def check_transition(
    entity: str,
    table: TransitionTable[StatusT],
    current: StatusT,
    target: StatusT,
) -> None:
    """Return None if ``table`` allows ``current`` -> ``target``.

    Raises:
        InvalidStateTransitionError: the move is not in the table.
    """
    if not is_transition_allowed(table, current, target):
        raise InvalidStateTransitionError(
            f"{entity} cannot move from {current.value!r} to {target.value!r}"
        )


def with_changes(model: ModelT, **changes: Any) -> ModelT:
    """Return a copy of ``model`` with ``changes`` applied and every rule re-validated.

    Unlike ``model_copy(update=...)``, this runs the model's validators, so a change that
    breaks a rule raises ``pydantic.ValidationError`` instead of producing an invalid entity.
    """
    return type(model).model_validate({**model.model_dump(), **changes})
