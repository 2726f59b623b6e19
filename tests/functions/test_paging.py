"""Every list pages the same way: an empty ``cursor`` is the first page."""

from __future__ import annotations

import importlib
import re
from typing import Any

from werkzeug.test import Client

from local.gateway import Gateway
from shared.bootstrap import get_container
from tests.functions.conftest import bearer


def paged_routes(document: dict[str, Any]) -> list[str]:
    """Return every GET path of the OpenAPI document that takes a ``cursor``."""
    return [
        path
        for path, operations in document["paths"].items()
        if "get" in operations
        and any(
            parameter["in"] == "query" and parameter["name"] == "cursor"
            for parameter in operations["get"].get("parameters", [])
        )
    ]


def answer(client: Client, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    response = client.get(path, headers=headers)
    body = response.get_json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("timestamp", "requestId")}
    return response.status_code, body


def test_an_empty_cursor_is_the_first_page_on_every_list(platform, token):
    document = importlib.import_module("functions.openapi").build_document()
    gateway = Client(Gateway(get_container()))
    headers = bearer(token("ann", admin=True))
    lexicon = {"name": "names", "language": "en-US", "rules": [{"grapheme": "Ann", "alias": "An"}]}
    assert gateway.post("/lexicons", json=lexicon, headers=headers).status_code == 201
    routes = paged_routes(document)
    assert len(routes) >= 8, routes
    for path in routes:
        concrete = re.sub(r"\{[A-Za-z_]*[uU]ser[A-Za-z_]*\}", "ann", path)
        concrete = re.sub(r"\{[A-Za-z_]+\}", "missing", concrete)
        first = answer(gateway, concrete, headers)
        assert first[0] != 400, (path, first)
        assert answer(gateway, f"{concrete}?cursor=", headers) == first, path
        assert answer(gateway, f"{concrete}?limit=1&cursor=", headers) == answer(
            gateway, f"{concrete}?limit=1", headers
        ), path
    assert (
        answer(gateway, "/lexicons?cursor=", headers)[1]["lexicons"][0]["name"] == lexicon["name"]
    )
