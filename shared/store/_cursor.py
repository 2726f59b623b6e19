"""Opaque page cursors shared by both store adapters.

A cursor holds the effective sort fields and the last document's values for them, so the
next page starts right after it whatever was written in between. It is URL-safe base64 of
JSON; datetimes and vectors travel tagged. A cursor from another query shape is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from shared.errors import InvalidRequestError
from shared.store.base import Order

_DATETIME_TAG = "$dt"


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_DATETIME_TAG: value.isoformat()}
    return value


_INT64 = range(-(2**63), 2**63)


def _decode_value(value: Any) -> Any:
    """Return a cursor value; raise ValueError for anything a document field cannot hold."""
    if isinstance(value, dict) and set(value) == {_DATETIME_TAG}:
        return datetime.fromisoformat(value[_DATETIME_TAG])
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int) and value in _INT64:
        return value
    raise ValueError("not a sortable value")


def encode_cursor(orders: tuple[Order, ...], values: list[Any]) -> str:
    """Return the cursor for a page whose last document had ``values`` for ``orders``."""
    payload = {
        "f": [[order.field, order.descending] for order in orders],
        "v": [_encode_value(v) for v in values],
    }
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, orders: tuple[Order, ...]) -> list[Any]:
    """Return the values held by ``cursor``; raise InvalidRequestError if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        fields = [(str(f), bool(d)) for f, d in payload["f"]]
        values = [_decode_value(v) for v in payload["v"]]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidRequestError("Invalid cursor") from exc
    if fields != [(o.field, o.descending) for o in orders] or len(values) != len(orders):
        raise InvalidRequestError("Cursor does not belong to this query")
    return values
