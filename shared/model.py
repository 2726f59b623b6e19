"""The building blocks every capability's entities are made of.

Entities serialize with camelCase field names (the API convention) and accept camelCase or
snake_case on input; request models forbid unknown fields, so a typo in a client's body or
query is a 400 rather than silently ignored. The constrained number types declare each rule
once (an 8 Hz sample rate, a quality of 1.2, a negative duration or NaN are refused
everywhere alike); language tags are normalised to canonical BCP-47 casing before they are
stored or compared; and each entity's state machine is a table of legal moves enforced by
``check_transition``, whose transition methods return a new, fully validated instance
(``with_changes``) so a refused transition never leaves an entity half-changed. A refused
input's problems are named alike everywhere (``validation_problems``): field paths whose
keys, the caller's own text, are cut and a lone surrogate shown by its escape.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import types
import typing
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from shared.errors import InvalidStateTransitionError, field_path

logger = logging.getLogger(__name__)

# Entities ------------------------------------------------------------------------------------


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def new_id() -> str:
    """Return a new opaque identifier (a UUID4 in hex)."""
    return uuid.uuid4().hex


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime normalised to UTC; naive input is taken as UTC."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError(f"not an ISO 8601 date-time such as 2026-01-31T12:00:00Z: {value[:40]!r}")
    return value


QueryDatetime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_as_utc)]
"""A datetime of a query string: ISO 8601 only (pydantic would take "0.5" as a Unix time)."""


def _iso_in_body(value: Any) -> Any:
    # Request bodies are validated strictly, and once a model validator has seen the body
    # (RequestModel's do) strict pydantic takes no string for a datetime: parse it here.
    if not isinstance(value, str):
        return value
    try:
        return _as_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):  # OverflowError: in UTC, before year 1 or after 9999
        raise ValueError(
            f"not an ISO 8601 date-time such as 2026-01-31T12:00:00Z: {value[:40]!r}"
        ) from None


BodyDatetime = Annotated[datetime, BeforeValidator(_iso_in_body), AfterValidator(_as_utc)]
"""A datetime of a JSON request body: an ISO 8601 string, naive taken as UTC."""


class DomainModel(BaseModel):
    """Base of stored entities: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        validate_assignment=True,
        ser_json_timedelta="float",
        defer_build=True,
    )

    def to_document(self) -> dict[str, Any]:
        """Return the fields as stored in the document store (snake_case, native types)."""
        return self.model_dump(mode="python", by_alias=False)

    def to_api(self) -> dict[str, Any]:
        """Return the JSON-ready camelCase representation sent to API clients."""
        return self.model_dump(mode="json", by_alias=True)


