"""The session service's HTTP refusals, in the platform's error shape.

``GET /v1/backends`` and ``POST /v1/sessions/webrtc`` answer errors as every HTTP API of
the platform does (the seed's body, ``shared.http``): ``{error, code, timestamp,
requestId}``, the request id also in ``X-Request-Id`` (the caller's, when it gave a well
formed one, so a gateway's id follows the request), and a 401 names the Bearer scheme.
Built here rather than with ``shared.http``, which would bring Flask into this service.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.errors import PlatformError

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # as shared.http accepts one


def request_id_of(request: Request) -> str:
    """Return the request's ``X-Request-Id`` if well formed, else a new id."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else f"req-{secrets.token_hex(16)}"


def error_response(request: Request, error: PlatformError, status: int) -> JSONResponse:
    """Return ``error`` as the platform's error body with ``status``."""
    request_id = request_id_of(request)
    body: dict[str, object] = {
        "error": error.message,
        "code": error.code,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "requestId": request_id,
    }
    if error.details:
        body["details"] = error.details
    headers = {"X-Request-Id": request_id}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="voice-platform"'
    return JSONResponse(body, status_code=status, headers=headers)
