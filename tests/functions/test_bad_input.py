"""Bad input of every kind gets a clear 4xx in the platform's error body, never a 500.

The corpus below is what a hostile or careless client sends: bodies that are not JSON, not
objects, nested a thousand deep, with NaN, lone surrogates, NUL characters, coerced types
(``"yes"`` for a boolean), oversized; SSML built to amplify audio or to exhaust a
recursive parser; crafted page cursors holding maps, lists or integers past 64 bits;
unroutable paths (``%0A``); absurd query values. Each case names its function, request
and the status it must get (or any 4xx when several are right).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.functions import test_synthesis_fixtures as fx
from tests.functions.conftest import bearer

espeak = fx.espeak

DEEP = "[" * 1000 + "]" * 1000
NESTED_300: dict[str, Any] = {}
_node = NESTED_300
for _ in range(300):
    _node["k"] = {}
    _node = _node["k"]


def cursor(value: Any) -> str:
    payload = {"f": [["name", False], ["__id__", False]], "v": [value, "x"]}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def raw(body: str | bytes, content_type: str = "application/json") -> dict[str, Any]:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return {"data": data, "content_type": content_type}


def js(body: Any) -> dict[str, Any]:
    return raw(json.dumps(body))


JSON_BODY_ROUTES = [
    ("users", "POST", "/users"),
    ("users", "PATCH", "/users/me"),
    ("voice_models", "POST", "/voice-models"),
    ("voice_models", "POST", "/voice-models/compare"),
    ("voice_models", "POST", "/voice-models/select-best"),
    ("synthesis", "POST", "/synthesize"),
    ("synthesis", "POST", "/synthesize/dialogue"),
    ("synthesis", "POST", "/synthesize/stream"),
    ("openai_speech", "POST", "/v1/audio/speech"),
    ("samples", "POST", "/samples/upload-url"),
    ("samples", "PATCH", "/samples/s1"),
    ("samples", "POST", "/voice-models/train"),
]
MALFORMED_BODIES = {
    "truncated": raw("{"),
    "array": raw("[]"),
    "number": raw("5"),
    "string": raw('"text"'),
    "null": raw("null"),
    "deep": raw('{"x": ' + DEEP + "}"),
    "deep-top": raw(DEEP),
    "lone-surrogate": raw('{"text": "\\ud800"}'),
    "invalid-utf8": raw(b'{"text": "\xff\xfe"}'),
    "nan": raw('{"text": NaN}'),
    "plain-text": raw('{"text": "hi"}', "text/plain"),
    "unknown-fields": js({"surprise": 1, "text": "x"}),
}

CASES: list[tuple[str, str, str, dict[str, Any], int | None]] = []
for function, method, path in JSON_BODY_ROUTES:
    for label, body in MALFORMED_BODIES.items():
        expected = 415 if label == "plain-text" else None
        CASES.append((function, method, path, body, expected))
        del label

# A body POST /voice-models accepts (201): each case below spoils one field of it, so it is
# refused for that field and nothing else.
VALID_MODEL = {"provider": "espeak", "modelPath": "models/ann/m", "qualityScore": 0.9}

CASES += [
    # Coerced and unsafe values.
    (
        "voice_models",
        "POST",
        "/voice-models",
        js({**VALID_MODEL, "isActive": "yes"}),
        400,
    ),
    (
        "voice_models",
        "POST",
        "/voice-models",
        js({**VALID_MODEL, "qualityScore": "0.9"}),
        400,
    ),
    (
        "voice_models",
        "POST",
        "/voice-models",
        js({**VALID_MODEL, "name": "a\x00b"}),
        400,
    ),
    (
        "voice_models",
        "POST",
        "/voice-models",
        js({**VALID_MODEL, "metadata": NESTED_300}),
        400,
    ),
    (
        "voice_models",
        "POST",
        "/voice-models",
        raw(json.dumps(VALID_MODEL)[:-1] + ', "metadata": {"x": NaN}}'),
        400,
    ),
    (
        "voice_models",
        "POST",
        "/voice-models",
        js({**VALID_MODEL, "metadata": {"k": "x" * 20000}}),
        400,
    ),
    # Firestore holds 64-bit integers: a larger one is refused here, not by the store (500).
    (
        "voice_models",
        "POST",
        "/voice-models",
        raw(json.dumps(VALID_MODEL)[:-1] + ', "metadata": {"n": 1' + "0" * 19 + "}}"),
        400,
    ),
    (
        "voice_models",
        "POST",
        "/voice-models",
        raw(json.dumps(VALID_MODEL)[:-1] + ', "metadata": {"n": [-1' + "0" * 19 + "]}}"),
        400,
    ),
    (
        "voice_models",
        "POST",
        "/voice-models",
        js({**VALID_MODEL, "modelPath": "../../etc/passwd"}),
        400,
    ),
    ("users", "POST", "/users", js({"email": "not-an-email"}), 400),
    ("users", "POST", "/users", js({"email": "a@example.com", "firstName": "x\x00"}), 400),
    ("users", "PATCH", "/users/me", js({"firstName": 5}), 400),
    # Synthesis: limits, SSML bombs, absurd options.
    ("synthesis", "POST", "/synthesize", js({"text": "", "voice": "espeak:en-US"}), 400),
    # Control characters alone say nothing (eSpeak renders no audio for them): not a 500.
    ("synthesis", "POST", "/synthesize", js({"text": " \x03\x1b", "voice": "espeak:en-US"}), 400),
    (
        "synthesis",
        "POST",
        "/synthesize/stream",
        js({"text": "\x03\x03", "voice": "espeak:en-US"}),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"text": "\x07" * 2500, "voice": "espeak:en-US"}),  # a job's length
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize/dialogue",
        js({"turns": [{"speaker": "A", "voice": "espeak:en-US", "text": "\x03\x03"}]}),
        400,
    ),
    (
        "openai_speech",
        "POST",
        "/v1/audio/speech",
        js({"model": "tts-1", "voice": "espeak:en-US", "input": "\x03\x03"}),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"text": "x", "ssml": "<speak/>", "voice": "espeak:en-US"}),
        400,
    ),
    ("synthesis", "POST", "/synthesize", js({"text": "x" * 100_000, "voice": "espeak:en-US"}), 413),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js(
            {
                "ssml": "<speak>" + "<s>" * 3000 + "x" + "</s>" * 3000 + "</speak>",
                "voice": "espeak:en-US",
            }
        ),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js(
            {
                "ssml": "<speak>" + "Hi <break time='3600s'/>" * 20 + "</speak>",
                "voice": "espeak:en-US",
            }
        ),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"ssml": "<!DOCTYPE x [<!ENTITY a 'b'>]><speak>&a;</speak>", "voice": "espeak:en-US"}),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"ssml": "<speak><audio src='http://x'/></speak>", "voice": "espeak:en-US"}),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"text": "x", "voice": "espeak:en-US", "speed": 1e308}),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"text": "x", "voice": "espeak:en-US", "speed": "fast"}),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"text": "x", "voice": "espeak:en-US", "sampleRate": 1}),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"text": "x", "voice": "espeak:en-US", "outputFormat": "exe"}),
        415,
    ),
    ("synthesis", "POST", "/synthesize", js({"text": "x", "voice": "v" * 300}), 400),
    ("files", "PATCH", "/files/f1", js({"isPublic": "yes"}), 400),
    ("files", "PATCH", "/files/f1", js({"isPublic": 1}), 400),
    # maxLength counts what was sent, whitespace included (as the OpenAPI document states it).
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"text": "x", "voice": "espeak:en-US" + " " * 300}),
        400,
    ),
    ("users", "PATCH", "/users/me", js({"firstName": "Ann" + " " * 200}), 400),
    # Lone surrogates and NaN where the text and numbers go (not only in unknown fields).
    (
        "synthesis",
        "POST",
        "/synthesize",
        raw('{"text": "Hi \\ud800", "voice": "espeak:en-US"}'),
        400,
    ),
    (
        "synthesis",
        "POST",
        "/synthesize",
        js({"text": "x", "voice": "espeak:en-US", "includeTimestamps": "yes"}),
        400,
    ),
    ("synthesis", "POST", "/synthesize/dialogue", js({"turns": []}), 400),
    (
        "synthesis",
        "POST",
        "/synthesize/dialogue",
        js({"turns": [{"speaker": "a", "voice": "espeak:en-US", "text": "x"}] * 500}),
        400,
    ),
    ("synthesis", "GET", "/synthesis/jobs/" + "j" * 5000, {}, 404),
    (
        "openai_speech",
        "POST",
        "/v1/audio/speech",
        js({"model": "tts-1", "voice": "alloy", "input": ""}),
        None,
    ),
    (
        "openai_speech",
        "POST",
        "/v1/audio/speech",
        js({"model": "tts-1", "voice": "alloy", "input": "x", "speed": 100}),
        None,
    ),
    (
        "openai_speech",
        "POST",
        "/v1/audio/speech",
        js({"model": "tts-1", "voice": "alloy", "input": "x", "response_format": "exe"}),
        None,
    ),
    (
        "openai_speech",
        "POST",
        "/v1/audio/speech",
        raw('{"model": "tts-1", "voice": "alloy", "input": "Hi \\ud800"}'),
        400,
    ),
    (
        "openai_speech",
        "POST",
        "/v1/audio/speech",
        raw('{"model": "tts-1", "voice": "alloy", "input": "Hi", "speed": NaN}'),
        400,
    ),
    # Crafted cursors and absurd query values on every paged list.
    ("voices", "GET", "/voices?cursor=" + cursor({"a": 1}), {}, 400),
    ("voices", "GET", "/voices?cursor=" + cursor([1, 2]), {}, 400),
    ("voices", "GET", "/voices?cursor=" + cursor(2**70), {}, 400),
    ("voices", "GET", "/voices?cursor=%%%", {}, 400),
    ("voices", "GET", "/voices?limit=-1", {}, 400),
    ("voices", "GET", "/voices?limit=" + "9" * 40, {}, 400),
    ("voices", "GET", "/voices?gender=robot", {}, 400),
    ("voice_models", "GET", "/voice-models/user/u?cursor=" + cursor({"a": 1}), {}, None),
    (
        "voice_models",
        "GET",
        "/voice-models/user/u?cursor="
        + base64.urlsafe_b64encode(f"offset:{2**70}".encode()).decode(),
        {},
        None,
    ),
    ("voice_models", "GET", "/voice-models/user/u?limit=abc", {}, 400),
    ("voice_models", "GET", "/voice-models/m1/access-log?cursor=" + cursor([1]), {}, None),
    ("sync_voices", "GET", "/voices/sync/jobs?cursor=" + cursor({"a": 1}), {}, None),
    # Samples: uploads that are not multipart audio, crafted cursors, absurd queries.
    ("samples", "POST", "/samples", js({"file": "RIFF"}), 415),
    ("samples", "POST", "/samples", raw(b"--x\r\n", "multipart/form-data; boundary=x"), 400),
    ("samples", "POST", "/samples", raw(b"RIFF" * 10, "multipart/form-data"), 400),
    ("samples", "GET", "/samples?cursor=" + cursor({"a": 1}), {}, 400),
    ("samples", "GET", "/samples?cursor=" + cursor(2**70), {}, 400),
    ("samples", "GET", "/samples?limit=" + "9" * 40, {}, 400),
    ("samples", "GET", "/samples/" + "s" * 5000, {}, None),
    ("samples", "GET", "/samples/s1/similar?limit=-1", {}, 400),
    ("samples", "POST", "/voice-models/train", js({"sampleIds": ["a"] * 500}), 400),
    ("samples", "POST", "/voice-models/train", js({"sampleIds": "a"}), 400),
    ("samples", "POST", "/voice-models/train", js({"sampleIds": ["a\x00"]}), 400),
    # Query dates are ISO 8601 only (pydantic alone reads "0.5" as a Unix time).
    ("precall", "GET", "/precall/analytics?to=0.5", {}, 400),
    ("precall", "GET", "/precall/analytics?from=1700000000", {}, 400),
    # Unroutable paths, on every function.
    ("users", "GET", "/users/%0A", {}, 404),
    ("voice_models", "GET", "/voice-models/%0A/x", {}, 404),
    ("synthesis", "GET", "/synthesis/jobs/%0A", {}, 404),
    ("files", "GET", "/files/%0A/info", {}, 404),
    ("voices", "GET", "/voices/%0A", {}, 404),
    ("openai_speech", "GET", "/v1/audio/%0A", {}, None),
    ("tasks", "GET", "/tasks/dead-letters/%0A", {}, None),
    ("samples", "GET", "/samples/%0A/similar", {}, 404),
]


def test_the_voice_model_the_bad_cases_spoil_is_accepted(function_client, token):
    client = function_client("voice_models")
    response = client.post("/voice-models", json=VALID_MODEL, headers=bearer(token("ann")))
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize(
    ("function", "method", "path", "request_args", "expected"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2][:40]}-{i}" for i, c in enumerate(CASES)],
)
def test_bad_input_is_a_clear_4xx(
    function_client, token, espeak, function, method, path, request_args, expected
):
    client = function_client(function)
    headers = bearer(token("ann", admin=function in ("tasks", "sync_voices")))
    response = client.open(path, method=method, headers=headers, **request_args)
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data()[:300])
    if expected is not None:
        assert response.status_code == expected, response.get_json()
    body = response.get_json()
    assert body is not None, response.get_data()[:200]
    assert "error" in body
    if not path.startswith("/v1/"):
        assert {"error", "code", "timestamp", "requestId"} <= set(body)
        assert response.headers["X-Request-Id"] == body["requestId"]
