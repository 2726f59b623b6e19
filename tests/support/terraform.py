"""Reading one resource of the Terraform module as text (the test venv has no HCL parser)."""

from __future__ import annotations

import re
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"


def resource_block(file: str, kind: str, name: str) -> str:
    """Return the text of ``resource "kind" "name" { ... }`` in ``infra/<file>``, up to the
    next resource (or the end of the file)."""
    text = (INFRA / file).read_text(encoding="utf-8")
    start = text.index(f'resource "{kind}" "{name}" {{')
    following = text.find("\nresource ", start + 1)
    return text[start : following if following != -1 else len(text)]


def string_attribute(block: str, name: str) -> str:
    """Return the first ``name = "..."`` string of ``block``, its escapes resolved."""
    found = re.search(rf'^\s*{name}\s*=\s*"((?:[^"\\]|\\.)*)"\s*$', block, re.MULTILINE)
    assert found is not None, f"no {name} in\n{block}"
    return re.sub(r"\\(.)", r"\1", found[1])
