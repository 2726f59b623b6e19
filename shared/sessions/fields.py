"""Where a refused config or message is wrong, named as a client can read it.

pydantic names each problem by its location: field names, list indices and object keys,
which ``validation_problems`` joins with dots (``pipeline.customProcessors.0.order``). An
object key is the client's own text, so a path repeats it as the platform repeats any
value a caller sent (``shared.errors.echoed``: cut at 64 characters). A key holding a
lone surrogate (a JSON escape such as ``"\\ud800"`` that is no Unicode character) is
named by that escape: pydantic cannot read such a key, and names it by three U+FFFD and
``[key]``, or not at all (a model's unknown field); the key itself is the input of its
problem.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.errors import echoed

_NOT_TEXT = "string_unicode"  # pydantic's error type for a str that is not Unicode text
_KEY = "[key]"  # pydantic's last location part for a problem with an object key itself


def validation_problems(exc: ValidationError, data: Any, *, skip: int = 0) -> list[tuple[str, str]]:
    """Return the field path and message of each problem ``exc`` found in ``data``.

    ``skip`` leading location parts name no key of ``data`` (a tagged union's tag).
    """
    problems = []
    for error in exc.errors(include_url=False):
        location = error["loc"][skip:]
        message = error["msg"]
        key_location = _key_location(error, location, data)
        if key_location is not None:
            location = key_location
            message = "this key is not valid Unicode text (it holds a lone surrogate)"
        elif error["type"] == _NOT_TEXT:
            message = "not valid Unicode text (it holds a lone surrogate)"
        problems.append((".".join(_shown(part) for part in location), message))
    return problems


def _key_location(
    error: ErrorDetails, location: tuple[int | str, ...], data: Any
) -> tuple[int | str, ...] | None:
    """Return the location of the object key ``error`` is about, or None (about a value)."""
    key = error.get("input")
    if error["type"] != _NOT_TEXT or not isinstance(key, str):
        return None
    if location[-1:] == (_KEY,):
        return (*location[:-2], key)
    holder = data
    for part in location:
        try:
            holder = holder[part]
        except (KeyError, IndexError, TypeError):
            return None
    return (*location, key) if isinstance(holder, dict) and key in holder else None


def _shown(part: int | str) -> str:
    if isinstance(part, int):
        return str(part)
    return echoed(part.encode("utf-8", "backslashreplace").decode("utf-8"))
