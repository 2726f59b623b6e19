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
]


@pytest.mark.parametrize("path", PATHS, ids=[p.split("/")[1] + str(i) for i, p in enumerate(PATHS)])
def test_a_404_repeats_only_the_beginning_of_a_very_long_id(platform, token, path):
    gateway = Client(Gateway(get_container()))
    method = "POST" if path.endswith("/run") else "GET"
    response = gateway.open(path, method=method, headers=bearer(token("ann", admin=True)))
    assert response.status_code == 404, (path[:80], response.status_code)
    message = response.get_json()["error"]
    assert "z" * 16 in message or "9" * 16 in message or "no-such-route" in message, message
    assert len(message) < 2 * ECHO_LIMIT + 200, message[:200]
