"""Refused input, named alike everywhere: pydantic's problems and free-form JSON's bounds.

A refused input's problems are named by field paths (``validation_problems``) whose keys,
the caller's own text, are cut and a lone surrogate or NUL in them shown by its JSON
escape, as ``shared.errors.field_path`` names a field. Free-form JSON objects (metadata) are bounded
(``check_free_form``); a refusal names the path inside the object of the key or value it
is about. ``is_unspoken_control`` names the control characters that say nothing, which a
text to speak may not consist of and a lexicon rule may not hold.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationError
from pydantic_core import ErrorDetails

from shared.errors import field_path

logger = logging.getLogger(__name__)

# Validation problems ---------------------------------------------------------------------------

_NOT_TEXT = "string_unicode"  # pydantic's error type for a str that is not Unicode text
_KEY = "[key]"  # pydantic's last location part for a problem with an object key itself


def validation_problems(
    exc: ValidationError, data: Any = None, *, skip: int = 0
) -> list[tuple[str, str]]:
    """Return the field path and message of each problem ``exc`` found in ``data``, in order.

    pydantic names a problem by its location (field names, list indices, object keys),
    joined here with dots as ``shared.errors.field_path`` names a field: an object key is
    the caller's own text, cut at 64 characters, a lone surrogate in it (a JSON escape
    such as ``"\\ud800"``, no Unicode character) shown by that escape. pydantic cannot
    read such a key and names it by three U+FFFD and ``[key]``, or not at all (a model's
    unknown field); the key is the input of its problem, and is put back in the path from
    there (found in ``data``, the validated input). ``skip`` leading location parts name no
    key of ``data`` (a tagged union's tag).
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
        problems.append((field_path(location), message))
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


# Free-form data -------------------------------------------------------------------------------

MAX_FREE_FORM_DEPTH = 8
MAX_FREE_FORM_ITEMS = 256
MAX_FREE_FORM_BYTES = 16 * 1024
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def check_free_form(value: dict[str, Any]) -> dict[str, Any]:
    """Return ``value`` if it is small, shallow, finite JSON; raise ValueError otherwise.

    Free-form fields (metadata) are stored inside an entity and sent back in every reply
    that shows it, so they must fit the document store (Firestore: 1 MiB per document, 20
    levels of nesting) and always serialise: at most ``MAX_FREE_FORM_DEPTH`` levels,
    ``MAX_FREE_FORM_ITEMS`` keys and elements, ``MAX_FREE_FORM_BYTES`` of UTF-8 JSON; no
    NaN or infinity, no integer beyond 64 bits (Firestore's), no NUL, no lone surrogate.
    A refused key or value (a NUL, a lone surrogate, a number out of bounds, a value that is
    not JSON) is named by its path, as ``shared.errors.field_path`` names a field
    (``key a.0.b\\u0000``, ``value at a.b``).
    """
    items = 0
    pending: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while pending:
        node, path = pending.pop()
        if isinstance(node, dict | list):
            if len(path) >= MAX_FREE_FORM_DEPTH:
                depth = MAX_FREE_FORM_DEPTH
                raise ValueError(f"value at {field_path(path)} nests deeper than {depth} levels")
            items += len(node)
            if items > MAX_FREE_FORM_ITEMS:
                raise ValueError(f"holds more than {MAX_FREE_FORM_ITEMS} keys and elements")
            children = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in children:
                if isinstance(key, str) and "\x00" in key:
                    raise ValueError(f"key {field_path((*path, key))} {_HOLDS_NUL}")
                pending.append((child, (*path, key)))
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError(f"value at {field_path(path)} must be a finite number")
        elif isinstance(node, int) and not _INT64_MIN <= node <= _INT64_MAX:
            raise ValueError(f"value at {field_path(path)} must be an integer that fits in 64 bits")
        elif isinstance(node, str) and "\x00" in node:
            raise ValueError(f"value at {field_path(path)} {_HOLDS_NUL}")
        elif node is not None and not isinstance(node, str | int | float | bool):
            raise ValueError(f"value at {field_path(path)} is a {type(node).__name__}, not JSON")
    check_unicode_text(value)
    # Imported on first use: importing the building blocks loads no json (most modules
    # that import them never check a free-form value).
    import json  # noqa: PLC0415 - see above

    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    except (UnicodeEncodeError, ValueError) as exc:
        raise ValueError("is not valid UTF-8 JSON") from exc
    if size > MAX_FREE_FORM_BYTES:
        raise ValueError(f"is larger than {MAX_FREE_FORM_BYTES} bytes as JSON")
    return value


_HOLDS_NUL = "must not contain NUL characters"
_NOT_UNICODE_TEXT = "is not valid Unicode text (it holds a lone surrogate)"


def check_unicode_text(value: dict[str, Any]) -> None:
    """Return None if every key and string in the JSON object ``value`` is Unicode text.

    JSON text may escape a lone surrogate (``"\\ud800"``), which is no Unicode character:
    such a key or string cannot be stored as UTF-8, nor sent back as it came.

    Raises:
        ValueError: a key or string is not Unicode text; the message names its path
            (``key a.0.\\ud800``, ``value at a.b``) as ``shared.errors.field_path`` does.
    """
    pending: list[tuple[Any, tuple[int | str, ...]]] = [(value, ())]
    while pending:
        node, path = pending.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str) and not _is_unicode_text(key):
                    raise ValueError(f"key {field_path((*path, key))} {_NOT_UNICODE_TEXT}")
                pending.append((child, (*path, key)))
        elif isinstance(node, list):
            pending.extend((child, (*path, index)) for index, child in enumerate(node))
        elif isinstance(node, str) and not _is_unicode_text(node):
            raise ValueError(f"value at {field_path(path)} {_NOT_UNICODE_TEXT}")


def _is_unicode_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_unspoken_control(char: str) -> bool:
    """Return whether ``char`` is a control character that is not whitespace.

    Such characters say nothing: eSpeak renders no audio (or a stray sound) for them, so
    a text of nothing else is empty and a lexicon alias may not hold one. Tabs and line
    breaks are whitespace, as between any words.
    """
    return unicodedata.category(char) == "Cc" and not char.isspace()


def _readable_free_form(value: dict[str, Any]) -> dict[str, Any]:
    try:
        return check_free_form(value)
    except (ValueError, RecursionError):
        logger.warning("A stored free-form field is unreadable; it reads as empty")
        return {}


FreeForm = Annotated[dict[str, Any], AfterValidator(check_free_form)]
"""A free-form JSON object a request may send (metadata): bounded, see ``check_free_form``."""

StoredFreeForm = Annotated[dict[str, Any], AfterValidator(_readable_free_form)]
"""A free-form object read back from the store: one that could not be sent reads as ``{}``.

Records written before the bounds existed may hold anything; a read must never fail on
them (the stored document is left as it is for an operator to repair).
"""
