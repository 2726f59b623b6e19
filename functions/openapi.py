"""The ``openapi`` function: ``GET /openapi.json``, the API description of every function."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import flask
import functions_framework

from functions import FUNCTIONS
from shared.http import Api, RequestContext
from shared.openapi import build_openapi

api = Api("openapi")


def http_apis() -> list[Api]:
    """Return the ``Api`` of every deployed HTTP function."""
    return [
        importlib.import_module(spec.module).api for spec in FUNCTIONS if spec.trigger == "http"
    ]


@cache
def _document() -> dict[str, Any]:
    return build_openapi(http_apis(), title="Voice platform API", version="1.0.0")


@api.route("/openapi.json", methods=["GET"], access="public")
def openapi_document(ctx: RequestContext) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the whole API."""
    return _document()


@functions_framework.http
def openapi(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
