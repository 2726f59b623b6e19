"""The HTTP layer every function uses: routing, auth, parsing, JSON replies, errors.

An ``Api`` routes one function's sub-paths (werkzeug rules), authenticates every route
unless it is explicitly public, parses bodies and query strings into pydantic request
models (bad input becomes a 400 with field details), and turns every error into the seed's
body ``{error, code, timestamp, requestId}``. ``ERROR_STATUS`` is the one table from error
kind (a base class in ``shared.errors``) to HTTP status; the HTTP edge imports no
capability, whose errors subclass those kinds. Unknown exceptions are logged with their
stack and answered with a generic 500 that leaks nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

import flask
import pydantic
from werkzeug.exceptions import (
    HTTPException,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.routing import Map, Rule

from shared import errors
from shared.log import LogContext, log_context
from shared.model import validation_problems

if TYPE_CHECKING:
    from shared.auth import Principal
    from shared.bootstrap import Container

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=pydantic.BaseModel)
Access = Literal["user", "admin", "public"]
ErrorShape = Literal["platform", "openai"]
"""How error bodies look: the platform's ``{error, code, timestamp, requestId}``, or
OpenAI's ``{"error": {message, type, param, code}}`` for the OpenAI-compatible routes."""

ERROR_STATUS: dict[type[errors.PlatformError], int] = {
    errors.PlatformError: 500,
    errors.InvalidRequestError: 400,
    errors.UnauthenticatedError: 401,
    errors.AccessDeniedError: 403,
    errors.NotFoundError: 404,
    errors.MethodNotAllowedError: 405,
    errors.NotAcceptableError: 406,
    errors.ConflictError: 409,
    errors.PreconditionFailedError: 412,
    errors.PayloadTooLargeError: 413,
    errors.UnsupportedMediaTypeError: 415,
    errors.GoneError: 410,
    errors.RangeNotSatisfiableError: 416,
    errors.UnprocessableError: 422,
    errors.RateLimitedError: 429,
    errors.BadGatewayError: 502,
    errors.ServiceUnavailableError: 503,
}
"""The HTTP status of each kind of error; every other error class subclasses one of these."""

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def status_for(error: errors.PlatformError | type[errors.PlatformError]) -> int:
    """Return the HTTP status of ``error`` (or an error class): its first base in the table."""
    cls = error if isinstance(error, type) else type(error)
    for base in cls.__mro__:
        if base in ERROR_STATUS:
            return ERROR_STATUS[base]
    return 500


@dataclass
class Reply:
    """A handler's answer when it needs a status or headers other than 200 JSON."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


PAGE_CURSOR = "cursor"  # the query parameter every list takes its next page by


def page_body(noun: str, items: Iterable[Any], next_cursor: str | None) -> dict[str, Any]:
    """Return the list-response shape: items under a plural noun, plus ``nextCursor``."""
    return {noun: [_jsonable(item) for item in items], "nextCursor": next_cursor}


@dataclass
class RequestContext:
    """What a handler gets: the request, who is calling, and the adapters."""

    request: flask.Request
    request_id: str
    container: Container
    principal_or_none: Principal | None = None
    body_required: bool = False

    @property
    def principal(self) -> Principal:
        """Return the authenticated caller (routes are authenticated unless public)."""
        if self.principal_or_none is None:
            raise errors.UnauthenticatedError()
        return self.principal_or_none

    @property
    def user_id(self) -> str:
        """Return the authenticated caller's user id."""
        return self.principal.user_id

    def body(self, model: type[M]) -> M:
        """Return the JSON body parsed into ``model``; an absent optional body counts as ``{}``.

        Types are strict (``"yes"`` is not a boolean, ``"1"`` not a number); the JSON
        parser refuses invalid UTF-8, lone surrogates and nesting beyond its recursion
        limit, all as 400s.

        Raises UnsupportedMediaTypeError, PayloadTooLargeError or InvalidRequestError (also
        for an empty body where the route needs one).
        """
        raw = self._raw_body()
        if not raw.strip():
            if self.body_required or not accepts_empty(model):
                raise errors.InvalidRequestError("A JSON request body is required")
            return parse(model, {})
        if not self.request.is_json:
            raise errors.UnsupportedMediaTypeError()
        if raw.lstrip()[:1] != b"{":
            try:
                json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise errors.InvalidRequestError("Request body is not valid JSON") from exc
            raise errors.InvalidRequestError("Request body must be a JSON object")
        return parse_json(model, raw)

    def query(self, model: type[M]) -> M:
        """Return the query string parsed into ``model`` (repeated keys become lists).

        An empty ``cursor`` is the first page, as an empty page token is in Google's APIs
        (AIP-158): a client passing on the ``nextCursor`` it has not got yet sends one.
        """
        data: dict[str, Any] = {}
        for key in self.request.args:
            values = self.request.args.getlist(key)
            data[key] = values if len(values) > 1 else values[0]
        if data.get(PAGE_CURSOR) == "":
            del data[PAGE_CURSOR]
        return parse(model, data)

    def _raw_body(self) -> bytes:
        limit = self.container.settings.max_request_bytes
        length = self.request.content_length
        if length is not None and length > limit:
            raise errors.PayloadTooLargeError(f"Request body exceeds {limit} bytes")
        self.request.max_content_length = limit
        try:
            return self.request.get_data(cache=True)
        except RequestEntityTooLarge as exc:
            raise errors.PayloadTooLargeError(f"Request body exceeds {limit} bytes") from exc


