"""A real HTTP server on 127.0.0.1 for fake provider APIs, with scripted failures.

``FakeHttpServer(app)`` serves a werkzeug WSGI app from a thread on a free port. Tests
queue failures with ``fail_next(status, body, headers)``: the next request answers that
instead of reaching the app (a body of ``bytes`` goes out as is, anything else as JSON).
Every request is recorded (method, path, query, headers, body) for assertions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers or {}, mimetype="application/json"
    )


class FakeHttpServer:
    """A threaded werkzeug server running ``app(request) -> Response``."""

    def __init__(self, app: Callable[[Request], Response]) -> None:
        self._app = app
        self.requests: list[Recorded] = []
        self._script: list[Scripted] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` requests with ``status`` and ``body``."""
        with self._lock:
            self._script.extend(Scripted(status, body, headers or {}) for _ in range(times))

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.requests.append(
                Recorded(
                    request.method, request.path, dict(request.args), dict(request.headers), body
                )
            )
            scripted = self._script.pop(0) if self._script else None
        if scripted is not None:
            if isinstance(scripted.body, bytes):
                response = Response(scripted.body, status=scripted.status, headers=scripted.headers)
            else:
                response = json_response(scripted.body, scripted.status, scripted.headers)
        else:
            response = self._app(request)
        return response(environ, start_response)
