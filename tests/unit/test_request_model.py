"""Request models count a string's length as the client sent it, before stripping.

The OpenAPI document states each field's ``maxLength``; a client (or a schema validator)
checking its request against it must get the answer the server gives, so a value padded
with whitespace beyond the limit is refused, and one within it is still stripped.
"""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from shared.model import RequestModel


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
