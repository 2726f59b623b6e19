"""Bad input deep in a free-form object is refused naming where it is, in the error body.

Metadata is any small JSON object; a NUL character anywhere in it (a key or a string, at
any depth), or an integer Firestore cannot hold (beyond 64 bits), is refused with a 400
whose detail names the field and, in its message, the path inside it, a NUL shown by its
JSON escape.
"""

from __future__ import annotations

import json

import pytest

from tests.functions.conftest import bearer

VALID_MODEL = {"provider": "espeak", "modelPath": "models/ann/m", "qualityScore": 0.9}


def refused_metadata(function_client, token, metadata: str) -> tuple[dict, dict]:
    """POST a voice model whose ``metadata`` is the JSON text given; return the refusal
    (checked to be the platform's 400 body) and its one detail, about ``metadata``."""
    body = json.dumps(VALID_MODEL)[:-1] + ', "metadata": ' + metadata + "}"
    response = function_client("voice_models").post(
        "/voice-models",
        data=body,
        content_type="application/json",
        headers=bearer(token("ann")),
    )
    assert response.status_code == 400, response.get_data()[:300]
    refused = json.loads(response.get_data().decode("utf-8"))
    assert {"error", "code", "timestamp", "requestId"} <= set(refused), refused
    assert refused["code"] == "VALIDATION_ERROR"
    assert refused["requestId"] == response.headers["X-Request-Id"]
    [detail] = refused["details"]
    assert detail["field"] == "metadata"
    return refused, detail


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ('{"device": {"na\\u0000me": "x"}}', "key device.na\\u0000me must not contain NUL"),
        ('{"tags": ["ok", ["x", "a\\u0000"]]}', "value at tags.1.1 must not contain NUL"),
    ],
    ids=["key", "value"],
)
def test_a_nul_in_metadata_is_named_by_its_path(function_client, token, metadata, words):
    refused, detail = refused_metadata(function_client, token, metadata)
    assert words in detail["message"], detail
    assert "\x00" not in json.dumps(refused, ensure_ascii=False)


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ('{"device": {"serial": 18446744073709551616}}', "value at device.serial must be an"),
        ('{"tags": ["ok", [1, -9223372036854775809]]}', "value at tags.1.1 must be an integer"),
    ],
    ids=["beyond-64-bits", "below-64-bits-in-lists"],
)
def test_an_integer_beyond_64_bits_in_metadata_is_named_by_its_path(
    function_client, token, metadata, words
):
    _, detail = refused_metadata(function_client, token, metadata)
    assert words in detail["message"], detail
