"""A free-form object's refusal names where in it the refused key or string is.

Metadata and the like are checked whole, after pydantic has named the field; the message
then names the path inside it (``a.0.b``) as ``shared.errors.field_path`` names a field, so
a client can find the NUL in a large object, and the message itself holds none.
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
