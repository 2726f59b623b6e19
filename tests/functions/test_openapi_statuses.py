"""The OpenAPI document and the behaviour agree: statuses, required bodies, Allow on 405.

Every route is probed with the failures any client can cause (no token, a user's token on
an admin route, the wrong content type, broken or empty JSON, an unknown query parameter,
ids that do not exist) and each status it answers must be one its operation lists. A
method a path does not have is 405 with ``Allow`` naming that path's documented methods.
The whole test session is held to the same rule by ``tests/conftest.py``, which checks
every status any test observed.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from werkzeug.test import Client

from functions import FUNCTIONS
from local.gateway import Gateway
from shared.bootstrap import get_container
from shared.openapi import documented_statuses
from tests.functions.conftest import bearer

_PARAM = re.compile(r"<(?:[a-z]+:)?([A-Za-z_]+)>")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def http_routes() -> list[tuple[str, Any]]:
    found = []
    for spec in FUNCTIONS:
        if spec.trigger == "http":
            for route in importlib.import_module(spec.module).api.routes:
                found.append((spec.entry_point, route))
    return found


def filled(rule: str) -> str:
    return _PARAM.sub(lambda m: f"no-such-{m.group(1).replace('_', '-')}", rule)


@pytest.mark.parametrize(
    ("target", "route"),
    http_routes(),
    ids=lambda value: value if isinstance(value, str) else f"{value.methods[0]} {value.rule}",
)
def test_the_failures_any_client_can_cause_are_documented(function_client, token, target, route):
    client = function_client(target)
    user, admin = bearer(token("ann")), bearer(token("root", admin=True))
    caller = admin if route.access == "admin" else user
    path = filled(route.rule)
    documented = documented_statuses(route)
    observed: dict[str, int] = {}
    for method in route.methods:

        def send(name: str, method: str = method, **kwargs: Any) -> None:
            response = client.open(path, method=method, **kwargs)
            assert response.status_code != 500, (name, response.get_json())
            observed[name] = response.status_code

        if route.access != "public":
            send("no token")
        if route.access == "admin":
            send("a user's token", headers=user)
        if route.body is not None:
            send("text/plain", headers=caller, data="hello", content_type="text/plain")
            if route.body_media_type == "application/json":
                send("broken JSON", headers=caller, data="{", content_type="application/json")
            else:
                send("broken body", headers=caller, data="{", content_type=route.body_media_type)
            if route.body_required:
                send("no body", headers=caller)
        if route.query is not None:
            send("unknown parameter", headers=caller, query_string={"noSuchParameter": "1"})
        send("unknown ids", headers=caller, json={} if route.body_required else None)
    undocumented = {name: status for name, status in observed.items() if status not in documented}
    assert undocumented == {}, (route.rule, sorted(documented))
    if route.access != "public":
        assert observed["no token"] == 401
    if route.access == "admin":
        assert observed["a user's token"] == 403
    if route.body is not None:
        assert observed["text/plain"] == 415
        assert observed.get("broken JSON", observed.get("broken body")) == 400
    if route.body_required:
        # A form route asks for its media type first: no body has none.
        json_body = route.body_media_type == "application/json"
        assert observed["no body"] == (400 if json_body else 415)


def test_a_required_body_refuses_an_empty_one_and_the_document_says_which_are_required(
    function_client, token
):
    document = function_client("openapi").get("/openapi.json").get_json()
    synthesize = document["paths"]["/synthesize"]["post"]
    assert synthesize["requestBody"]["required"] is True
    activate = document["paths"]["/voice-models/{model_id}/activate"]["post"]
    assert activate["requestBody"]["required"] is False  # {"userId"} is optional
    response = function_client("synthesis").post("/synthesize", headers=bearer(token("ann")))
    assert response.status_code == 400
    assert response.get_json()["error"] == "A JSON request body is required"


def test_the_document_lists_the_202_with_location_and_the_pushed_routes_403(function_client):
    document = function_client("openapi").get("/openapi.json").get_json()
    synthesize = document["paths"]["/synthesize"]["post"]["responses"]
    assert "Location" in synthesize["202"]["headers"]
    assert "audio/*" in synthesize["200"]["content"]
    assert {"200", "202", "400", "401", "403", "404", "406", "413", "415", "422", "429"} <= set(
        synthesize
    )
    assert {"401", "403", "503"} <= set(document["paths"]["/tasks/run"]["post"]["responses"])
    speech = document["paths"]["/v1/audio/speech"]["post"]["responses"]
    assert speech["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OpenAIError"
    }


def test_a_method_a_path_lacks_is_405_allowing_only_that_paths_methods(platform, token):
    document = importlib.import_module("functions.openapi").build_document()
    gateway = Client(Gateway(get_container()))
    headers = bearer(token("root", admin=True))
    templates = {
        path: re.compile("^" + re.sub(r"\{[A-Za-z_]+\}", "[^/]+", path) + "$")
        for path in document["paths"]
    }
    checked = 0
    for path, operations in document["paths"].items():
        allowed = sorted(method.upper() for method in operations)
        concrete = re.sub(r"\{([A-Za-z_]+)\}", lambda m: f"x-{m.group(1)}", path)

        def elsewhere(method: str, concrete: str = concrete, path: str = path) -> bool:
            # GET /voice-models/cleanup is GET /voice-models/{model_id}: not this path's.
            return any(
                other != path and pattern.match(concrete) and method.lower() in ops
                for other, pattern in templates.items()
                for ops in [document["paths"][other]]
            )

        candidates = [m for m in METHODS if m not in allowed and not elsewhere(m)]
        if not candidates:
            continue
        missing = candidates[0]
        response = gateway.open(concrete, method=missing, headers=headers)
        assert response.status_code == 405, (missing, concrete)
        assert response.headers["Allow"] == ", ".join(allowed), (missing, concrete)
        checked += 1
    assert checked > 0.9 * len(document["paths"])


def test_public_descriptions_speak_of_the_platform_not_of_seed_documents(function_client, token):
    document = function_client("openapi").get("/openapi.json").get_json()
    assert "seed" not in str(document).lower()
    jobs = (
        function_client("tasks")
        .get("/scheduler/jobs", headers=bearer(token("root", admin=True)))
        .get_json()["jobs"]
    )
    assert jobs
    assert all("seed" not in job["description"].lower() for job in jobs)
