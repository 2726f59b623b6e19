"""Encoding documents as SQLite JSON and queries as SQL, for the embedded store.

Values JSON cannot hold are tagged inside strings that start with U+E000 (a private-use
character): ``\\ue000T`` + fixed-width ISO time for datetimes, so they still sort by time
inside SQLite; ``{"\\ue000V": [...]}`` for vectors; a user string that itself starts with
U+E000 is escaped as ``\\ue000S`` + the string. Each row also lists the paths of its
tagged values, so reading a document touches only those. Filters check the JSON type of a field, so
``n > 1`` never matches a string, as in Firestore. Field paths reach SQL only after
``check_field`` has limited them to dotted identifiers.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from shared.errors import InvalidRequestError
from shared.store.base import (
    DOCUMENT_ID,
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_DEPTH,
    DeleteField,
    Filter,
    Increment,
    Maximum,
    Order,
    Vector,
)

TAG = "\ue000"
_DATETIME = TAG + "T"
_ESCAPED = TAG + "S"
_VECTOR = TAG + "V"
_FLOAT = TAG + "F"


def encode_value(value: Any) -> Any:
    """Return ``value`` as plain JSON data with datetimes and vectors tagged."""
    kind = type(value)
    if kind is str:
        return _ESCAPED + value if value.startswith(TAG) else value
    if value is None or kind is int or kind is float or kind is bool:
        return value
    if kind is dict:
        return {key: encode_value(item) for key, item in value.items()}
    if isinstance(value, Vector):
        return {_VECTOR: list(value)}
    if kind is list or kind is tuple:
        return [encode_value(item) for item in value]
    if isinstance(value, datetime):
        return _DATETIME + _format_datetime(value)
    if isinstance(value, Increment):
        # Only a fresh document reaches here with a transform: it starts from zero.
        return value.amount
    if isinstance(value, Maximum):
        return value.value
    if isinstance(value, DeleteField):
        raise InvalidRequestError("DELETE_FIELD is only allowed in update or set(merge=True)")
    raise InvalidRequestError(f"Unsupported value type in a document: {kind.__name__}")


def _format_datetime(value: datetime) -> str:
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    # isoformat, not strftime: its year always has four digits (strftime writes year 1 as
    # "1"), so every time has the same width and sorts as text.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def dumps(data: dict[str, Any]) -> tuple[str, str | None]:
    """Return the JSON text stored for a document and the paths of its tagged values.

    Reads restore only the values at those paths, so a document without datetimes,
    vectors or non-finite numbers is parsed by ``json.loads`` alone. Raises
    InvalidRequestError beyond Firestore's limits (``MAX_DOCUMENT_DEPTH``,
    ``MAX_DOCUMENT_BYTES``), which this store keeps too.
    """
    tagged: list[list[str | int]] = []

    def encode(value: Any, path: list[str | int]) -> Any:
        kind = type(value)
        if kind is str:
            if value.startswith(TAG):
                tagged.append(path)
                return _ESCAPED + value
            return value
        if kind is float and not math.isfinite(value):
            tagged.append(path)
            return _FLOAT + repr(value)
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if kind is dict or kind is list or (kind is tuple and not isinstance(value, Vector)):
            if len(path) > MAX_DOCUMENT_DEPTH:
                raise InvalidRequestError(
                    f"A document nests deeper than {MAX_DOCUMENT_DEPTH} levels"
                )
            if kind is dict:
                return {key: encode(item, [*path, key]) for key, item in value.items()}
            return [encode(item, [*path, index]) for index, item in enumerate(value)]
        encoded = encode_value(value)
        if isinstance(value, Vector | datetime):
            tagged.append(path)
        return encoded

    text = json.dumps(encode(data, []), separators=(",", ":"))
    if len(text) > MAX_DOCUMENT_BYTES:  # ASCII: json.dumps escapes everything else
        raise InvalidRequestError(f"A document is larger than {MAX_DOCUMENT_BYTES} bytes")
    return text, (json.dumps(tagged, separators=(",", ":")) if tagged else None)


def loads(text: str, tagged: str | None) -> dict[str, Any]:
    """Return the document stored as ``text``, restoring the values at ``tagged`` paths."""
    data: dict[str, Any] = json.loads(text)
    if tagged:
        for path in _tagged_paths(tagged):
            parent: Any = data
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = _decode_tagged(parent[path[-1]])
    return data


@lru_cache(maxsize=1024)
def _tagged_paths(tagged: str) -> list[list[str | int]]:
    # Documents of one collection share a few shapes: parse each shape's paths once.
    paths: list[list[str | int]] = json.loads(tagged)
    return paths


def _decode_tagged(value: Any) -> Any:
    if type(value) is dict:
        return Vector(value[_VECTOR])
    if value.startswith(_DATETIME):
        return datetime.fromisoformat(value[2:])
    if value.startswith(_FLOAT):
        return float(value[2:])
    return value[2:]


def json_path(field: str) -> str:
    """Return the SQLite JSON path literal for a checked dotted field path."""
    return "'$." + field + "'"


def value_expr(field: str) -> str:
    """Return the SQL expression of a field's value (the form the indexes use)."""
    return f"json_extract(data, {json_path(field)})"


