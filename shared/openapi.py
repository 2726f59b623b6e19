"""The OpenAPI 3.1 document of every HTTP route, generated from the routes' pydantic models.

Each ``Api`` route declares the models it reads (body, query) and returns; their JSON
schemas (camelCase, as on the wire) go under ``components.schemas``. Every operation lists
the responses it gives: its success status, the statuses the route declares
(``Api.route(responses=...)``: a 202 job, a 206 range, a 409 conflict, ...), and those
every route of its kind can give (401 and 403 with a bearer token, 400 with parameters or
a body, 413 and 415 with a body, 404, 429, 503). Errors are the platform's error body, or
OpenAI's on the OpenAI-compatible routes. A request body is required unless its model
accepts ``{}``; it is JSON unless the route names another media type (``POST /samples``
takes ``multipart/form-data``, its file a binary string). Every operation needs a bearer
token unless the route is public.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.http import Api, ErrorShape, Route

_PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "code", "timestamp", "requestId"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, safe to show"},
        "code": {"type": "string", "description": "Stable error code, e.g. VOICE_MODEL_NOT_FOUND"},
        "timestamp": {"type": "string", "format": "date-time"},
        "requestId": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}

OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

STATUS_DESCRIPTIONS: dict[int, str] = {
    200: "Success",
    201: "Created",
    202: "Accepted: the work goes on in the background",
    204: "Done; no body",
    206: "Partial content (the requested byte range)",
    400: "Invalid request",
    401: "Missing or invalid bearer token",
    403: "Access denied",
    404: "Not found",
    406: "None of the media types the Accept header names can be produced",
    409: "Conflict with the current state",
    413: "Payload too large",
    415: "Unsupported media type or audio format",
    416: "Range not satisfiable",
    422: "Cannot be carried out in this deployment",
    429: "Rate limited (see Retry-After)",
    502: "An upstream provider failed",
    503: "Temporarily unavailable (see Retry-After)",
}


IDEMPOTENCY_CONFLICT = "A request with the same Idempotency-Key is still running (see Retry-After)"
IDEMPOTENCY_REUSED = "The Idempotency-Key was used with another request"
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "1-255 printable ASCII characters: a retry with the same key and request gets the "
        "first answer (Idempotent-Replayed: true) instead of doing it again, for 24 hours"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def documented_statuses(route: Route) -> dict[int, str | Mapping[str, Any]]:
    """Return every status ``route`` answers with, and what each means."""
    statuses: dict[int, str | Mapping[str, Any]] = {
        route.status: STATUS_DESCRIPTIONS.get(route.status, "Success")
    }
    if route.body is not None or route.query is not None:
        statuses[400] = STATUS_DESCRIPTIONS[400]
    if route.access != "public":
        statuses[401] = STATUS_DESCRIPTIONS[401]
        statuses[403] = STATUS_DESCRIPTIONS[403]
    statuses[404] = STATUS_DESCRIPTIONS[404]
    if route.body is not None:
        statuses[413] = STATUS_DESCRIPTIONS[413]
        statuses[415] = STATUS_DESCRIPTIONS[415]
    statuses[429] = STATUS_DESCRIPTIONS[429]
    statuses[503] = STATUS_DESCRIPTIONS[503]
    if route.idempotent:
        statuses[400] = STATUS_DESCRIPTIONS[400]  # a malformed Idempotency-Key
        statuses[409] = IDEMPOTENCY_CONFLICT
        statuses[422] = IDEMPOTENCY_REUSED
    statuses.update(route.responses)
    return dict(sorted(statuses.items()))


def openapi_path(rule: str) -> str:
    """Return the OpenAPI form of a werkzeug rule (``<id>`` becomes ``{id}``)."""
    return _PATH_PARAM.sub(r"{\1}", rule)


def build_openapi(apis: Iterable[Api], *, title: str, version: str) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document covering every route of ``apis``."""
    routes = [route for api in apis for route in api.routes]
    models: list[tuple[type[pydantic.BaseModel], JsonSchemaMode]] = []
    for route in routes:
        for model in (route.body, route.query):
            if model is not None:
                models.append((model, "validation"))
        if route.response is not None:
            models.append((route.response, "serialization"))
    unique = list(dict.fromkeys(models))
    refs, definitions = models_json_schema(
        unique, by_alias=True, ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA
    schemas["OpenAIError"] = OPENAI_ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for api in apis:
        for route in api.routes:
            for method in route.methods:
                operation = _operation(route, refs, schemas, api.error_shape)
                paths.setdefault(openapi_path(route.rule), {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearerAuth": []}],
    }


def _operation(
    route: Route,
    refs: Mapping[tuple[Any, JsonSchemaMode], Any],
    schemas: dict[str, Any],
    error_shape: ErrorShape,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary.splitlines()[0] if route.summary else route.handler.__name__,
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(route.rule)
    ]
    if route.query is not None:
        schema = schemas.get(route.query.__name__, {})
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if route.idempotent:
        parameters.append(IDEMPOTENCY_HEADER)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {route.body_media_type: {"schema": refs[(route.body, "validation")]}},
        }
    schema_name = "OpenAIError" if error_shape == "openai" else "Error"
    error = {
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}
    }
    responses: dict[str, Any] = {}
    for status, spec in documented_statuses(route).items():
        given: dict[str, Any] = dict(spec) if not isinstance(spec, str) else {}
        if isinstance(spec, str) and spec:
            given["description"] = spec
        answer: dict[str, Any] = {
            "description": STATUS_DESCRIPTIONS.get(status, "Success"),
            **({} if status < 400 else error),
        }
        if status < 400 and route.response is not None and status in (route.status, 202):
            answer["content"] = {
                "application/json": {"schema": refs[(route.response, "serialization")]}
            }
        content: dict[str, Any] = {**answer.get("content", {}), **given.pop("content", {})}
        answer.update(given)
        if content:
            answer["content"] = content
        responses[str(status)] = answer
    operation["responses"] = responses
    if route.access == "public":
        operation["security"] = []
    if route.access == "admin":
        operation["description"] = "Needs a token with the admin claim."
    return operation
