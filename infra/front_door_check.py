"""Offline check: the front door reaches every function, and nothing else reaches them.

``terraform plan`` needs the real provider, so this reads what the plan would be built
from: ``functions.json`` (the functions, kept equal to ``functions.FUNCTIONS`` by
tests/infra), ``front_door.json`` (the routes, generated from the same list), the
scheduled jobs and the ``.tf`` files. Run by infra/check.sh with the .venv-infra
interpreter (python-hcl2 comes with checkov), from the repository root:
``python -m infra.front_door_check infra``. Exits 1 listing every problem.

It proves four things:

* coverage: every HTTP function and the session service have a backend, and every
  backend has a route; storage-triggered functions have none (Eventarc delivers to them);
* wiring: Terraform builds one serverless NEG per backend, one backend service per NEG
  behind the Cloud Armor policy, and the URL map's route rules from ``front_door.json``;
  HTTPS serves that URL map and plain HTTP only redirects;
* exposure: no function or Cloud Run service takes internet traffic except through the
  load balancer, unless its entry says why (``ingress_reason`` in functions.json, or a
  ``# internet-facing: <why>`` comment inside the resource);
* triggers: every scheduled job's path routes to the function Cloud Scheduler calls, and
  every storage trigger names a bucket.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2  # type: ignore[import-not-found]  # only .venv-infra has it (checkov's)

from infra.front_door import backend_for

BEHIND_LOAD_BALANCER = {"ALLOW_INTERNAL_AND_GCLB", "ALLOW_INTERNAL_ONLY"}
CLOUD_RUN_BEHIND_LOAD_BALANCER = {
    "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "INGRESS_TRAFFIC_INTERNAL_ONLY",
}
CLOUD_RUN_V1_BEHIND_LOAD_BALANCER = {"internal", "internal-and-cloud-load-balancing"}
EXEMPTION = re.compile(r"#\s*internet-facing:\s*\S")
MATCH_KINDS = ("full_path_match", "prefix_match", "path_template_match")
MAX_PRIORITY = 2**31 - 1


@dataclass
class Resource:
    """One resource block: its type, name, parsed body and source lines."""

    type: str
    name: str
    body: dict[str, Any]
    text: str

    @property
    def address(self) -> str:
        """Return ``type.name``."""
        return f"{self.type}.{self.name}"


@dataclass
class Module:
    """What the check reads from an infra directory."""

    functions: dict[str, dict[str, Any]]
    front_door: dict[str, Any]
    scheduled_jobs: dict[str, dict[str, Any]]
    resources: list[Resource]
    locals: dict[str, str]

    def of_type(self, kind: str) -> list[Resource]:
        """Return the resources of one type."""
        return [resource for resource in self.resources if resource.type == kind]

    def get(self, address: str) -> Resource | None:
        """Return the resource at ``address``, if declared."""
        return next((r for r in self.resources if r.address == address), None)


def _one(value: Any) -> Any:
    # python-hcl2 wraps every attribute and block in a list.
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _attribute(body: dict[str, Any], *path: str) -> Any:
    value: Any = body
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = _one(value[key])
    return value


def _dynamic(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    for block in body.get("dynamic", []):
        if name in block:
            found: dict[str, Any] = block[name]
            return found
    return None


def read_module(directory: Path) -> Module:
    """Return the functions, routes, jobs, resources and locals under ``directory``."""
    resources: list[Resource] = []
    local_values: dict[str, str] = {}
    for path in sorted(directory.glob("*.tf")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        parsed = hcl2.loads(text)
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    start, end = body["__start_line__"], body["__end_line__"]
                    source = "\n".join(lines[start - 1 : end])
                    resources.append(Resource(kind, name, body, source))
        for block in parsed.get("locals", []):
            local_values.update(
                {key: str(_one(value)) for key, value in block.items() if not key.startswith("__")}
            )

    def document(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((directory / name).read_text(encoding="utf-8"))
        return loaded

    return Module(
        functions=document("functions.json")["functions"],
        front_door=document("front_door.json"),
        scheduled_jobs=document("scheduled_jobs.json")["jobs"],
        resources=resources,
        locals=local_values,
    )


def coverage_problems(module: Module) -> Iterator[str]:
    """Yield every function, service or route without its counterpart."""
    yield from _function_coverage(module)
    yield from _backend_coverage(module)
    yield from _route_problems(module)


def _function_coverage(module: Module) -> Iterator[str]:
    backends: dict[str, dict[str, Any]] = module.front_door["backends"]
    for name, function in module.functions.items():
        if function["trigger"] == "http" and backends.get(name, {}).get("kind") != "function":
            yield f"function {name}: no front-door backend (run python -m infra.front_door)"
        if function["trigger"] != "http" and name in backends:
            yield f"function {name}: a {function['trigger']} trigger has no URL to route"


def _backend_coverage(module: Module) -> Iterator[str]:
    backends: dict[str, dict[str, Any]] = module.front_door["backends"]
    routed = {route["backend"] for route in module.front_door["routes"]}
    sessions = module.get("google_cloud_run_v2_service.sessions")
    session_name = str(_attribute(sessions.body, "name")) if sessions else ""
    if backends.get(session_name, {}).get("kind") != "cloud_run":
        yield f"Cloud Run service {session_name or 'sessions'}: no front-door backend"
    for name, backend in backends.items():
        if backend["kind"] == "function" and name not in module.functions:
            yield f"backend {name}: functions.json deploys no such function"
        if backend["kind"] == "cloud_run" and name != session_name:
            yield f"backend {name}: infra/run.tf deploys no such Cloud Run service"
        if name not in routed:
            yield f"backend {name}: no route in the URL map"
    if module.front_door["default_backend"] not in backends:
        yield "the URL map's default backend is not a backend"


def _route_problems(module: Module) -> Iterator[str]:
    known = set(module.front_door["backends"]) | {module.front_door["health_backend"]}
    routes: list[dict[str, Any]] = module.front_door["routes"]
    priorities = [route["priority"] for route in routes]
    if len(set(priorities)) != len(priorities):
        yield "routes: priorities must be unique"
    for route in routes:
        where = f"route {route['priority']} ({route.get('prefix')})"
        if route["backend"] not in known:
            yield f"{where}: unknown backend {route['backend']}"
        if not 0 <= route["priority"] <= MAX_PRIORITY:
            yield f"{where}: priority out of range"
        for rule in route["match_rules"]:
            if sum(rule.get(kind) is not None for kind in MATCH_KINDS) != 1:
                yield f"{where}: each match rule needs exactly one path condition"
    default = module.front_door["default_backend"]
    for test in module.front_door["tests"]:
        routed = backend_for(module.front_door, test["path"]) or default
        if test["backend"] not in known or routed != test["backend"]:
            yield f"URL map test {test['path']}: expects {test['backend']}, routed to {routed}"


# What makes every backend reachable, by resource and attribute (dotted for nested blocks):
# a NEG per backend, a backend service per NEG behind Cloud Armor, HTTPS to the URL map.
_WIRING: dict[str, dict[str, str]] = {
    "google_compute_region_network_endpoint_group.front_door": {
        "for_each": "${local.front_door_backends}",
        "network_endpoint_type": "SERVERLESS",
        "cloud_run.service": "${local.front_door_cloud_run[each.key]}",
    },
    "google_compute_backend_service.front_door": {
        "for_each": "${google_compute_region_network_endpoint_group.front_door}",
        "backend.group": "${each.value.id}",
        "load_balancing_scheme": "EXTERNAL_MANAGED",
        "security_policy": "${google_compute_security_policy.front_door.id}",
    },
    "google_compute_url_map.front_door": {
        "default_service": "${local.front_door_services[local.front_door.default_backend]}",
    },
    "google_compute_target_https_proxy.front_door": {
        "url_map": "${google_compute_url_map.front_door.id}",
    },
    "google_compute_global_forwarding_rule.https": {
        "target": "${google_compute_target_https_proxy.front_door.id}",
        "port_range": "443",
    },
    "google_compute_global_forwarding_rule.http": {
        "target": "${google_compute_target_http_proxy.front_door_redirect.id}",
    },
    "google_compute_target_http_proxy.front_door_redirect": {
        "url_map": "${google_compute_url_map.front_door_redirect.id}",
    },
}

_LOCALS = {
    "front_door": '${jsondecode(file("${path.module}/front_door.json"))}',
    # Only the session service may be left out, and only while it has no image.
    "front_door_backends": "${{for name , backend in local.front_door.backends : name => "
    'backend if backend.kind == "function" || var.session_image != ""}}',
}


def wiring_problems(module: Module) -> Iterator[str]:
    """Yield every place where Terraform stops building the front door from the JSON."""
    for name, expression in _LOCALS.items():
        if module.locals.get(name) != expression:
            yield f"local.{name} must be {expression}"
    for address, attributes in _WIRING.items():
        resource = module.get(address)
        for path, expected in attributes.items():
            if resource is None or _attribute(resource.body, *path.split(".")) != expected:
                yield f"{address}: {path} must be {expected}"
    yield from _route_rule_problems(module)
    redirect = module.get("google_compute_url_map.front_door_redirect")
    to_https = (
        _attribute(redirect.body, "default_url_redirect", "https_redirect") if redirect else None
    )
    if to_https is not True:
        yield "google_compute_url_map.front_door_redirect: plain HTTP must redirect to HTTPS"
    for rule in module.of_type("google_compute_global_forwarding_rule"):
        if rule.name not in ("https", "http"):
            yield f"{rule.address}: a second way in from the internet"


def _route_rule_problems(module: Module) -> Iterator[str]:
    where = "google_compute_url_map.front_door"
    url_map = module.get(where)
    matcher = _attribute(url_map.body, "path_matcher") if url_map else None
    routes = _dynamic(matcher, "route_rules") if isinstance(matcher, dict) else None
    if routes is None or _one(routes["for_each"]) != "${local.front_door_routes}":
        yield f"{where}: route_rules must come from local.front_door_routes"
        return
    content = _one(routes["content"])
    if _one(content.get("service")) != "${local.front_door_services[route_rules.value.backend]}":
        yield f"{where}: a route rule's service must be its backend's"
    matches = _dynamic(content, "match_rules")
    rule = _one(matches["content"]) if matches else {}
    for kind in MATCH_KINDS:
        if _one(rule.get(kind)) != f"${{match_rules.value.{kind}}}":
            yield f"{where}: match rules must copy {kind}"


def _exempt(resource: Resource) -> bool:
    return EXEMPTION.search(resource.text) is not None


def exposure_problems(module: Module) -> Iterator[str]:
    """Yield every function or service the internet reaches around the front door."""
    for name, function in module.functions.items():
        ingress = function.get("ingress")
        if function["trigger"] != "http" and ingress != "ALLOW_INTERNAL_ONLY":
            yield f"function {name}: a {function['trigger']} trigger takes ALLOW_INTERNAL_ONLY"
        elif ingress not in BEHIND_LOAD_BALANCER and not function.get("ingress_reason"):
            yield f"function {name}: ingress {ingress} without an ingress_reason"
    for resource in module.of_type("google_cloudfunctions2_function"):
        ingress = _attribute(resource.body, "service_config", "ingress_settings")
        from_json = ingress == "${each.value.ingress}" and _attribute(
            resource.body, "for_each"
        ) in ("${local.functions}",)
        if not (from_json or ingress in BEHIND_LOAD_BALANCER or _exempt(resource)):
            yield f"{resource.address}: ingress_settings {ingress} reaches past the front door"
    for resource in module.of_type("google_cloudfunctions_function"):
        ingress = _attribute(resource.body, "ingress_settings")
        if ingress not in BEHIND_LOAD_BALANCER and not _exempt(resource):
            yield f"{resource.address}: ingress_settings {ingress} reaches past the front door"
    for resource in module.of_type("google_cloud_run_v2_service"):
        ingress = _attribute(resource.body, "ingress")
        if ingress not in CLOUD_RUN_BEHIND_LOAD_BALANCER and not _exempt(resource):
            yield f"{resource.address}: ingress {ingress} reaches past the front door"
    for resource in module.of_type("google_cloud_run_service"):
        annotations = _attribute(resource.body, "metadata", "annotations") or {}
        ingress = annotations.get("run.googleapis.com/ingress")
        if ingress not in CLOUD_RUN_V1_BEHIND_LOAD_BALANCER and not _exempt(resource):
            yield f"{resource.address}: ingress {ingress} reaches past the front door"


def trigger_problems(module: Module) -> Iterator[str]:
    """Yield every scheduled job or storage trigger that would not reach its function."""
    url = module.locals.get("tasks_base_url", "")
    target = url.rstrip("/").rsplit("/", 1)[-1]
    if target not in module.functions:
        yield f"local.tasks_base_url {url} names no deployed function"
    for name, job in module.scheduled_jobs.items():
        routed = backend_for(module.front_door, job["path"])
        if routed != target:
            yield f"scheduled job {name}: {job['path']} is served by {routed}, not {target}"
    for name, function in module.functions.items():
        if function["trigger"] == "storage" and not function.get("trigger_bucket"):
            yield f"function {name}: a storage trigger without trigger_bucket"


def main(directory: str) -> int:
    """Check the infra directory ``directory``; return the process exit status."""
    module = read_module(Path(directory))
    problems = [
        *coverage_problems(module),
        *wiring_problems(module),
        *exposure_problems(module),
        *trigger_problems(module),
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(
        f"ok: {len(module.front_door['backends'])} backends, "
        f"{len(module.front_door['routes'])} routes; every function reachable only "
        f"through the front door; {len(module.scheduled_jobs)} scheduled jobs routed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra"))
