"""GET /openapi.json: a valid OpenAPI 3.1 document naming every route of every function."""

from __future__ import annotations

import importlib

from openapi_spec_validator import validate

from functions import FUNCTIONS
from shared.openapi import openapi_path


def test_openapi_document_is_valid_and_covers_every_route(function_client):
    response = function_client("openapi").get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    for spec in FUNCTIONS:
        if spec.trigger != "http":
            continue
        for route in importlib.import_module(spec.module).api.routes:
            operations = document["paths"][openapi_path(route.rule)]
            for method in route.methods:
                assert method.lower() in operations, (spec.name, route.rule, method)


def test_models_appear_in_camel_case(function_client):
    document = function_client("openapi").get("/openapi.json").get_json()
    register = document["paths"]["/users"]["post"]
    assert "201" in register["responses"]
    schemas = document["components"]["schemas"]
    assert "storageUsedBytes" in schemas["UserPublic"]["properties"]
    assert "firstName" in schemas["UserCreate"]["properties"]
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    assert register["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_word_timestamps_document_their_span_in_code_points(function_client):
    document = function_client("openapi").get("/openapi.json").get_json()
    response = document["components"]["schemas"]["SynthesisResponse"]
    shown = next(s for s in response["properties"]["timestamps"]["anyOf"] if "properties" in s)
    for name in ("words", "syllables"):
        item = shown["properties"][name]["items"]
        assert {"text", "start", "end", "charStart", "charEnd"} <= set(item["required"])
        assert "code point" in item["properties"]["charStart"]["description"]
        assert "exclusive" in item["properties"]["charEnd"]["description"]
    assert "wordIndex" in shown["properties"]["syllables"]["items"]["required"]
    assert "Array.from" in shown["description"]
