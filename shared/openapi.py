"""The OpenAPI 3.1 document of every HTTP route, generated from the routes' pydantic models.

Each ``Api`` route declares the models it reads (body, query) and returns; their JSON
schemas (camelCase, as on the wire) go under ``components.schemas``. Every operation
documents the seed's error body and needs a bearer token unless the route is public.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.http import Api, Route

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

_ERROR_STATUSES = {
    "400": "Invalid request",
    "401": "Missing or invalid bearer token",
    "403": "Access denied",
    "404": "Not found",
    "409": "Conflict",
    "413": "Payload too large",
    "429": "Rate limited (see Retry-After)",
    "503": "Temporarily unavailable (see Retry-After)",
}


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
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        for method in route.methods:
            operation = _operation(route, refs, schemas)
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
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        success["content"] = {
            "application/json": {"schema": refs[(route.response, "serialization")]}
        }
    responses: dict[str, Any] = {str(route.status): success}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for status, description in _ERROR_STATUSES.items():
        if route.access == "public" and status in ("401", "403"):
            continue
        responses[status] = {"description": description, **error}
    operation["responses"] = responses
    if route.access == "public":
        operation["security"] = []
    if route.access == "admin":
        operation["description"] = "Needs a token with the admin claim."
    return operation
