"""A free-form object's refusal names where in it the refused key or value is.

Metadata and the like are checked whole, after pydantic has named the field; the message
then names the path inside it (``a.0.b``) as ``shared.errors.field_path`` names a field, so
a client can find the NUL, the NaN or the huge integer in a large object, and the message
itself holds no NUL.
"""

from __future__ import annotations

import pytest

from shared.model import check_free_form


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"\x00": 1}, "key \\u0000 must not contain NUL characters"),
        ({"device": {"na\x00me": "x"}}, "key device.na\\u0000me must not contain NUL characters"),
        ({"tags": ["ok", {"k\x00": 1}]}, "key tags.1.k\\u0000 must not contain NUL characters"),
        ({"note": "a\x00b"}, "value at note must not contain NUL characters"),
        ({"tags": ["ok", ["x", "\x00"]]}, "value at tags.1.1 must not contain NUL characters"),
        ({"k" * 100: {"x": "\x00"}}, "value at " + "k" * 64 + "\u2026.x must not contain NUL"),
    ],
    ids=["top-key", "nested-key", "key-in-list", "value", "value-in-lists", "long-key-on-path"],
)
def test_a_nul_is_named_by_its_path(value, words):
    with pytest.raises(ValueError, match="NUL") as refused:
        check_free_form(value)
    message = str(refused.value)
    assert words in message
    assert "\x00" not in message


def test_a_key_holding_a_nul_and_a_lone_surrogate_is_named_in_unicode_text():
    with pytest.raises(ValueError, match="NUL") as refused:
        check_free_form({"a": {"\ud800\x00": 1}})
    assert "key a.\\ud800\\u0000 must not contain NUL characters" in str(refused.value)
    str(refused.value).encode("utf-8")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"gain": float("nan")}, "value at gain must be a finite number"),
        ({"tags": ["ok", [1, float("-inf")]]}, "value at tags.1.1 must be a finite number"),
        ({"device": {"serial": 2**64}}, "value at device.serial must be an integer that fits"),
        ({"a": [{"b": -(2**63) - 1}]}, "value at a.0.b must be an integer that fits in 64 bits"),
        ({"device": {"ids": {1, 2}}}, "value at device.ids is a set, not JSON"),
        ({"k" * 100: [b"x"]}, "value at " + "k" * 64 + "\u2026.0 is a bytes, not JSON"),
        ({"a": {"b": [[[[[[[1]]]]]]]}}, "value at a.b.0.0.0.0.0.0 nests deeper than 8 levels"),
    ],
    ids=["nan", "infinity-in-lists", "huge-int", "tiny-int-in-list", "set", "bytes", "deep"],
)
def test_every_refused_value_is_named_by_its_path(value, words):
    with pytest.raises(ValueError, match=r"^value at ") as refused:
        check_free_form(value)
    assert words in str(refused.value)


def test_bounds_values_at_their_limits_are_kept():
    value = {"n": [2**63 - 1, -(2**63), 1.5e308], "deep": [[[[[[[1]]]]]]]}
    assert check_free_form(value) is value