def type_expr(field: str) -> str:
    """Return the SQL expression of a field's JSON type (NULL when missing)."""
    return f"json_type(data, {json_path(field)})"


_SQL_OPS = {"==": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def typed_comparison(x: str, t: str, op: str, value: Any) -> tuple[str, list[Any]]:
    """Return SQL comparing expression ``x`` (JSON type ``t``) with ``value`` by type."""
    sql_op = _SQL_OPS[op]
    if value is None:
        if op != "==":
            raise InvalidRequestError("null can only be compared for equality")
        return f"{t} = 'null'", []
    if isinstance(value, bool):
        if op == "==":
            return f"{t} = '{'true' if value else 'false'}'", []
        return f"({t} IN ('true','false') AND {x} {sql_op} ?)", [int(value)]
    if isinstance(value, int | float):
        return f"({t} IN ('integer','real') AND {x} {sql_op} ?)", [value]
    if isinstance(value, str):
        if op == "==":
            return f"({x} = ? AND {t} = 'text')", [encode_value(value)]
        return f"({t} = 'text' AND {x} {sql_op} ? AND substr({x}, 1, 2) <> ?)", [
            encode_value(value),
            _DATETIME,
        ]
    if isinstance(value, datetime):
        return f"({x} {sql_op} ? AND {t} = 'text' AND substr({x}, 1, 2) = ?)", [
            encode_value(value),
            _DATETIME,
        ]
    raise InvalidRequestError(f"Cannot filter on a value of type {type(value).__name__}")


def filter_sql(condition: Filter) -> tuple[str, list[Any]]:
    """Return the SQL and parameters of one filter."""
    x, t = value_expr(condition.field), type_expr(condition.field)
    if condition.op == "array-contains":
        inner, params = typed_comparison("e.value", "e.type", "==", condition.value)
        path = json_path(condition.field)
        return (
            f"({t} = 'array' AND EXISTS (SELECT 1 FROM json_each(data, {path}) AS e "
            f"WHERE {inner}))",
            params,
        )
    if condition.op == "in":
        parts: list[str] = []
        params = []
        for item in condition.value:
            sql, item_params = typed_comparison(x, t, "==", item)
            parts.append(sql)
            params.extend(item_params)
        return "(" + " OR ".join(parts) + ")", params
    if condition.op == "!=":
        present = f"({t} IS NOT NULL AND {t} <> 'null')"
        if condition.value is None:
            return present, []
        sql, params = typed_comparison(x, t, "==", condition.value)
        return f"({present} AND NOT {sql})", params
    return typed_comparison(x, t, condition.op, condition.value)


def order_sql(orders: tuple[Order, ...]) -> tuple[str, list[str]]:
    """Return the ORDER BY clause and the conditions that ordered fields exist."""
    terms: list[str] = []
    exists: list[str] = []
    for order in orders:
        direction = "DESC" if order.descending else "ASC"
        if order.field == DOCUMENT_ID:
            terms.append(f"id {direction}")
        else:
            terms.append(f"{value_expr(order.field)} {direction}")
            exists.append(f"{type_expr(order.field)} IS NOT NULL")
    return "ORDER BY " + ", ".join(terms), exists


def after_sql(orders: tuple[Order, ...], values: list[Any]) -> tuple[str, list[Any]]:
    """Return SQL selecting rows strictly after ``values`` in the order ``orders``."""
    alternatives: list[str] = []
    params: list[Any] = []
    for index, order in enumerate(orders):
        parts: list[str] = []
        for previous, value in zip(orders[:index], values[:index], strict=True):
            sql, p = _equal_sql(previous, value)
            parts.append(sql)
            params.extend(p)
        sql, p = _beyond_sql(order, values[index])
        parts.append(sql)
        params.extend(p)
        alternatives.append("(" + " AND ".join(parts) + ")")
    return "(" + " OR ".join(alternatives) + ")", params


def _equal_sql(order: Order, value: Any) -> tuple[str, list[Any]]:
    if order.field == DOCUMENT_ID:
        return "id = ?", [value]
    if value is None:
        return f"{type_expr(order.field)} = 'null'", []
    return f"{value_expr(order.field)} = ?", [_sql_param(value)]


def _beyond_sql(order: Order, value: Any) -> tuple[str, list[Any]]:
    if order.field == DOCUMENT_ID:
        return ("id < ?" if order.descending else "id > ?"), [value]
    x, t = value_expr(order.field), type_expr(order.field)
    if value is None:
        return ("0" if order.descending else f"{t} <> 'null'"), []
    if order.descending:
        return f"({x} < ? OR {t} = 'null')", [_sql_param(value)]
    return f"{x} > ?", [_sql_param(value)]


def _sql_param(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return encode_value(value)
