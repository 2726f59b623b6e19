"""Whatever a caller puts in ``Authorization``, a function answers 401 with the seed's error
body, or serves the one user whose valid token it is: never a 500, never another user.

Header values are generated (any Latin-1 text, as WSGI carries headers) and valid dev tokens
are changed character by character, then sent to the voices function as the runtime builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.auth import REJECTION_MESSAGE

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
LATIN_1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")


def check_refused(response: Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["code"] == "UNAUTHENTICATED"
    assert {"error", "code", "timestamp", "requestId"} <= set(body)


@pytest.fixture
def voices(function_client: Callable[[str], FlaskClient]) -> FlaskClient:
    return function_client("voices")


@SETTINGS
@given(header=st.text(LATIN_1, max_size=300))
def test_any_authorization_header_is_a_401(voices: FlaskClient, header: str) -> None:
    check_refused(voices.get("/voices", headers={"Authorization": header}))


@SETTINGS
@given(data=st.data())
def test_a_changed_token_is_refused_or_is_the_same_users(
    voices: FlaskClient, token: Callable[..., str], data: st.DataObject
) -> None:
    valid = token("token-owner")
    characters = list(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(characters) - 1))
        characters[at] = data.draw(st.sampled_from("AZaz09-_.=+/ ~é"))
    changed = "".join(characters)

    response = voices.get("/voices", headers={"Authorization": f"Bearer {changed}"})

    if changed == valid:
        assert response.status_code == 200
    else:
        check_refused(response)
        if " " not in changed:  # one token, not a malformed header: the generic rejection
            assert response.get_json()["error"] == REJECTION_MESSAGE
