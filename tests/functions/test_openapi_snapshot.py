"""The API description equals the committed golden copy (``tests/data/openapi.json``).

A re-layout of the code must leave it identical; an intended API change rewrites it with
``python -m tests.support.openapi_snapshot`` and shows the change in the diff.
"""

from __future__ import annotations

from tests.support.openapi_snapshot import SNAPSHOT, current_document, render


def test_openapi_document_equals_the_committed_snapshot(platform):
    assert render(current_document()) == SNAPSHOT.read_text(encoding="utf-8"), (
        "The OpenAPI document changed: if intended, run "
        "`python -m tests.support.openapi_snapshot` and commit tests/data/openapi.json"
    )
