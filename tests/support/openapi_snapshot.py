"""The committed OpenAPI document: a golden copy that makes every API change show in review.

``python -m tests.support.openapi_snapshot`` rewrites ``tests/data/openapi.json`` from the
routes; run it only for an intended API change and commit the diff with that change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "openapi.json"


def current_document() -> dict[str, Any]:
    """Return the OpenAPI document the deployed functions describe today."""
    from functions.openapi import build_openapi, http_apis

    return build_openapi(http_apis(), title="Voice platform API", version="1.0.0")


def render(document: dict[str, Any]) -> str:
    """Return ``document`` as the stable text kept in the snapshot."""
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main() -> None:
    """Rewrite the snapshot from the current routes."""
    SNAPSHOT.write_text(render(current_document()), encoding="utf-8")


if __name__ == "__main__":
    main()
