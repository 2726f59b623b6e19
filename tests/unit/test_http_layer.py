"""The HTTP layer as a client sees it: error bodies, statuses, request ids, auth, parsing."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime

import flask
import pytest
from werkzeug.exceptions import BadRequest

from shared import errors
from shared.auth import DevTokenVerifier
from shared.bootstrap import Container
from shared.config import Settings
from shared.http import (
    ERROR_STATUS,
    Api,
    Reply,
    RequestContext,
    http_exception_response,
    parse,
    status_for,
)
from shared.log import CloudLoggingFormatter
from shared.model import RequestModel

SECRET = b"s" * 32


class Echo(RequestModel):
    name: str
    count: int = 1


@pytest.fixture
def container(tmp_path) -> Container:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        dev_auth_secret=SECRET.decode(),
        max_request_bytes=2048,
        project="proj-1",
    )
    return Container(settings)


@pytest.fixture
def verifier(container) -> DevTokenVerifier:
    return DevTokenVerifier(SECRET, audience=container.settings.project)


@pytest.fixture
def client(container):
    api = Api("demo", container=lambda: container)

    @api.route("/demo/echo", methods=["POST"])
    def echo(ctx: RequestContext) -> Reply:
        body = ctx.body(Echo)
        return Reply({"name": body.name, "count": body.count, "user": ctx.user_id}, status=201)

    @api.route("/demo/items/<item_id>", methods=["GET"])
    def item(ctx: RequestContext, item_id: str) -> dict:
        query = ctx.query(Echo)
        return {"id": item_id, "name": query.name, "count": query.count}

    @api.route("/demo/admin", methods=["GET"], access="admin")
    def admin(ctx: RequestContext) -> dict:
        return {"ok": True}

    @api.route("/demo/boom", methods=["GET"])
    def boom(ctx: RequestContext) -> dict:
        raise RuntimeError("database password is hunter2")

    @api.route("/demo/busy", methods=["GET"])
    def busy(ctx: RequestContext) -> dict:
        raise errors.ServiceUnavailableError("Provider down", retry_after=7)

    @api.route("/demo/health", methods=["GET"], access="public")
    def health(ctx: RequestContext) -> dict:
        return {"status": "ok"}

    app = flask.Flask("demo")
    app.add_url_rule(
        "/<path:path>",
        "all",
        lambda path: api.handle(flask.request),
        methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
    )
    return app.test_client()


def auth(verifier, user="ann", admin=False):
    return {"Authorization": f"Bearer {verifier.mint(user, admin=admin)}"}


def assert_error_body(response, status, code):
    assert response.status_code == status
    body = response.get_json()
    assert set(body) >= {"error", "code", "timestamp", "requestId"}
    assert body["code"] == code
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert body["requestId"] == response.headers["X-Request-Id"]
    return body


def _every_error_class():
    # Import every module so that capabilities' and ports' own errors are subclasses too.
    import importlib
    import pkgutil

    import functions
    import shared

    for package in (shared, functions):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    return set(subclasses(errors.PlatformError))


def test_every_error_class_maps_to_a_status_through_a_base_kind():
    classes = _every_error_class()
    assert len(classes) > 40
    # The table names kinds only: base classes of shared.errors, never a capability's error.
    assert {cls.__module__ for cls in ERROR_STATUS} == {"shared.errors"}
    for cls in ERROR_STATUS:
        assert cls is errors.PlatformError or cls.__bases__ == (errors.PlatformError,)
    statuses = {cls.__name__: status_for(cls) for cls in classes}
    assert all(100 <= status < 600 for status in statuses.values())
    expected = {
        "UserNotFoundError": 404,
        "VoiceModelNotFoundError": 404,
        "DocumentNotFoundError": 404,
        "VoiceNotFoundError": 404,
        "VoiceSyncJobNotFoundError": 404,
        "DeadLetterNotFoundError": 404,
        "UnknownProviderError": 404,
        "ObjectAlreadyExistsError": 409,
        "PreconditionFailedError": 412,
        "TaskAlreadyExistsError": 409,
        "UnknownQueueError": 400,
        "ProviderError": 502,
        "ProviderRejectedError": 502,
        "ProviderUnavailableError": 503,
        "ProviderNotConfiguredError": 422,
        "TransactionContentionError": 503,
        "TextTooLongError": 413,
        "ConfigurationError": 500,
    }
    assert {name: statuses[name] for name in expected} == expected
    for name in ("UserNotFoundError", "VoiceModelNotFoundError", "DocumentNotFoundError"):
        assert issubclass(getattr(errors, name), errors.NotFoundError)


def test_the_http_edge_imports_no_capability():
    import ast
    from pathlib import Path

    import shared.http

    tree = ast.parse(Path(shared.http.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    capabilities = ("users", "voice_models", "catalog", "synthesis", "files", "samples")
    assert not [m for m in imported if m.split(".")[1:2] and m.split(".")[1] in capabilities]
    assert not [m for m in imported if m.startswith(("shared.blobs", "shared.providers"))]


def test_success_with_body_and_status(client, verifier):
    response = client.post("/demo/echo", json={"name": "x"}, headers=auth(verifier))
    assert response.status_code == 201
    assert response.get_json() == {"name": "x", "count": 1, "user": "ann"}
    assert response.headers["X-Request-Id"].startswith("req-")


def test_request_id_is_propagated_and_echoed(client, verifier):
    headers = {**auth(verifier), "X-Request-Id": "abc-123"}
    response = client.post("/demo/echo", json={}, headers=headers)
    assert response.headers["X-Request-Id"] == "abc-123"
    assert response.get_json()["requestId"] == "abc-123"


def test_cloud_trace_header_becomes_the_request_id(client, verifier):
    trace = "0123456789abcdef0123456789abcdef"
    headers = {**auth(verifier), "X-Cloud-Trace-Context": f"{trace}/42;o=1"}
    response = client.get("/demo/items/1?name=a", headers=headers)
    assert response.headers["X-Request-Id"] == trace


def test_hostile_request_ids_are_replaced(client, verifier):
    headers = {**auth(verifier), "X-Request-Id": "bad id <script>" + "x" * 200}
    response = client.get("/demo/items/1?name=a", headers=headers)
    assert response.headers["X-Request-Id"].startswith("req-")


def test_validation_failure_is_400_with_field_details(client, verifier):
    response = client.post("/demo/echo", json={"count": "many"}, headers=auth(verifier))
    body = assert_error_body(response, 400, "VALIDATION_ERROR")
    fields = {d["field"] for d in body["details"]}
    assert fields == {"name", "count"}


def test_unknown_query_parameters_are_400(client, verifier):
    response = client.get("/demo/items/1?name=a&sort=evil", headers=auth(verifier))
    body = assert_error_body(response, 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "sort"


def test_a_refused_key_is_named_cut_short_and_a_lone_surrogate_by_its_escape(client, verifier):
    # A key is the caller's own text: a field path repeats it as any echoed value is.
    long_key = "k" * 3000
    response = client.get(f"/demo/items/1?name=a&{long_key}=1", headers=auth(verifier))
    body = assert_error_body(response, 400, "VALIDATION_ERROR")
    assert [detail["field"] for detail in body["details"]] == [errors.echoed(long_key)]

    # No JSON body or query string holds a lone surrogate (their parsers refuse or replace
    # it), but data parsed in Python may: its key is named by its escape, as text.
    for key, field in [("\ud800", "\\ud800"), (long_key + "\udfff", errors.echoed(long_key))]:
        with pytest.raises(errors.InvalidRequestError) as refused:
            parse(Echo, {"name": "a", key: 1})
        details = refused.value.details or []
        assert [detail["field"] for detail in details] == [field]
        assert "lone surrogate" in details[0]["message"]
        json.dumps(details, ensure_ascii=False).encode("utf-8")  # no surrogate left to encode


def test_query_strings_are_parsed(client, verifier):
    response = client.get("/demo/items/7?name=a&count=3", headers=auth(verifier))
    assert response.get_json() == {"id": "7", "name": "a", "count": 3}


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "VALIDATION_ERROR"),
        ("[1, 2]", "application/json", 400, "VALIDATION_ERROR"),
        ('{"name": "x"}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ('{"name": "' + "x" * 4000 + '"}', "application/json", 413, "PAYLOAD_TOO_LARGE"),
    ],
)
def test_malformed_bodies_get_clear_errors(client, verifier, data, content_type, status, code):
    response = client.post(
        "/demo/echo", data=data, content_type=content_type, headers=auth(verifier)
    )
    assert_error_body(response, status, code)


@pytest.mark.parametrize(
    "data", [b"{not json", b'{"name": "x"', b'{"name": "\xff"}', b'{"name": "\\ud800"}']
)
def test_a_body_that_is_not_json_says_so(client, verifier, data):
    response = client.post(
        "/demo/echo", data=data, content_type="application/json", headers=auth(verifier)
    )
    body = assert_error_body(response, 400, "VALIDATION_ERROR")
    assert body["error"] == "Request body is not valid JSON"


def test_an_object_after_whitespace_is_an_object(client, verifier):
    response = client.post(
        "/demo/echo",
        data=' \n {"name": "x"}',
        content_type="application/json",
        headers=auth(verifier),
    )
    assert response.status_code == 201, response.get_json()


def test_a_body_over_the_limit_without_a_length_is_refused(client, verifier):
    # Chunked: no Content-Length to refuse up front, so the read itself must stop at the
    # limit (werkzeug then hands over the truncated body, which is not JSON: a 400).
    response = client.post(
        "/demo/echo",
        input_stream=io.BytesIO(b'{"name": "' + b"x" * 4000 + b'"}'),
        content_type="application/json",
        headers={**auth(verifier), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as a server that de-chunks
    )
    assert response.status_code in (400, 413), response.get_json()
    assert response.get_json()["code"] in ("VALIDATION_ERROR", "PAYLOAD_TOO_LARGE")


def test_a_bad_request_the_framework_answers_is_a_400():
    with flask.Flask(__name__).test_request_context("/users"):
        response = http_exception_response(BadRequest())
    assert response.status_code == 400
    assert response.get_json()["code"] == "VALIDATION_ERROR"


def test_unknown_route_and_method(client, verifier):
    assert_error_body(client.get("/demo/nowhere", headers=auth(verifier)), 404, "NOT_FOUND")
    response = client.delete("/demo/echo", headers=auth(verifier))
    assert_error_body(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_unknown_errors_are_500_without_internals(client, verifier, caplog):
    with caplog.at_level(logging.ERROR):
        response = client.get("/demo/boom", headers=auth(verifier))
    body = assert_error_body(response, 500, "INTERNAL_ERROR")
    assert "hunter2" not in json.dumps(body)
    assert "RuntimeError" not in json.dumps(body)
    assert any("hunter2" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_retry_after_is_sent_for_unavailable(client, verifier):
    response = client.get("/demo/busy", headers=auth(verifier))
    assert_error_body(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.token", "Bearer a b"],
)
def test_routes_need_a_valid_bearer_token(client, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/demo/items/1?name=a", headers=headers)
    assert_error_body(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_signed_with_another_secret_is_401(client, container):
    forged = DevTokenVerifier(b"x" * 32, audience=container.settings.project).mint("ann")
    response = client.get("/demo/items/1?name=a", headers={"Authorization": f"Bearer {forged}"})
    assert_error_body(response, 401, "UNAUTHENTICATED")


def test_admin_routes_need_the_admin_claim(client, verifier):
    assert_error_body(client.get("/demo/admin", headers=auth(verifier)), 403, "ACCESS_DENIED")
    response = client.get("/demo/admin", headers=auth(verifier, admin=True))
    assert response.status_code == 200


def test_public_routes_need_no_token(client):
    assert client.get("/demo/health").get_json() == {"status": "ok"}


def test_logs_are_cloud_logging_json_with_trace_and_request_id(client, verifier, capsys):
    handler = logging.StreamHandler()
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    trace = "0123456789abcdef0123456789abcdef"
    token = auth(verifier)
    try:
        client.get(
            "/demo/items/1?name=a",
            headers={**token, "X-Cloud-Trace-Context": f"{trace}/7;o=1", "X-Request-Id": "r-1"},
        )
    finally:
        root.removeHandler(handler)
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    entry = next(line for line in lines if line["message"].startswith("GET /demo/items/1"))
    assert entry["severity"] == "INFO"
    assert entry["requestId"] == "r-1"
    assert entry["logging.googleapis.com/trace"] == f"projects/proj-1/traces/{trace}"
    assert entry["logging.googleapis.com/spanId"] == "7"
    assert entry["httpRequest"]["status"] == 200
    assert token["Authorization"].split()[1] not in json.dumps(lines)


def test_a_route_added_later_is_matched_though_earlier_matches_are_remembered(container):
    api = Api("late", container=lambda: container)

    @api.route("/late/<name>", methods=["GET"], access="public")
    def anything(ctx: RequestContext, name: str) -> dict:
        return {"route": "any", "name": name}

    app = flask.Flask("late")
    app.add_url_rule("/<path:path>", "all", lambda path: api.handle(flask.request))
    client = app.test_client()
    assert client.get("/late/special").get_json() == {"route": "any", "name": "special"}
    assert client.get("/late/special").get_json()["route"] == "any"  # now remembered

    @api.route("/late/special", methods=["GET"], access="public")
    def special(ctx: RequestContext) -> dict:
        return {"route": "special"}

    assert client.get("/late/special").get_json() == {"route": "special"}
    assert client.get("/late/other").get_json() == {"route": "any", "name": "other"}
