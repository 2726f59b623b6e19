"""The gateway's dev token route (``POST /_dev/token``): tokens for this machine only."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from functions.console import DEV_TOKEN_PATH
from local.dev_tokens import DevTokenRoute, is_loopback
from shared.bootstrap import get_container, reset_container

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def route(platform):
    return Client(DevTokenRoute(get_container()))


def mint(route, body, *, headers=None, environ=LOCAL, host="127.0.0.1:8080"):
    return route.post(
        DEV_TOKEN_PATH,
        json=body,
        headers=headers or {},
        environ_base=environ,
        base_url=f"http://{host}",
    )


def test_a_minted_token_is_one_the_platform_accepts(route):
    response = mint(route, {"userId": "ann", "admin": True, "accountId": "acme"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["userId"] == "ann"
    assert body["admin"] is True
    principal = get_container().verifier.verify(body["token"])
    assert (principal.user_id, principal.is_admin, principal.account_id) == ("ann", True, "acme")


def test_the_token_lives_as_long_as_asked(route):
    import jwt

    token = mint(route, {"userId": "bo", "ttlSeconds": 120}).get_json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    assert "admin" not in claims


@pytest.mark.parametrize(
    ("environ", "host", "headers"),
    [
        ({"REMOTE_ADDR": "192.0.2.7"}, "127.0.0.1:8080", {}),  # another machine
        (LOCAL, "evil.example:8080", {}),  # DNS rebinding: a foreign name for this address
        (LOCAL, "127.0.0.1:8080", {"Origin": "https://evil.example"}),  # a foreign page
        (LOCAL, "127.0.0.1:8080", {"Origin": "null"}),
    ],
)
def test_only_this_machine_and_its_pages_may_mint(route, environ, host, headers):
    response = mint(route, {"userId": "eve"}, headers=headers, environ=environ, host=host)
    assert response.status_code == 403
    assert response.get_json()["code"] == "ACCESS_DENIED"
    assert "token" not in response.get_json()


def test_pages_of_this_machine_may_mint(route):
    response = mint(route, {"userId": "cy"}, headers={"Origin": "http://localhost:8080"})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "userId"),
        ({"userId": ""}, "userId"),
        ({"userId": "a/b"}, "userId"),
        ({"userId": "ann", "admin": "yes"}, "admin"),
        ({"userId": "ann", "ttlSeconds": 10}, "ttlSeconds"),
        ({"userId": "ann", "role": "root"}, "role"),
    ],
)
def test_bad_requests_get_a_clear_400(route, body, field):
    response = mint(route, body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["code"] == "VALIDATION_ERROR"
    assert {"error", "code", "timestamp", "requestId"} <= error.keys()
    assert any(field in (detail["field"] or "") for detail in error["details"])


def test_only_a_json_post_mints(route):
    assert route.get(DEV_TOKEN_PATH, environ_base=LOCAL).status_code == 405
    form = route.post(DEV_TOKEN_PATH, data={"userId": "ann"}, environ_base=LOCAL)
    assert form.status_code == 415  # a cross-site form cannot send JSON without a preflight
    text = route.post(DEV_TOKEN_PATH, data="{", content_type="application/json", environ_base=LOCAL)
    assert text.status_code == 400


def test_there_are_no_dev_tokens_outside_the_dev_auth_mode(platform, monkeypatch):
    monkeypatch.setenv("VOICE_AUTH_MODE", "firebase")
    reset_container()
    route = Client(DevTokenRoute(get_container()))
    response = mint(route, {"userId": "ann"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.9.9.9", True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_loopback_names(host, expected):
    assert is_loopback(host) is expected
