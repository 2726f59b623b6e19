"""Request models count a string's length as the client sent it, before stripping.

The OpenAPI document states each field's ``maxLength``; a client (or a schema validator)
checking its request against it must get the answer the server gives, so a value padded
with whitespace beyond the limit is refused, and one within it is still stripped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from shared.errors import InvalidRequestError
from shared.http import parse_json
from shared.model import BodyDatetime, RequestModel


class Named(RequestModel):
    name: Annotated[str, Field(max_length=10)]
    nickname: Annotated[str, Field(max_length=5)] | None = None
    title: Annotated[str | None, Field(max_length=5)] = None
    note: str | None = None


@pytest.mark.parametrize("field", ["name", "nickname", "title"])
def test_whitespace_beyond_max_length_is_refused_at_its_field(field):
    body = {"name": "ok", field: "abc" + " " * 20}
    with pytest.raises(ValidationError) as caught:
        Named.model_validate(body)
    [error] = caught.value.errors()
    assert error["type"] == "string_too_long"
    assert error["loc"] == (field,)


def test_whitespace_within_max_length_is_stripped():
    named = Named.model_validate({"name": "  Ann  ", "nickname": " A ", "title": "Dr "})
    assert (named.name, named.nickname, named.title) == ("Ann", "A", "Dr")


def test_fields_without_a_limit_take_any_padding():
    assert Named.model_validate({"name": "a", "note": "x" + " " * 1000}).note == "x"


class Dated(RequestModel):
    at: BodyDatetime


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T14:00:00+02:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),  # naive: UTC
    ],
)
def test_a_body_datetime_is_an_iso_string_read_in_utc(sent, read):
    # Bodies are parsed strictly, as the platform's edge parses them.
    assert parse_json(Dated, json.dumps({"at": sent}).encode()).at == read


@pytest.mark.parametrize("sent", ["yesterday", "", 1769860800, "0001-01-01T00:00:00+01:00"])
def test_anything_else_is_a_validation_error_naming_the_field(sent):
    with pytest.raises(InvalidRequestError) as caught:
        parse_json(Dated, json.dumps({"at": sent}).encode())
    assert [detail["field"] for detail in caught.value.details] == ["at"]
