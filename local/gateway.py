"""The local gateway: every Cloud Function in one process, at its production path.

Each function is built exactly as the Cloud Functions runtime builds it
(``functions_framework.create_app`` on ``main.py`` with the function's entry point), then
mounted at the path prefixes listed in ``functions.FUNCTIONS``. ``/healthz`` answers
without auth. It also stands in for what Google runs around the functions: signed
download URLs of the embedded object storage (``/_blobs/...``), Eventarc (the storage
adapter posts each object-finalized CloudEvent to ``/_events/storage``, and the gateway
delivers it, in binary mode, to the function subscribed to that bucket), and Cloud Tasks
and Cloud Scheduler (the in-process worker and scheduler run beside it).
``python -m local.gateway`` (``make run``) serves it with waitress on 127.0.0.1:8080, runs
the streaming session service beside it on ``VOICE_SESSIONS_PORT`` (8081; WebSocket
``/v1/sessions``, WebRTC offers at ``/v1/sessions/webrtc``) in the same process, and stops
both cleanly on Ctrl-C or SIGTERM. For pages it serves (the developer console at
``/console``) it also mints dev tokens (``POST /_dev/token``, ``local.dev_tokens``) and
tunnels session WebSocket upgrades at ``/v1/sessions`` (and the text-to-speech WebSocket
at ``/v1/synthesize/ws``) to the session service, so the
page reaches everything at one origin, as it does behind the production front door
(``local.websocket_tunnel``).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any, cast

import flask
import functions_framework
from cloudevents.http import CloudEvent
from waitress.server import BaseWSGIServer, create_server

from functions import FUNCTIONS, FunctionSpec
from functions.console import DEV_TOKEN_PATH, SESSIONS_PATH
from local.blob_server import BlobServer
from local.dev_tokens import DevTokenRoute
from local.session_server import SessionServer
from local.websocket_tunnel import tunnelling_channel
from shared.blobs.events import bucket_of
from shared.blobs.local import LocalObjectStorage
from shared.blobs.signing import URL_PREFIX
from shared.bootstrap import Container, get_container
from shared.catalog.repository import VOICES
from shared.catalog.sync import start_sync
from shared.config import Settings
from shared.errors import NotFoundError, echoed
from shared.http import ErrorShape, error_response, request_id_of
from shared.store import Query

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SOURCE = Path(__file__).resolve().parent.parent / "main.py"
EVENTS_PATH = "/_events/storage"
# The session service's text-to-speech WebSocket (session/README.md), tunnelled like sessions.
SYNTHESIZE_WS_PATH = "/v1/synthesize/ws"
# Streamed answers (POST /synthesize/stream) must reach the client as they are produced and
# push back on the app when the client reads slowly. Waitress 3 sends each chunk at once
# (its deprecated ``send_bytes`` is 1); its output buffer blocks the app only beyond this
# many bytes (16 MiB by default: a whole long text), and with a request lookahead it keeps
# reading the socket while the app runs, so it notices a client that went away.
OUTBUF_HIGH_WATERMARK = 256 * 1024
CHANNEL_REQUEST_LOOKAHEAD = 1


class Gateway:
    """A WSGI app dispatching each request to the function that owns its path."""

    def __init__(
        self,
        container: Container,
        functions: Iterable[FunctionSpec] = FUNCTIONS,
        *,
        source: Path = SOURCE,
    ) -> None:
        self.apps: dict[str, WsgiApp] = {}
        self.bucket_subscribers: dict[str, str] = {}
        prefixes: list[tuple[str, str]] = []
        for spec in functions:
            signature = "http" if spec.trigger == "http" else "cloudevent"
            self.apps[spec.name] = functions_framework.create_app(  # type: ignore[no-untyped-call]
                spec.entry_point, str(source), signature
            )  # functions-framework ships no type hints
            prefixes.extend((prefix, spec.name) for prefix in spec.prefixes)
            if spec.bucket_setting is not None:
                bucket = getattr(container.settings, spec.bucket_setting)
                self.bucket_subscribers[bucket] = spec.name
        self._blob_server: WsgiApp | None = None
        if container.settings.blobs == "embedded":
            container.storage_event_router = self._route_storage_event
            self._blob_server = BlobServer(cast(LocalObjectStorage, container.blobs))
        self._events_url = f"{container.settings.public_base_url.rstrip('/')}{EVENTS_PATH}"
        self._dev_tokens = DevTokenRoute(container)
        # Longest prefix first, so /voices/sync can belong to another function than /voices.
        self._prefixes = sorted(prefixes, key=lambda item: len(item[0]), reverse=True)
        # Clients repeat their paths: remember recent answers rather than scan every prefix.
        self.function_for = functools.lru_cache(maxsize=4096)(self._function_for)

    def _function_for(self, path: str) -> str | None:
        """Return the name of the function serving ``path``, if any."""
        for prefix, name in self._prefixes:
            if _under(path, prefix):
                return name
        return None

    def _route_storage_event(self, event: CloudEvent) -> str | None:
        # Post only what a function subscribes to, as Eventarc triggers are per bucket.
        return self._events_url if bucket_of(event) in self.bucket_subscribers else None

    def _deliver_storage_event(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Any:
        source = environ.get("HTTP_CE_SOURCE", "")
        bucket = source.rsplit("/buckets/", 1)[-1] if "/buckets/" in source else ""
        name = self.bucket_subscribers.get(bucket)
        if name is None:
            start_response("204 No Content", [])
            return [b""]
        return self.apps[name]({**environ, "PATH_INFO": "/"}, start_response)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path.startswith(URL_PREFIX + "/") and self._blob_server is not None:
            return self._blob_server(environ, start_response)
        if path == EVENTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            return self._deliver_storage_event(environ, start_response)
        if path == DEV_TOKEN_PATH:
            return self._dev_tokens(environ, start_response)
        name = self.function_for(path)
        if name is None:
            return _not_found(environ, start_response, path)
        return self.apps[name](environ, start_response)


def _under(path: str, prefix: str) -> bool:
    # A "*" segment of a prefix matches any one segment, as a URL map's path pattern does.
    if "*" not in prefix:
        return path == prefix or path.startswith(prefix + "/")
    wanted, given = prefix.split("/"), path.split("/")
    return len(given) >= len(wanted) and all(
        w == g or (w == "*" and g != "") for w, g in zip(wanted, given, strict=False)
    )


def _not_found(
    environ: dict[str, Any], start_response: Callable[..., Any], path: str
) -> Iterable[bytes]:
    # The body every route answers errors with (OpenAI's under /v1/, as its functions do).
    request_id = request_id_of(flask.Request(environ))
    shape: ErrorShape = "openai" if path.startswith("/v1/") else "platform"
    response = error_response(NotFoundError(f"No route for {echoed(path)}"), request_id, shape)
    response.headers["X-Request-Id"] = request_id
    return response(environ, start_response)


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]


def _banner(settings: Settings, sessions: str | None) -> str:
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    routes = "\n".join(f"  {', '.join(spec.prefixes):<28} -> {spec.name}" for spec in FUNCTIONS)
    streaming = (
        f"Voice sessions on {sessions} (WebSocket; see session/README.md), "
        f"also at ws://{settings.gateway_host}:{settings.gateway_port}{SESSIONS_PATH}; "
        f"text to speech streamed at ws://{settings.gateway_host}:{settings.gateway_port}"
        f"{SYNTHESIZE_WS_PATH}"
        if sessions
        else "Voice sessions: not started (VOICE_SESSIONS_PORT is taken)"
    )
    return (
        f"Voice platform gateway listening on {base}\n"
        f"{streaming}\n"
        f"Data: {settings.data_dir.resolve()}  store={settings.store} auth={settings.auth_mode}\n"
        f"Functions:\n{routes}\n"
        f"Console:       {base}/console (sign in with a dev token; see README)\n"
        f"Mint a token:  make token USER=alice [ADMIN=1]\n"
        f'Try:           curl -H "Authorization: Bearer $(make -s token USER=alice)" '
        f"{base}/users/me\n"
        "Ctrl-C stops it."
    )


def _sync_empty_catalog(container: Container) -> None:
    # A fresh data directory has no voices: sync the enabled providers once, in the
    # background worker, instead of waiting for the daily schedule.
    if container.store.count(Query(VOICES)) == 0:
        start_sync(
            store=container.store,
            providers=container.providers,
            queue=container.tasks.queue,
            queue_name=container.settings.sync_queue,
            id_prefix="first-run",
        )


def gateway_server(app: WsgiApp, *, host: str, port: int, threads: int) -> Any:
    """Return the waitress server for ``app``, set to stream (``OUTBUF_HIGH_WATERMARK``)."""
    return create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
        channel_request_lookahead=CHANNEL_REQUEST_LOOKAHEAD,
    )


def main() -> None:
    """Serve the gateway and sessions until Ctrl-C or SIGTERM, then stop within a bound."""
    container = get_container()
    settings = container.settings
    try:  # the port first: nothing starts in the background of a gateway that cannot serve
        server = gateway_server(
            Gateway(container),
            host=settings.gateway_host,
            port=settings.gateway_port,
            threads=settings.gateway_threads,
        )
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        container.close()
        sys.exit(
            f"Port {settings.gateway_port} of {settings.gateway_host} is taken: stop what "
            "listens there, or set VOICE_GATEWAY_PORT to another port"
        )
    container.tasks.start()
    _sync_empty_catalog(container)
    # Load every enabled provider now (Piper's neural voice takes a second or two), off the
    # serving path: the first English request does not wait for it, and a missing or
    # corrupt voice file is a warning at startup rather than at the first request.
    threading.Thread(target=container.providers.check, name="providers-check", daemon=True).start()
    sessions = SessionServer(container, host=settings.sessions_host, port=settings.sessions_port)
    sessions_started = sessions.start()
    if sessions_started and isinstance(server, BaseWSGIServer):
        # Session WebSockets also at this origin (the console's), as behind the front door.
        server.channel_class = tunnelling_channel(
            (SESSIONS_PATH, SYNTHESIZE_WS_PATH), sessions.host, sessions.port
        )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C stops it even when started in the background of a script (where the shell
    # starts it with SIGINT ignored and Python would keep ignoring it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(_banner(settings, sessions.url if sessions_started else None), flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        finished = shut_down(
            server, container, settings.gateway_shutdown_seconds, sessions=sessions.stop
        )
        print("Gateway stopped.", file=sys.stderr, flush=True)
        if not finished:
            # Work still running past the bound keeps its lease in the store and resumes
            # after a restart; waiting longer would only make Ctrl-C unreliable.
            print("(work still running was left to resume on the next start)", file=sys.stderr)
            sys.stderr.flush()
            os._exit(0)


def shut_down(
    server: Any,
    container: Container,
    seconds: float,
    *,
    sessions: Callable[[], None] = lambda: None,
) -> bool:
    """Close the server and the sessions, then the container, within ``seconds``; return
    whether all did, every running task included."""
    deadline = time.monotonic() + seconds
    closed: list[bool] = []

    def close() -> None:
        server.close()
        sessions()
        closed.append(container.close(timeout=max(deadline - time.monotonic() - 0.5, 0.1)))

    closing = threading.Thread(target=close, name="gateway-shutdown", daemon=True)
    closing.start()
    closing.join(max(deadline - time.monotonic(), 0.0))
    return not closing.is_alive() and closed == [True]


if __name__ == "__main__":
    main()
