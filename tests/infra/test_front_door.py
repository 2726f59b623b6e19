"""The front door's URL map sends every path where the local gateway sends it.

``infra/front_door.json`` is what Terraform builds the URL map from; it is generated from
``functions.FUNCTIONS``. These tests hold the file to the code, and the URL map's routing
(priority order, full-path, prefix and path-template matches, evaluated as the load
balancer does) to the routing of the real ``local.gateway.Gateway``, path by path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from functions import FUNCTIONS, FunctionSpec
from infra.front_door import (
    DEFAULT_BACKEND,
    HEALTH_BACKEND,
    HEALTH_PATH,
    SESSION_SERVICE,
    ServiceRoutes,
    backend_for,
    build_document,
    expected_text,
)
from local.gateway import Gateway
from shared.bootstrap import Container
from shared.config import Settings
from shared.tasks.runtime import RUN_PATH

INFRA = Path(__file__).resolve().parents[2] / "infra"


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((INFRA / "front_door.json").read_text(encoding="utf-8"))
    return loaded


def test_front_door_json_is_generated_from_the_functions() -> None:
    assert (INFRA / "front_door.json").read_text(encoding="utf-8") == expected_text(), (
        "infra/front_door.json is stale: run `python -m infra.front_door` (it should be:)\n"
        + expected_text()
    )


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_http_function_has_a_backend_and_a_route_per_prefix(spec: FunctionSpec) -> None:
    document = _document()
    routed = {route["prefix"]: route["backend"] for route in document["routes"]}

    if spec.trigger != "http":
        assert spec.name not in document["backends"], "storage events arrive through Eventarc"
        return
    assert document["backends"][spec.name] == {"kind": "function", "prefixes": list(spec.prefixes)}
    assert spec.prefixes, "an HTTP function without a prefix is unreachable"
    assert {prefix: routed[prefix] for prefix in spec.prefixes} == dict.fromkeys(
        spec.prefixes, spec.name
    )


def test_the_session_service_and_health_have_their_routes() -> None:
    document = _document()

    assert document["backends"][SESSION_SERVICE.name]["kind"] == "cloud_run"
    assert backend_for(document, "/v1/sessions") == SESSION_SERVICE.name
    assert backend_for(document, "/v1/sessions/s1/webrtc/offer") == SESSION_SERVICE.name
    # Text to speech streamed over a WebSocket runs on the session service; the rest of
    # synthesis stays with the functions.
    assert backend_for(document, "/v1/synthesize/ws") == SESSION_SERVICE.name
    assert backend_for(document, "/synthesize") == "synthesis"
    assert backend_for(document, HEALTH_PATH) == HEALTH_BACKEND
    assert backend_for(document, HEALTH_PATH + "/x") is None
    assert document["default_backend"] == DEFAULT_BACKEND


@pytest.mark.parametrize(
    ("path", "backend"),
    [
        ("/voice-models", "voice-models"),
        ("/voice-models/m1", "voice-models"),
        ("/voice-models/m1/activate", "voice-model-activation"),
        ("/voice-models/m1/activate/extra", "voice-model-activation"),
        ("/voice-models/m1/activated", "voice-models"),
        ("/voice-models//activate", "voice-models"),
        ("/voice-models/user/u1/active", "voice-model-activation"),
        ("/voice-models/user/u1", "voice-models"),
        ("/voices", "voices"),
        ("/voices/sync", "sync-voices"),
        ("/voices/sync/jobs/j1", "sync-voices"),
        ("/voices/synced", "voices"),
        ("/voicesx", None),
        ("/v1/audio/speech", "openai-speech"),
        ("/", None),
    ],
)
def test_url_map_examples(path: str, backend: str | None) -> None:
    assert backend_for(_document(), path) == backend


def _probes(prefixes: list[str]) -> set[str]:
    probes = {"/", "", HEALTH_PATH, HEALTH_PATH + "/", "/no-such-route", "/v1", "/v1/"}
    for prefix in prefixes:
        filled = prefix.replace("*", "id1")
        parent = filled.rsplit("/", 1)[0] or "/"
        probes |= {
            filled,
            filled + "/",
            filled + "/sub",
            filled + "/sub/deeper",
            filled + "x",
            filled[:-1],
            parent,
            parent + "/other",
            prefix.replace("*", ""),
            prefix.replace("*", "id1/id2"),
            prefix.upper(),
        }
    return probes


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    """The real gateway over stub entry points: its routing, without the platform."""
    services = [
        FunctionSpec(name=service.name, module="stub", prefixes=service.prefixes)
        for service in (SESSION_SERVICE,)
    ]
    specs = [*FUNCTIONS, *services]
    source = tmp_path_factory.mktemp("gateway") / "front_door_stub_entry_points.py"
    source.write_text(
        "".join(f"def {spec.entry_point}(request):\n    return ''\n\n\n" for spec in specs)
    )
    settings = Settings(_env_file=None, environment="test").model_copy(update={"blobs": "gcp"})
    container = cast(Container, type("StubContainer", (), {"settings": settings})())
    return Gateway(container, specs, source=source)


def test_url_map_routes_every_probe_like_the_local_gateway(local_gateway: Gateway) -> None:
    document = _document()
    prefixes = [route["prefix"] for route in document["routes"]]
    disagreements = {}
    for path in sorted(_probes(prefixes)):
        # The gateway answers /healthz itself, as the front door's health backend does.
        expected = HEALTH_BACKEND if path == HEALTH_PATH else local_gateway.function_for(path)
        if (routed := backend_for(document, path)) != expected:
            disagreements[path] = {"url map": routed, "gateway": expected}

    assert not disagreements, json.dumps(disagreements, indent=2)


def test_cloud_tasks_and_scheduler_paths_reach_the_tasks_function() -> None:
    document = _document()
    # main.tf: VOICE_TASKS_BASE_URL is the tasks function's own URL; the function sees the
    # path after its name, as it would through the front door.
    main_tf = (INFRA / "main.tf").read_text(encoding="utf-8")
    assert 'cloudfunctions.net/tasks"' in main_tf

    assert backend_for(document, RUN_PATH) == "tasks"
    for job in Container(Settings(_env_file=None)).scheduled_jobs():
        assert backend_for(document, f"/scheduler/jobs/{job.name}/fire") == "tasks"


@pytest.mark.parametrize(
    "prefix", ["voices", "/voices/", "/voice-models/m*/activate", "/files/**", "/a/**/b"]
)
def test_prefixes_the_url_map_cannot_express_are_refused(prefix: str) -> None:
    spec = FunctionSpec(name="openapi", module="m", prefixes=(prefix,))

    with pytest.raises(ValueError, match="prefix"):
        build_document([spec], services=())


def test_a_prefix_claimed_twice_is_refused() -> None:
    specs = [
        FunctionSpec(name="openapi", module="m", prefixes=("/files",)),
        FunctionSpec(name="files", module="m", prefixes=("/files",)),
    ]

    with pytest.raises(ValueError, match="claimed twice"):
        build_document(specs, services=())


def test_a_storage_trigger_gets_no_backend_and_new_functions_flow_through() -> None:
    specs = [
        *FUNCTIONS,
        FunctionSpec(name="reports", module="m", prefixes=("/reports", "/reports/*/analysis")),
        FunctionSpec(
            name="report-uploaded",
            module="m",
            trigger="storage",
            bucket_setting="audio_bucket",
        ),
    ]
    document = build_document(specs, services=[ServiceRoutes("voice-sessions", ("/v1/sessions",))])

    assert "report-uploaded" not in document["backends"]
    assert backend_for(document, "/reports/r1/analysis") == "reports"
    assert backend_for(document, "/reports/r1") == "reports"
    assert {"path": "/reports/id1/analysis", "backend": "reports"} in document["tests"]


def test_cloud_armor_rate_limits_each_ip_and_the_allow_list_turns_others_away():
    terraform = (INFRA / "front_door.tf").read_text()
    start = terraform.index('resource "google_compute_security_policy" "front_door"')
    policy = terraform[start : terraform.index("\n}\n", start)]
    rules = policy.split("  rule {")[1:]
    assert len(rules) == 2
    throttle, last = rules
    assert 'action      = "throttle"' in throttle
    assert "src_ip_ranges = local.front_door_rate_limited_ranges" in throttle
    assert 'exceed_action  = "deny(429)"' in throttle
    assert 'enforce_on_key = "IP"' in throttle
    assert "count        = var.rate_limit_per_minute" in throttle
    assert "interval_sec = 60" in throttle
    # With an allow-list, only its ranges reach the rate limit; everyone else gets 403.
    assert (
        "front_door_rate_limited_ranges = length(var.allowed_source_ranges) > 0"
        ' ? var.allowed_source_ranges : ["*"]'
    ) in terraform
    assert 'action      = length(var.allowed_source_ranges) > 0 ? "deny(403)" : "allow"' in last
    assert "priority    = 2147483647" in last
