"""The ``openapi`` function: ``GET /openapi.json``, the API description of every function.

The document describes every function's routes, so building it means importing them all;
instead it is built ahead of time (``python -m tests.support.openapi_snapshot`` writes
``functions/openapi.json``, the reviewed golden copy of the API) and served as committed,
so this function's instances load no other function. A test holds the file equal to the
document the routes give today.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

import flask
import functions_framework

from functions import FUNCTIONS
from shared.http import Api, RequestContext, json_text_response

DOCUMENT = Path(__file__).with_name("openapi.json")
TITLE = "Voice platform API"
VERSION = "1.0.0"

api = Api("openapi")


def http_apis() -> list[Api]:
    """Return the ``Api`` of every deployed HTTP function."""
    return [
        importlib.import_module(spec.module).api for spec in FUNCTIONS if spec.trigger == "http"
    ]


def build_document() -> dict[str, Any]:
    """Return the OpenAPI document of every deployed function's routes, built now."""
    from shared.openapi import build_openapi  # noqa: PLC0415 - only when (re)building

    return build_openapi(http_apis(), title=TITLE, version=VERSION)


@cache
def _document_text() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


@api.route("/openapi.json", methods=["GET"], access="public")
def openapi_document(ctx: RequestContext) -> flask.Response:
    """The OpenAPI 3.1 document of the whole API."""
    return json_text_response(_document_text())


@functions_framework.http
def openapi(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
