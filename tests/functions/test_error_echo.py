"""An error message repeats at most the beginning of a value the caller sent."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from local.gateway import Gateway
from shared.bootstrap import get_container
from shared.errors import ECHO_LIMIT
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