def parse(model: type[M], data: Mapping[str, Any]) -> M:
    """Return ``data`` validated as ``model``; raise InvalidRequestError with field details."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _invalid(exc, data) from None


def parse_json(model: type[M], raw: bytes) -> M:
    """Return the JSON text ``raw`` validated strictly as ``model``.

    Raises InvalidRequestError: not JSON (invalid UTF-8, lone surrogates, nesting beyond
    the parser's limit included), or not a valid ``model`` (with field details);
    UnsupportedAudioFormatError for an audio format no encoder writes.
    """
    try:
        return model.model_validate_json(raw, strict=True)
    except pydantic.ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise errors.InvalidRequestError("Request body is not valid JSON") from None
        raise _invalid(exc) from None


def _invalid(exc: pydantic.ValidationError, data: Any = None) -> errors.PlatformError:
    found = exc.errors(include_url=False, include_input=False)
    for error in found:
        if error["type"] == errors.UnsupportedAudioFormatError.validation_type:
            return errors.UnsupportedAudioFormatError(error["msg"])
    details = [
        {"field": field or None, "message": message, "type": error["type"]}
        for error, (field, message) in zip(found, validation_problems(exc, data), strict=True)
    ]
    return errors.InvalidRequestError("Invalid request parameters", details=details)


Handler = Callable[..., Any]


class Route(NamedTuple):
    """One registered route, with the models that document it in OpenAPI."""

    rule: str
    methods: tuple[str, ...]
    handler: Handler
    access: Access
    summary: str
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    response: type[pydantic.BaseModel] | None = None
    status: int = 200
    # Statuses beyond the route's kind's, each described in words, or as a partial OpenAPI
    # response object (headers, extra content types).
    responses: Mapping[int, str | Mapping[str, Any]] = MappingProxyType({})
    requires_body: bool | None = None
    # How the body is sent: JSON (``ctx.body`` parses it), or a form the handler reads
    # itself (``multipart/form-data``), which ``body`` then describes for the document.
    body_media_type: str = "application/json"

    @property
    def idempotent(self) -> bool:
        """Return whether an ``Idempotency-Key`` applies (``shared.idempotency``): an
        authenticated POST whose body, if any, is JSON."""
        return (
            "POST" in self.methods
            and self.access != "public"
            and self.body_media_type == "application/json"
        )

    @property
    def body_required(self) -> bool:
        """Return whether the route needs a body: as declared, else unless ``{}`` is valid."""
        if self.body is None:
            return False
        if self.requires_body is not None:
            return self.requires_body
        return not accepts_empty(self.body)


@functools.cache
def accepts_empty(model: type[pydantic.BaseModel]) -> bool:
    """Return whether ``model`` validates an empty object (every field has a default)."""
    try:
        model.model_validate({})
    except pydantic.ValidationError:
        return False
    return True


class Api:
    """The routes of one Cloud Function, and its WSGI-facing ``handle``."""

    def __init__(
        self,
        name: str,
        *,
        container: Callable[[], Container] | None = None,
        error_shape: ErrorShape = "platform",
    ) -> None:
        self.name = name
        self.error_shape: ErrorShape = error_shape
        self.routes: list[Route] = []
        self._endpoints: dict[str, Route] = {}
        self._map = Map(strict_slashes=False, merge_slashes=False)
        # Rules match on path and method only: bind once instead of per request, and
        # remember recent matches (clients repeat their paths; misses raise, never cached).
        self._adapter = self._map.bind("localhost")
        self._match = functools.lru_cache(maxsize=4096)(self._adapter.match)
        self._container = container or process_container

    def route(
        self,
        rule: str,
        *,
        methods: Iterable[str],
        access: Access = "user",
        body: type[pydantic.BaseModel] | None = None,
        query: type[pydantic.BaseModel] | None = None,
        response: type[pydantic.BaseModel] | None = None,
        status: int = 200,
        responses: Mapping[int, str | Mapping[str, Any]] | None = None,
        requires_body: bool | None = None,
        body_media_type: str = "application/json",
    ) -> Callable[[Handler], Handler]:
        """Register ``handler(ctx, **path_params)`` for ``rule`` and ``methods``.

        ``body``, ``query`` and ``response`` name the pydantic models the handler reads and
        returns; with ``responses`` (other statuses the route answers, beyond those every
        route of its kind can, and what each means) they document the route in the OpenAPI
        document (``shared.openapi``). A body is required when ``requires_body`` says so,
        or, by default, when its model does not accept ``{}``. ``body_media_type`` says how
        the body is sent: JSON by default; a ``multipart/form-data`` route reads its form
        itself, and its ``body`` model describes the form's fields (a file is ``bytes``).
        """

        def register(handler: Handler) -> Handler:
            endpoint = f"{handler.__name__}:{len(self.routes)}"
            summary = (handler.__doc__ or "").strip()
            route = Route(
                rule,
                tuple(methods),
                handler,
                access,
                summary,
                body,
                query,
                response,
                status,
                dict(responses or {}),
                requires_body,
                body_media_type,
            )
            self.routes.append(route)
            self._endpoints[endpoint] = route
            self._map.add(Rule(rule, endpoint=endpoint, methods=list(methods)))
            self._match.cache_clear()
            return handler

        return register

    def handle(self, request: flask.Request) -> flask.Response:
        """Serve one request: route, authenticate, call the handler, reply in JSON."""
        started = time.perf_counter()
        request_id, trace, span = _request_ids(request)
        container = self._container()
        context = LogContext(request_id, trace, span, container.settings.project)
        with log_context(context):
            ctx = RequestContext(request, request_id, container)
            try:
                response = self._dispatch(ctx)
            except errors.PlatformError as exc:
                response = error_response(exc, request_id, self.error_shape)
            except Exception:
                logger.exception("Unhandled error serving %s %s", request.method, request.path)
                response = error_response(errors.PlatformError(), request_id, self.error_shape)
            response.headers["X-Request-Id"] = request_id
            _log_request(request, response, ctx, time.perf_counter() - started)
        return response

    def _dispatch(self, ctx: RequestContext) -> flask.Response:
        try:
            endpoint, params = self._match(ctx.request.path, ctx.request.method)
        except MethodNotAllowed:
            allowed = self.allowed_methods(ctx.request.path)
            error = errors.MethodNotAllowedError(
                f"{ctx.request.method} is not allowed here; use {', '.join(allowed)}"
            )
            response = error_response(error, ctx.request_id, self.error_shape)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        except NotFound:
            raise errors.NotFoundError(f"No route for {errors.echoed(ctx.request.path)}") from None
        route = self._endpoints[str(endpoint)]
        ctx.body_required = route.body_required
        if route.access != "public":
            ctx.principal_or_none = ctx.container.verifier.verify(
                _bearer_token(ctx.request.headers.get("Authorization"))
            )
            if route.access == "admin" and not ctx.principal.is_admin:
                raise errors.AccessDeniedError("This operation needs an admin")
        if route.idempotent and ctx.request.headers.get("Idempotency-Key") is not None:
            return self._idempotent(ctx, route, params)
        result = route.handler(ctx, **params)
        return to_response(result)

    def _idempotent(
        self, ctx: RequestContext, route: Route, params: Mapping[str, Any]
    ) -> flask.Response:
        """Serve a POST carrying an ``Idempotency-Key`` (``shared.idempotency``)."""
        from shared import idempotency  # noqa: PLC0415 - only requests with the header need it

        keys = idempotency.IdempotencyKeys(ctx.container.store)
        body = ctx._raw_body() if route.body is not None else b""  # a route without one ignores it
        request = idempotency.fingerprint(
            ctx.request.method, ctx.request.path, ctx.request.query_string, body
        )
        key = ctx.request.headers[idempotency.HEADER]
        held = keys.claim(ctx.user_id, key, request, datetime.now(UTC))
        if isinstance(held, idempotency.StoredAnswer):
            replay = flask.Response(held.body, status=held.status)
            replay.headers.update(held.headers)
            replay.headers[idempotency.REPLAYED_HEADER] = "true"
            return replay
        from shared.store.leases import Heartbeat  # noqa: PLC0415 - as above

        # The claim is a lease: renewed while the request runs, it lapses soon after its
        # instance dies, and a retry then runs (shared.idempotency).
        claim: idempotency.Claim = held  # named: a lambda does not keep isinstance's narrowing
        heartbeat = Heartbeat(
            lambda: keys.renew(claim, datetime.now(UTC)),
            idempotency.RENEW_EVERY.total_seconds(),
            name="idempotency-key",
        )
        try:
            try:
                with heartbeat:
                    response = to_response(route.handler(ctx, **params))
            except errors.PlatformError as exc:
                response = error_response(exc, ctx.request_id, self.error_shape)
        except BaseException:
            keys.release(held)
            raise
        stored = None
        if (
            response.status_code < 400  # an error did nothing: its retry may run again
            and not response.is_streamed
            and response.mimetype == "application/json"
            and len(response.get_data()) <= idempotency.MAX_STORED_BYTES
        ):
            headers = {
                n: response.headers[n] for n in idempotency.STORED_HEADERS if n in response.headers
            }
            stored = idempotency.StoredAnswer(
                response.status_code, response.get_data(as_text=True), headers
            )
        try:
            if stored is None:
                keys.release(held)
            else:
                keys.finish(held, stored)
        except errors.PlatformError:
            # The answer stands; the key stays claimed until its lease lapses, then is retaken.
            logger.warning("Could not record an Idempotency-Key's answer", exc_info=True)
        return response

    def allowed_methods(self, path: str) -> list[str]:
        """Return the methods of the route ``path`` belongs to (its most specific rule).

        A path such as ``/voice-models/compare`` also matches ``/voice-models/<model_id>``;
        its methods are the static rule's, as the OpenAPI document lists them.
        """
        matching = [route for route in self.routes if _rule_matches(route.rule, path)]
        if not matching:
            return []
        best = min(_specificity(route.rule) for route in matching)
        methods = {
            method
            for route in matching
            if _specificity(route.rule) == best
            for method in route.methods
        }
        return sorted(methods)

    def __call__(self, request: flask.Request) -> flask.Response:
        return self.handle(request)


@functools.cache
def _single_rule(rule: str) -> Map:
    return Map([Rule(rule, endpoint="x")], strict_slashes=False, merge_slashes=False)


def _rule_matches(rule: str, path: str) -> bool:
    adapter = _single_rule(rule).bind("localhost")
    try:
        adapter.match(path, method=None)
    except (NotFound, MethodNotAllowed):
        return False
    return True


def process_container() -> Container:
    """Return the process's container (``shared.bootstrap``), loaded on the first request.

    Importing a function's module builds its routes only; the composition root, the
    settings and the adapters wait for a request (cold starts, and tests' own settings).
    """
    from shared.bootstrap import get_container  # noqa: PLC0415 - off cold starts

    return get_container()


def _bearer_token(authorization_header: str | None) -> str:
    from shared.auth import bearer_token  # noqa: PLC0415 - see process_container

    return bearer_token(authorization_header)


def _specificity(rule: str) -> int:
    """Return how many path parameters ``rule`` has: fewer is more specific."""
    return rule.count("<")


def to_response(result: Any) -> flask.Response:
    """Return the Flask response for a handler's result."""
    if isinstance(result, flask.Response):
        return result
    reply = result if isinstance(result, Reply) else Reply(result)
    if reply.status == 204 or (reply.body is None and reply.status != 200):
        response = flask.Response(status=reply.status)
    else:
        response = json_response(_jsonable(reply.body), reply.status)
    response.headers.update(reply.headers)
    return response


def http_exception_response(error: HTTPException) -> flask.Response:
    """Return the platform's error body for an error the web framework raised itself.

    Flask answers a path its routing cannot match (``/users/%0A``: a newline never
    matches a path converter) or a body over its limit before any function runs; this
    keeps even those answers in the seed's shape. ``main.py`` registers it on every app.
    """
    request_id, _, _ = _request_ids(flask.request)
    status = error.code or 500
    platform_error: errors.PlatformError
    if status == 404:
        platform_error = errors.NotFoundError(f"No route for {errors.echoed(flask.request.path)!r}")
    elif status == 405:
        platform_error = errors.MethodNotAllowedError(f"{flask.request.method} is not allowed here")
    elif status == 413:
        platform_error = errors.PayloadTooLargeError()
    elif 400 <= status < 500:
        platform_error = errors.InvalidRequestError(error.description or "Bad request")
    else:
        platform_error = errors.PlatformError()
    shape: ErrorShape = "openai" if flask.request.path.startswith("/v1/") else "platform"
    response = error_response(platform_error, request_id, shape)
    response.headers["X-Request-Id"] = request_id
    return response


def json_response(body: Any, status: int = 200) -> flask.Response:
    """Return ``body`` as a JSON response that no cache keeps."""
    return json_text_response(
        json.dumps(body, separators=(",", ":"), default=_json_default), status
    )


def json_text_response(text: str, status: int = 200) -> flask.Response:
    """Return ``text``, already JSON, as a response that no cache keeps."""
    response = flask.Response(text, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def error_response(
    error: errors.PlatformError, request_id: str, shape: ErrorShape = "platform"
) -> flask.Response:
    """Return the error body for ``error`` in ``shape``, with its status and Retry-After."""
    status = status_for(error)
    body = (
        openai_error_body(error, status)
        if shape == "openai"
        else platform_error_body(error, request_id)
    )
    response = json_response(body, status)
    response.headers.update(error.headers)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="voice-platform"'
    if status >= 500:
        logger.error("%s: %s", error.code, error.message, exc_info=error.__cause__ is not None)
    return response


platform_error_body = errors.error_body
"""The platform's error body (``shared.errors.error_body``)."""


def openai_error_body(error: errors.PlatformError, status: int) -> dict[str, Any]:
    """Return OpenAI's error body, which its SDKs read the message from."""
    if status == 401:
        kind = "authentication_error"
    elif status == 403:
        kind = "permission_error"
    elif status == 429:
        kind = "rate_limit_error"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    param = None
    message = error.message
    if error.details:
        param = next((d.get("field") for d in error.details if d.get("field")), None)
        # OpenAI's SDKs show the message alone (no details field): it says what is wrong.
        said = [
            f"{d['field']}: {d['message']}" if d.get("field") else str(d["message"])
            for d in error.details
            if d.get("message")
        ]
        if said:
            message = f"{message}: {'; '.join(said)}"
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": error.code.lower(),
        }
    }


def request_id_of(request: flask.Request) -> str:
    """Return the request's id: ``X-Request-Id`` if well formed, else the trace, else new."""
    return _request_ids(request)[0]


def _jsonable(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"Not JSON serializable: {type(value).__name__}")


def _request_ids(request: flask.Request) -> tuple[str, str | None, str | None]:
    trace = span = None
    cloud = _CLOUD_TRACE.match(request.headers.get("X-Cloud-Trace-Context", ""))
    if cloud:
        trace, span = cloud.group(1).lower(), cloud.group(2)
    else:
        parent = _TRACEPARENT.match(request.headers.get("traceparent", ""))
        if parent:
            trace, span = parent.group(1), parent.group(2)
    given = request.headers.get("X-Request-Id", "")
    if _REQUEST_ID.match(given):
        return given, trace, span
    # Unique, not secret: the process-local generator (reseeded after fork) needs no syscall.
    return (trace or f"req-{random.getrandbits(128):032x}"), trace, span


def _log_request(
    request: flask.Request, response: flask.Response, ctx: RequestContext, seconds: float
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    principal = ctx.principal_or_none
    logger.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "fields": {
                "httpRequest": {
                    "requestMethod": request.method,
                    "requestUrl": request.path,
                    "status": response.status_code,
                    "latency": f"{seconds:.6f}s",
                    "userAgent": request.headers.get("User-Agent", ""),
                },
                "userId": principal.user_id if principal else None,
            }
        },
    )
