"""Request bodies and query strings: camelCase in, unknown fields refused.

A request model forbids unknown fields, so a typo in a client's body or query is a 400
rather than silently ignored; it accepts camelCase or snake_case, matches enum values
without regard to case, refuses a NUL in any string, and counts a string's ``maxLength``
as the client sent it (before stripping), as the OpenAPI document states it.
"""

from __future__ import annotations

import functools
import types
import typing
from enum import StrEnum
from typing import Annotated, Any

import annotated_types
from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError


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
