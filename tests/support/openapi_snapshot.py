"""The committed OpenAPI document: a golden copy that makes every API change show in review.

``python -m tests.support.openapi_snapshot`` rewrites ``functions/openapi.json`` from the
routes; run it only for an intended API change and commit the diff with that change. The
``openapi`` function serves that file as it is (see ``functions.openapi``).
"""

from __future__ import annotations

import json
from typing import Any

from functions.openapi import DOCUMENT as SNAPSHOT
from functions.openapi import build_document


def current_document() -> dict[str, Any]:
    """Return the OpenAPI document the deployed functions describe today."""
    return build_document()


def render(document: dict[str, Any]) -> str:
    """Return ``document`` as the stable text kept in the snapshot."""
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main() -> None:
    """Rewrite the snapshot from the current routes."""
    SNAPSHOT.write_text(render(current_document()), encoding="utf-8")


if __name__ == "__main__":
    main()
