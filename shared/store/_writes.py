"""How a write changes a document, for adapters that apply writes themselves (SQLite).

Firestore applies these rules on its side; this module reproduces them so the embedded
adapter behaves the same: deep merge for ``set(merge=True)``, dotted paths for ``update``,
``Increment`` and ``DELETE_FIELD`` transforms.
"""

from __future__ import annotations

import copy
from typing import Any

from shared.errors import DocumentAlreadyExistsError, DocumentNotFoundError, InvalidRequestError
from shared.store.base import DeleteField, Increment, Maximum, Write


def apply_write(current: dict[str, Any] | None, write: Write) -> dict[str, Any] | None:
    """Return the document after ``write`` (None when deleted).

    Raises DocumentAlreadyExistsError for a create over an existing document and
    DocumentNotFoundError for an update of a missing one.
    """
    if write.kind == "delete":
        return None
    if write.kind == "create":
        if current is not None:
            raise DocumentAlreadyExistsError(f"{write.collection}/{write.doc_id} already exists")
        return _resolve_fresh(write.data)
    if write.kind == "update":
        if current is None:
            raise DocumentNotFoundError(f"{write.collection}/{write.doc_id} does not exist")
        updated = copy.deepcopy(current)
        for path, value in write.data.items():
            _set_path(updated, path.split("."), value)
        return updated
    if write.merge and current is not None:
        merged = copy.deepcopy(current)
        _merge_into(merged, write.data)
        return merged
    return _resolve_fresh(write.data)


def _resolve_fresh(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    _merge_into(result, data, allow_delete=False)
    return result


def _merge_into(target: dict[str, Any], data: dict[str, Any], *, allow_delete: bool = True) -> None:
    for key, value in data.items():
        if isinstance(value, DeleteField):
            if not allow_delete:
                raise InvalidRequestError(
                    "DELETE_FIELD is only allowed in update or set(merge=True)"
                )
            target.pop(key, None)
        elif isinstance(value, Increment):
            target[key] = _incremented(target.get(key), value)
        elif isinstance(value, Maximum):
            target[key] = _maximum(target.get(key), value)
        elif isinstance(value, dict):
            existing = target.get(key)
            nested = existing if isinstance(existing, dict) else {}
            _merge_into(nested, value, allow_delete=allow_delete)
            target[key] = nested
        else:
            target[key] = copy.deepcopy(value)


def _set_path(target: dict[str, Any], parts: list[str], value: Any) -> None:
    head, rest = parts[0], parts[1:]
    if rest:
        child = target.get(head)
        if not isinstance(child, dict):
            child = {}
            target[head] = child
        _set_path(child, rest, value)
    elif isinstance(value, DeleteField):
        target.pop(head, None)
    elif isinstance(value, Increment):
        target[head] = _incremented(target.get(head), value)
    elif isinstance(value, Maximum):
        target[head] = _maximum(target.get(head), value)
    elif isinstance(value, dict):
        fresh: dict[str, Any] = {}
        _merge_into(fresh, value)
        target[head] = fresh
    else:
        target[head] = copy.deepcopy(value)


def _incremented(current: Any, increment: Increment) -> int | float:
    if isinstance(current, int | float) and not isinstance(current, bool):
        return current + increment.amount
    return increment.amount


def _maximum(current: Any, maximum: Maximum) -> int | float:
    if isinstance(current, int | float) and not isinstance(current, bool):
        return max(current, maximum.value)
    return maximum.value