class RequestModel(BaseModel):
    """Base of request bodies and query strings: camelCase in, unknown fields refused.

    Enum values are matched without regard to case (``gender=Female`` is ``female``). No
    string field may hold a NUL character (it truncates names in logs, headers and other
    systems' C strings). Strings are stripped of surrounding whitespace, but a field's
    ``maxLength`` counts what was sent: the OpenAPI document states that limit, and a
    client's own check of it must agree with ours.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=True,
        defer_build=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _enum_values_in_any_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        enums = _enum_fields(cls)
        if not enums:
            return data
        fixed = dict(data)
        for key, value in data.items():
            enum = enums.get(key)
            if enum is not None:
                fixed[key] = _canonical_enum_value(enum, value)
        return fixed

    @model_validator(mode="wrap")
    @classmethod
    def _max_length_as_sent(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        # pydantic strips before it checks a length: count the characters sent instead. (A
        # model validator, as a field validator may not touch a union's discriminator.)
        if isinstance(data, dict):
            limits = _string_max_lengths(cls)
            too_long = [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "string_too_long",
                        "String should have at most {max_length} characters",
                        {"max_length": limits[key]},
                    ),
                    loc=(key,),
                    input=value,
                )
                for key, value in data.items()
                if isinstance(value, str) and key in limits and len(value) > limits[key]
            ]
            if too_long:
                raise ValidationError.from_exception_data(cls.__name__, too_long)
        return handler(data)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


@functools.cache
def _enum_fields(model: type[BaseModel]) -> dict[str, type[StrEnum]]:
    """Return the StrEnum of each field (under its name and alias) that takes one."""
    found: dict[str, type[StrEnum]] = {}
    for name, info in model.model_fields.items():
        enum = _enum_in(info.annotation)
        if enum is not None:
            found[name] = enum
            if info.alias:
                found[info.alias] = enum
    return found


@functools.cache
def _string_max_lengths(model: type[BaseModel]) -> dict[str, int]:
    """Return the ``max_length`` of each string field that has one, by name and alias."""
    found: dict[str, int] = {}
    for name, info in model.model_fields.items():
        union = typing.get_origin(info.annotation) in (typing.Union, types.UnionType)
        kinds = typing.get_args(info.annotation) if union else (info.annotation,)
        limit = _max_len(info.metadata) if str in kinds else None
        for kind in kinds:  # Annotated[str, Field(max_length=...)] | None
            if typing.get_origin(kind) is Annotated and typing.get_args(kind)[0] is str:
                limit = _max_len(_flat_metadata(typing.get_args(kind)[1:]))
        if limit is not None:
            found[name] = limit
            if info.alias:
                found[info.alias] = limit
    return found


def _flat_metadata(items: tuple[Any, ...]) -> list[Any]:
    flat: list[Any] = []
    for item in items:
        flat.extend(getattr(item, "metadata", None) or [item])
    return flat


def _max_len(metadata: list[Any]) -> int | None:
    limits = [item.max_length for item in metadata if isinstance(item, annotated_types.MaxLen)]
    return min(limits) if limits else None


def _enum_in(annotation: Any) -> type[StrEnum] | None:
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return annotation
    for argument in typing.get_args(annotation):
        enum = _enum_in(argument)
        if enum is not None:
            return enum
    return None


def _canonical_enum_value(enum: type[StrEnum], value: Any) -> Any:
    if isinstance(value, list):
        return [_canonical_enum_value(enum, item) for item in value]
    if not isinstance(value, str):
        return value
    wanted = value.strip().casefold()
    return next((member.value for member in enum if member.value.casefold() == wanted), value)


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
    NaN or infinity, no integer beyond 64 bits (Firestore's), no NUL, no lone surrogate
    (``check_unicode_text`` names the key or string holding one).
    """
    items = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth > MAX_FREE_FORM_DEPTH:
                raise ValueError(f"nests deeper than {MAX_FREE_FORM_DEPTH} levels")
            items += len(node)
            if items > MAX_FREE_FORM_ITEMS:
                raise ValueError(f"holds more than {MAX_FREE_FORM_ITEMS} keys and elements")
            children = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in children:
                if isinstance(key, str) and "\x00" in key:
                    raise ValueError("keys must not contain NUL characters")
                pending.append((child, depth + 1))
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("numbers must be finite")
        elif isinstance(node, int) and not _INT64_MIN <= node <= _INT64_MAX:
            raise ValueError("integers must fit in 64 bits")
        elif isinstance(node, str) and "\x00" in node:
            raise ValueError("strings must not contain NUL characters")
        elif node is not None and not isinstance(node, str | int | float | bool):
            raise ValueError(f"holds a {type(node).__name__}, which is not JSON")
    check_unicode_text(value)
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    except (UnicodeEncodeError, ValueError) as exc:
        raise ValueError("is not valid UTF-8 JSON") from exc
    if size > MAX_FREE_FORM_BYTES:
        raise ValueError(f"is larger than {MAX_FREE_FORM_BYTES} bytes as JSON")
    return value


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


# Measures ------------------------------------------------------------------------------------

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
DEFAULT_SAMPLE_RATE = 22_050

