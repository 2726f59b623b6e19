"""Terraform deploys exactly the functions the code declares.

``infra/functions.json`` is the function map Terraform reads (``jsondecode(file(...))`` in
infra/functions.tf); ``functions.FUNCTIONS`` is what the gateway mounts and ``main.py``
exports. A function added to one and not the other would be either never deployed or
deployed without code, so these tests hold the two together, along with the few rules
Terraform itself can only report at apply time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from functions_framework import _function_registry

from functions import FUNCTIONS, FunctionSpec

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

# Keys of the maps in infra/main.tf and infra/secrets.tf that functions.json refers to.
BUCKETS = {"models", "audio", "samples", "backups"}
QUEUES = {"default", "synthesis", "sync"}
SECRETS = {"elevenlabs", "azure", "openai"}
MAX_TIMEOUT = {"http": 3600, "storage": 540}
INGRESS = {"ALLOW_INTERNAL_AND_GCLB", "ALLOW_INTERNAL_ONLY", "ALLOW_ALL"}


def _terraform_functions() -> dict[str, dict[str, Any]]:
    document = json.loads((INFRA / "functions.json").read_text(encoding="utf-8"))
    functions: dict[str, dict[str, Any]] = document["functions"]
    return functions


def _expected_entry_point(spec: FunctionSpec) -> str:
    # A function name may hold dashes; the Python entry point main.py exports cannot.
    return getattr(spec, "entry_point", None) or spec.name.replace("-", "_")


def test_terraform_deploys_exactly_the_declared_functions() -> None:
    assert set(_terraform_functions()) == {spec.name for spec in FUNCTIONS}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_function_keeps_its_entry_point_and_trigger(spec: FunctionSpec) -> None:
    deployed = _terraform_functions()[spec.name]

    assert deployed["entry_point"] == _expected_entry_point(spec)
    assert deployed["trigger"] == spec.trigger


# How Cloud Functions invokes each trigger kind, as functions-framework registers it.
SIGNATURE_TYPES = {"http": "http", "storage": "cloudevent"}


@pytest.mark.parametrize("name", sorted(_terraform_functions()))
def test_main_resolves_every_entry_point_as_the_runtime_does(name: str) -> None:
    # The runtime builds its app from main.py (``functions_framework.create_app``: a new
    # Flask app, main.py loaded into it, the entry point looked up by name) and needs a
    # plain function registered with the trigger's signature type. Loading main.py by hand
    # would register its error handler on whichever app an earlier test built (an error
    # once that app has served a request).
    deployed = _terraform_functions()[name]
    app = functions_framework.create_app(deployed["entry_point"], str(REPO / "main.py"))
    assert app.name == deployed["entry_point"]

    registered = _function_registry.REGISTRY_MAP[deployed["entry_point"]]
    assert registered == SIGNATURE_TYPES[deployed["trigger"]]


@pytest.mark.parametrize("name", sorted(_terraform_functions()))
def test_function_settings_are_deployable(name: str) -> None:
    function = _terraform_functions()[name]

    # Its service account is "fn-<name>", and account ids take 6 to 30 characters.
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,25}[a-z0-9]", name), "3-27 lower-case letters, digits, -"
    assert 0 < function["timeout_seconds"] <= MAX_TIMEOUT[function["trigger"]]
    assert re.fullmatch(r"\d+(Mi|Gi|M|G)", function["memory"])
    assert function["max_instances"] >= 1
    assert function["concurrency"] >= 1
    assert set(function["buckets"]) <= BUCKETS
    assert set(function["queues"]) <= QUEUES
    assert set(function["secrets"]) <= SECRETS
    if function["trigger"] == "storage":
        assert function["trigger_bucket"] in BUCKETS
        assert not function.get("public", False), "only HTTP functions can be public"
        assert function["ingress"] == "ALLOW_INTERNAL_ONLY", "Eventarc is its only caller"
    else:
        assert "trigger_bucket" not in function
        assert isinstance(function["public"], bool)
        # From the internet only through the front door; ALLOW_ALL needs a written reason.
        assert function["ingress"] in INGRESS, function["ingress"]
        if function["ingress"] == "ALLOW_ALL":
            assert function.get("ingress_reason"), "say why it bypasses the front door"


def test_storage_triggers_listen_to_the_bucket_the_code_names() -> None:
    # bucket_setting is a Settings field such as "samples_bucket"; Terraform's key is "samples".
    wanted = {
        spec.name: (spec.bucket_setting or "").removesuffix("_bucket")
        for spec in FUNCTIONS
        if spec.trigger == "storage"
    }
    deployed = {
        name: function.get("trigger_bucket")
        for name, function in _terraform_functions().items()
        if function["trigger"] == "storage"
    }
    assert deployed == wanted


def test_terraform_reads_the_function_map() -> None:
    functions_tf = (INFRA / "functions.tf").read_text(encoding="utf-8")

    assert 'jsondecode(file("${path.module}/functions.json"))' in functions_tf


def test_bucket_queue_and_secret_keys_match_terraform() -> None:
    main_tf = (INFRA / "main.tf").read_text(encoding="utf-8")
    secrets_tf = (INFRA / "secrets.tf").read_text(encoding="utf-8")

    def map_keys(text: str, local: str) -> set[str]:
        block = re.search(rf"{local} = \{{(.*?)\n  \}}", text, re.DOTALL)
        assert block, f"locals.{local} not found"
        return set(re.findall(r"^\s+(\w+)\s+=", block.group(1), re.MULTILINE))

    assert map_keys(main_tf, "bucket_names") == BUCKETS
    assert map_keys(main_tf, "queue_names") == QUEUES
    assert map_keys(secrets_tf, "provider_secrets") == SECRETS
