"""The API description equals the committed golden copy (``functions/openapi.json``).

A re-layout of the code must leave it identical; an intended API change rewrites it with
``python -m tests.support.openapi_snapshot`` and shows the change in the diff. The
``openapi`` function serves that file, so this also keeps what it serves current.
"""

from __future__ import annotations

from tests.support.openapi_snapshot import SNAPSHOT, current_document, render


def test_openapi_document_equals_the_committed_snapshot(platform):
    assert render(current_document()) == SNAPSHOT.read_text(encoding="utf-8"), (
        "The OpenAPI document changed: if intended, run "
        "`python -m tests.support.openapi_snapshot` and commit functions/openapi.json"
    )