SampleRate = Annotated[int, Field(ge=MIN_SAMPLE_RATE, le=MAX_SAMPLE_RATE)]
"""Audio sample rate in Hz, from telephone (8 kHz) to studio (192 kHz)."""

UnitScore = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""A score or fraction on the 0..1 scale (quality, progress, similarity)."""

Seconds = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
"""A non-negative, finite duration or offset in seconds."""

PositiveSeconds = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
"""A strictly positive, finite duration in seconds."""

NonNegativeCount = Annotated[int, Field(ge=0)]
"""A count or size that cannot go below zero (bytes, downloads, voices)."""

RequiredId = Annotated[str, Field(min_length=1)]
"""An identifier that must not be empty."""


# Language tags -------------------------------------------------------------------------------

_SUBTAG = re.compile(r"^[A-Za-z0-9]{1,8}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}$|^[A-Za-z]{5,8}$")
_MAX_TAG_LENGTH = 35


_CHINESE_REGIONS_OF_CANTONESE = frozenset({"HK", "MO"})


def equivalent_languages(tag: str) -> tuple[str, ...]:
    """Return the tags naming ``tag``'s language in another code, in order of preference.

    Chinese is tagged two ways: the macrolanguage ``zh`` (``zh-CN``, as apps and most
    engines write it) and its languages ``cmn`` (Mandarin) and ``yue`` (Cantonese), as
    Google's voices and eSpeak NG's are. ``zh`` is Mandarin, or Cantonese in Hong Kong and
    Macau (``zh-HK``); a bare ``zh`` is both, Mandarin first. ``cmn`` and ``yue`` with a
    region are ``zh`` with it. A tag keeps its shape: bare stays bare. Other languages
    have none. ``tag`` is in canonical form (``normalize_language_tag``).
    """
    primary, _, rest = tag.partition("-")
    subtags = rest.split("-") if rest else []
    if primary == "zh":
        if not subtags:
            return ("cmn", "yue")
        cantonese = any(s in _CHINESE_REGIONS_OF_CANTONESE for s in subtags)
        return ("-".join(["yue" if cantonese else "cmn", *subtags]),)
    if primary in ("cmn", "yue") and subtags:
        return ("-".join(["zh", *subtags]),)
    if primary == "cmn":
        return ("zh",)
    return ()


def normalize_language_tag(tag: str) -> str:
    """Return ``tag`` in canonical BCP-47 form, e.g. ``en_us`` -> ``en-US``.

    Underscores become hyphens; the language subtag is lower-cased, a four-letter script
    title-cased, a two-letter region upper-cased; subtags after a singleton (``x-...``,
    ``u-...``) are lower-cased.

    Raises:
        ValueError: ``tag`` is not a well-formed language tag.
    """
    cleaned = tag.strip().replace("_", "-")
    subtags = cleaned.split("-")
    if (
        len(cleaned) > _MAX_TAG_LENGTH
        or not _LANGUAGE.match(subtags[0])
        or not all(_SUBTAG.match(subtag) for subtag in subtags)
    ):
        raise ValueError(f"not a BCP-47 language tag: {tag!r}")
    normalised = [subtags[0].lower()]
    after_singleton = False
    for subtag in subtags[1:]:
        if after_singleton or len(subtag) == 1:
            after_singleton = True
            normalised.append(subtag.lower())
        elif len(subtag) == 4 and subtag.isalpha():
            normalised.append(subtag.title())
        elif len(subtag) == 2 and subtag.isalpha():
            normalised.append(subtag.upper())
        else:
            normalised.append(subtag.lower())
    return "-".join(normalised)


LanguageTag = Annotated[str, AfterValidator(normalize_language_tag)]
"""A BCP-47 language tag, normalised on input (``zh-tw`` -> ``zh-TW``)."""


# State machines ------------------------------------------------------------------------------

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
