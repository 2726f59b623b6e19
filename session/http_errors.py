"""The session service's HTTP refusals, in the platform's error shape.

``GET /v1/backends`` and ``POST /v1/sessions/webrtc`` answer errors as every HTTP API of
the platform does (the seed's body, ``shared.http``): ``{error, code, timestamp,
requestId}``, the request id also in ``X-Request-Id`` (the caller's, when it gave a well
formed one, so a gateway's id follows the request), a 401 names the Bearer scheme and an
error that says when to try again sets ``Retry-After``. A token that cannot be checked
now (the key endpoint unreachable) is a 503, not a 401 (``auth_refusal``).
The body is ``shared.errors.error_body``; ``shared.http`` would bring Flask into this service.
"""

from __future__ import annotations

import re
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.errors import PlatformError, ServiceUnavailableError, error_body

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # as shared.http accepts one


def request_id_of(request: Request) -> str:
    """Return the request's ``X-Request-Id`` if well formed, else a new id."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else f"req-{secrets.token_hex(16)}"


def error_response(request: Request, error: PlatformError, status: int) -> JSONResponse:
    """Return ``error`` as the platform's error body with ``status``."""
    request_id = request_id_of(request)
    body = error_body(error, request_id)
    headers = {"X-Request-Id": request_id}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="voice-platform"'
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


def auth_status(error: PlatformError) -> int:
    """Return the status of a refused token: 503 when it could not be checked now (our
    outage: the caller's token may well be good), else 401."""
    return 503 if isinstance(error, ServiceUnavailableError) else 401
