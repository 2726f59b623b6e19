"""The gateway's dev token route: ``POST /_dev/token`` mints a dev-signed bearer token.

What ``make token`` does, for the developer console in a browser: the body names the user
(``{"userId": "alice", "admin": false, "accountId": null, "ttlSeconds": 3600}``) and the
answer is ``{"token", "userId", "admin", "expiresAt"}``. It exists only in the dev auth
mode (``local.gateway`` mounts it; Settings refuses that mode in any deployment), and only
for the machine itself: the caller, the ``Host`` it named and any ``Origin`` must all be
loopback, so neither another host on the network nor a web page elsewhere (DNS rebinding,
a cross-site form) can mint one. A JSON body is required, which a cross-site page cannot
send without a CORS preflight that the gateway never grants.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import flask
from pydantic import Field

from shared.auth import DevTokenVerifier, build_dev_verifier
from shared.bootstrap import Container
from shared.errors import (
    AccessDeniedError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PlatformError,
    UnsupportedMediaTypeError,
)
from shared.http import error_response, json_response, parse_json, request_id_of
from shared.model import RequestModel

MAX_BODY_BYTES = 4096
LOOPBACK_NAMES = frozenset({"localhost"})


class DevTokenRequest(RequestModel):
    """Body of ``POST /_dev/token``."""

    user_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@+-]+$")]
    admin: bool = False
    account_id: (
        Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@+-]+$")] | None
    ) = None
    ttl_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 3600


def is_loopback(host: str) -> bool:
    """Return whether ``host`` (a name or an address, without port) is this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DevTokenRoute:
    """The WSGI app behind ``POST /_dev/token``."""

    def __init__(self, container: Container) -> None:
        self._settings = container.settings
        self._verifier: DevTokenVerifier | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = flask.Request(environ)
        request_id = request_id_of(request)
        try:
            response = self._mint(request)
        except PlatformError as exc:
            response = error_response(exc, request_id)
        response.headers["X-Request-Id"] = request_id
        return response(environ, start_response)

    def _mint(self, request: flask.Request) -> flask.Response:
        if self._settings.auth_mode != "dev":
            raise NotFoundError("Dev tokens exist only in the dev auth mode")
        if request.method != "POST":
            raise MethodNotAllowedError("Use POST")
        _require_local(request)
        if request.mimetype != "application/json":
            raise UnsupportedMediaTypeError("Send the request as application/json")
        length = request.content_length
        if length is None or length > MAX_BODY_BYTES:
            raise InvalidRequestError(f"A JSON body of at most {MAX_BODY_BYTES} bytes is required")
        body = parse_json(DevTokenRequest, request.get_data(cache=False))
        if self._verifier is None:
            # The secret the platform's verifier checks dev tokens with (as `make token`).
            self._verifier = build_dev_verifier(self._settings)
        token = self._verifier.mint(
            body.user_id,
            admin=body.admin,
            ttl_seconds=body.ttl_seconds,
            account_id=body.account_id,
        )
        expires = datetime.now(UTC) + timedelta(seconds=body.ttl_seconds)
        return json_response(
            {
                "token": token,
                "userId": body.user_id,
                "admin": body.admin,
                "expiresAt": expires.isoformat().replace("+00:00", "Z"),
            },
            201,
        )


def _require_local(request: flask.Request) -> None:
    remote = request.remote_addr or ""
    host = urlsplit(f"//{request.host}").hostname or ""
    if not is_loopback(remote) or not is_loopback(host):
        raise AccessDeniedError("Dev tokens are minted for this machine only")
    origin = request.headers.get("Origin")
    if origin is not None and not is_loopback(urlsplit(origin).hostname or ""):
        raise AccessDeniedError("Dev tokens are minted for pages of this machine only")
