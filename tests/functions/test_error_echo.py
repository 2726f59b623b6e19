"""An error message repeats at most the beginning of a value the caller sent."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from local.gateway import Gateway
from shared.bootstrap import get_container
from shared.errors import ECHO_LIMIT, echoed
from tests.functions.conftest import bearer

LONG = "z" * 3000
PATHS = [
    f"/voices/espeak:{LONG}",
    f"/voices/sync/jobs/{LONG}",
    f"/lexicons/{LONG}",
    f"/lexicons/{LONG}/versions/{'9' * 3000}",
    f"/synthesis/jobs/{LONG}",
    f"/synthesis/jobs/{LONG}/audio",
    f"/scheduler/jobs/{LONG}/run",
    f"/console/{LONG}.js",
    f"/no-such-route/{LONG}",
    f"/voice-models/{LONG}",
    f"/voice-models/{LONG}/activate",
    f"/voice-models/{LONG}/share/me",
]
METHODS = {"activate": "POST", "run": "POST", "me": "DELETE"}


@pytest.mark.parametrize("path", PATHS, ids=[p.split("/")[1] + str(i) for i, p in enumerate(PATHS)])
def test_a_404_repeats_only_the_beginning_of_a_very_long_id(platform, token, path):
    gateway = Client(Gateway(get_container()))
    method = METHODS.get(path.rsplit("/", 1)[-1], "GET")
    response = gateway.open(path, method=method, headers=bearer(token("ann", admin=True)))
    assert response.status_code == 404, (path[:80], response.status_code)
    message = response.get_json()["error"]
    assert "z" * (ECHO_LIMIT + 1) not in message, message[:200]
    assert len(message) < 2 * ECHO_LIMIT + 200, message[:200]


def test_a_training_or_restore_naming_a_very_long_id_repeats_its_beginning(platform, token):
    gateway = Client(Gateway(get_container()))
    headers = bearer(token("ann"))
    bodies = {
        "/voice-models/train": {"sampleIds": [LONG[:255]], "provider": "espeak"},
        "/voice-models/user/ann/restore": {"backupPath": f"gs://voice-models/backups/ann/{LONG}"},
    }
    for path, body in bodies.items():
        response = gateway.post(path, json=body, headers=headers)
        assert response.status_code in (400, 404), (path, response.get_json())
        message = response.get_json()["error"]
        assert "z" * (ECHO_LIMIT + 1) not in message, message[:200]


def refused_field(response) -> dict:
    """Return the platform's 400 VALIDATION_ERROR body of ``response``, read as UTF-8 JSON."""
    assert response.status_code == 400, response.get_data()[:200]
    body = json.loads(response.get_data().decode("utf-8"))
    assert set(body) >= {"error", "code", "timestamp", "requestId"}, body
    assert body["code"] == "VALIDATION_ERROR"
    assert body["requestId"] == response.headers["X-Request-Id"]
    return body


def test_an_unknown_very_long_field_is_named_by_its_beginning(function_client, token):
    headers = bearer(token("ann"))
    sent = {"text": "Hello.", "voice": "espeak:en-US", LONG: 1}
    body = refused_field(
        function_client("synthesis").post("/synthesize", json=sent, headers=headers)
    )
    assert [detail["field"] for detail in body["details"]] == [echoed(LONG)]
    assert "Extra inputs" in body["details"][0]["message"]

    # A query parameter's name is the caller's own text too.
    body = refused_field(function_client("files").get(f"/files?{LONG}=1", headers=headers))
    assert [detail["field"] for detail in body["details"]] == [echoed(LONG)]


def test_a_body_with_a_lone_surrogate_key_is_refused_readably(function_client, token):
    # "\ud800" is a valid JSON escape but no Unicode character: the JSON parser refuses the
    # body before any field is read, and the answer stays valid UTF-8 JSON.
    response = function_client("synthesis").post(
        "/synthesize",
        data='{"text": "Hello.", "voice": "espeak:en-US", "\\ud800": 1}',
        content_type="application/json",
        headers=bearer(token("ann")),
    )
    body = refused_field(response)
    assert body["error"] == "Request body is not valid JSON"
    assert "\ufffd" not in json.dumps(body, ensure_ascii=False)
