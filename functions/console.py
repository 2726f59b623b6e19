"""The ``console`` function: the developer console's static files, under ``/console``.

The console is a page of plain ES modules (``console/`` at the repository root, shipped in
the functions' source archive) that calls the API from the browser with the user's bearer
token, at the same origin: the local gateway mounts this function like any other, and in
production the front door routes ``/console`` to it. The files themselves are public (a
browser cannot send a bearer token with a navigation) and hold no secret; every API call
the page makes is authenticated. ``/console/config.json`` tells the page how to sign in:
dev tokens from the gateway's dev token route locally, or Firebase (the project's Web API
key, which every app build ships, when ``VOICE_CONSOLE_FIREBASE_API_KEY`` is set).

Every file goes out with a strict Content Security Policy: scripts, styles and workers from
this origin only, no inline script or style, API calls and the session WebSocket to this
origin only (plus Google's sign-in endpoints when Firebase sign-in is configured), and no
framing. Files are revalidated on every load (``ETag``; 304 when unchanged).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import functions_framework

from shared.config import Settings
from shared.errors import NotFoundError, echoed
from shared.http import Api, RequestContext
from shared.model import DomainModel

api = Api("console")

ASSETS = Path(__file__).resolve().parent.parent / "console"
DEV_TOKEN_PATH = "/_dev/token"  # noqa: S105 - a URL path, not a secret
"""Where the local gateway mints dev tokens for the console (``local/dev_tokens.py``)."""
SESSIONS_PATH = "/v1/sessions"
FIREBASE_ENDPOINTS = (
    "https://identitytoolkit.googleapis.com",
    "https://securetoken.googleapis.com",
)
# Only these kinds of file are served; anything else under console/ stays private.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
FILE_RESPONSES: dict[int, str | dict[str, Any]] = {
    200: {"description": "The file", "content": {"text/html": {"schema": {"type": "string"}}}},
    304: "Unchanged since the ETag given in If-None-Match",
}


@dataclass(frozen=True)
class Asset:
    """One file of the console, read once per instance."""

    data: bytes
    content_type: str
    etag: str


class FirebaseWebConfig(DomainModel):
    """What the Firebase sign-in needs; none of it is secret (every web build ships it)."""

    api_key: str
    auth_domain: str
    project_id: str


class ConsoleAuth(DomainModel):
    """How the console signs in: ``dev`` tokens minted locally, or Firebase ID tokens."""

    mode: str
    dev_token_path: str | None = None
    firebase: FirebaseWebConfig | None = None


class ConsoleConfig(DomainModel):
    """Answer of ``GET /console/config.json``: sign-in and where the sessions are."""

    auth: ConsoleAuth
    sessions_path: str
    environment: str


@functools.cache
def _assets(root: Path = ASSETS) -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if not path.is_file() or content_type is None:
            continue
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest()[:32]
        found[path.relative_to(root).as_posix()] = Asset(data, content_type, etag)
    return found


def firebase_config(settings: Settings) -> FirebaseWebConfig | None:
    """Return the Firebase sign-in config, when the console may sign in with Firebase."""
    if settings.auth_mode != "firebase" or not settings.console_firebase_api_key:
        return None
    return FirebaseWebConfig(
        api_key=settings.console_firebase_api_key,
        auth_domain=settings.console_firebase_auth_domain or f"{settings.project}.firebaseapp.com",
        project_id=settings.project,
    )


def content_security_policy(settings: Settings) -> str:
    """Return the policy every console file is served with."""
    # 'self' covers ws:/wss: to this origin too (CSP Level 3), so the session WebSocket
    # needs no host named here.
    connect = ["'self'"]
    if firebase_config(settings) is not None:
        connect.extend(FIREBASE_ENDPOINTS)
    directives = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "media-src": "'self' blob:",
        "connect-src": " ".join(connect),
        "worker-src": "'self'",
        "manifest-src": "'self'",
        "font-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
        "object-src": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(settings: Settings) -> dict[str, str]:
    """Return the headers every console file carries."""
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "microphone=(self), camera=(), geolocation=(), payment=()",
    }


def _file_response(ctx: RequestContext, name: str) -> flask.Response:
    asset = _assets().get(name)
    if asset is None:
        raise NotFoundError(f"No console file {echoed(name)!r}")
    etag = f'"{asset.etag}"'
    if etag in [tag.strip() for tag in ctx.request.headers.get("If-None-Match", "").split(",")]:
        response = flask.Response(status=304)
    else:
        response = flask.Response(asset.data, content_type=asset.content_type)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    response.headers.update(security_headers(ctx.container.settings))
    return response


@api.route("/console", methods=["GET"], access="public", responses=FILE_RESPONSES)
def console_page(ctx: RequestContext) -> flask.Response:
    """The developer console (a web page; it signs in with a bearer token)."""
    return _file_response(ctx, "index.html")


@api.route("/console/config.json", methods=["GET"], access="public", response=ConsoleConfig)
def console_config(ctx: RequestContext) -> ConsoleConfig:
    """How the console signs in, and where the session WebSocket is (no secrets)."""
    settings = ctx.container.settings
    dev = settings.auth_mode == "dev"
    return ConsoleConfig(
        auth=ConsoleAuth(
            mode=settings.auth_mode,
            dev_token_path=DEV_TOKEN_PATH if dev else None,
            firebase=firebase_config(settings),
        ),
        sessions_path=SESSIONS_PATH,
        environment=settings.environment,
    )


@api.route(
    "/console/<path:name>",
    methods=["GET"],
    access="public",
    responses={
        **FILE_RESPONSES,
        200: {
            "description": "The file (HTML, JavaScript module, CSS or image)",
            "content": {"text/javascript": {"schema": {"type": "string"}}},
        },
    },
)
def console_file(ctx: RequestContext, name: str) -> flask.Response:
    """One file of the developer console (scripts, styles, images)."""
    return _file_response(ctx, name)


@functions_framework.http
def console(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
