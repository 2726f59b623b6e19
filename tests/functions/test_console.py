"""The ``console`` function: the developer console's files, headers and sign-in config."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest

from functions.console import ASSETS

MODULE_IMPORT = re.compile(r"""(?:import|export)\s[^;]*?from\s+["'](\.{1,2}/[^"']+)["']""", re.S)
ADD_MODULE = re.compile(r"""addModule\(\s*["'](/console/[^"']+)["']""")


@pytest.fixture
def console(function_client):
    return function_client("console")


def test_the_page_is_served_with_a_strict_policy(console):
    response = console.get("/console")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert b'<script type="module" src="/console/js/main.js">' in response.data
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"  # the API and the session WebSocket, same origin
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "microphone=(self)" in response.headers["Permissions-Policy"]
    # No inline script or style anywhere: the policy would block them.
    assert b"<script>" not in response.data
    assert b"<style" not in response.data
    assert b" style=" not in response.data


def test_every_module_the_page_loads_is_served_as_javascript(console):
    # Walk the import graph from main.js: a broken import path fails here, not in a browser.
    pending, seen = ["js/main.js"], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        response = console.get(f"/console/{name}")
        assert response.status_code == 200, name
        assert response.content_type == "text/javascript; charset=utf-8", name
        assert "Content-Security-Policy" in response.headers
        text = response.get_data(as_text=True)
        folder = posixpath.dirname(name)
        pending.extend(
            posixpath.normpath(posixpath.join(folder, relative))
            for relative in MODULE_IMPORT.findall(text)
        )
        pending.extend(path.removeprefix("/console/") for path in ADD_MODULE.findall(text))
    assert {"js/pages/live.js", "js/audio/capture-worklet.js", "js/highlight.js"} <= seen
    assert console.get("/console/console.css").content_type == "text/css; charset=utf-8"


def test_unchanged_files_answer_304(console):
    first = console.get("/console/js/main.js")
    again = console.get("/console/js/main.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.data == b""
    changed = console.get("/console/js/main.js", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/console/nope.js",
        "/console/js/../../main.py",
        "/console/%2e%2e/main.py",
        "/console/..%2fmain.py",
        "/console/js/main.py",
    ],
)
def test_only_console_files_are_served(console, path):
    response = console.get(path)
    assert response.status_code == 404
    assert response.get_json()["code"] == "NOT_FOUND"


def test_files_of_other_kinds_under_console_stay_private():
    # Only web files are listed: a stray note or script beside them is never served.
    assert all(Path(name).suffix in {".html", ".js", ".css", ".svg"} for name in _served())
    assert "index.html" in _served()


def _served() -> list[str]:
    from functions.console import _assets

    return list(_assets())


def test_dev_config_offers_dev_tokens_and_same_origin_sessions(console):
    config = console.get("/console/config.json").get_json()
    assert config == {
        "auth": {"mode": "dev", "devTokenPath": "/_dev/token", "firebase": None},
        "sessionsPath": "/v1/sessions",
        "environment": "test",
    }


def test_firebase_config_comes_from_settings_and_opens_only_its_endpoints(
    function_client, monkeypatch
):
    monkeypatch.setenv("VOICE_AUTH_MODE", "firebase")
    monkeypatch.setenv("VOICE_PROJECT", "voice-prod-1")
    monkeypatch.setenv("VOICE_CONSOLE_FIREBASE_API_KEY", "AIzaSyExampleWebKey")
    from shared.bootstrap import reset_container

    reset_container()
    console = function_client("console")
    config = console.get("/console/config.json").get_json()
    assert config["auth"] == {
        "mode": "firebase",
        "devTokenPath": None,
        "firebase": {
            "apiKey": "AIzaSyExampleWebKey",
            "authDomain": "voice-prod-1.firebaseapp.com",
            "projectId": "voice-prod-1",
        },
    }
    policy = console.get("/console").headers["Content-Security-Policy"]
    connect = next(d for d in policy.split("; ") if d.startswith("connect-src"))
    assert connect == (
        "connect-src 'self' https://identitytoolkit.googleapis.com "
        "https://securetoken.googleapis.com"
    )


def test_no_secret_reaches_the_page(function_client, monkeypatch):
    secrets = {
        "VOICE_DEV_AUTH_SECRET": "dev-secret-" + "s" * 40,
        "VOICE_OPENAI_API_KEY": "sk-openai-secret-value",
        "VOICE_ELEVENLABS_API_KEY": "eleven-secret-value",
        "VOICE_CALLBACK_SIGNING_SECRET": "callback-secret-value",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    from shared.bootstrap import reset_container

    reset_container()
    console = function_client("console")
    bodies = [console.get("/console").data, console.get("/console/config.json").data]
    bodies += [console.get(f"/console/{name}").data for name in _served()]
    for body in bodies:
        for value in secrets.values():
            assert value.encode() not in body


def test_the_files_ship_in_the_function_source_archive():
    ignored = (ASSETS.parent / ".gcloudignore").read_text().split()
    assert "/console" not in ignored
    assert "console" not in ignored
