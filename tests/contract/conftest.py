"""The document store fixture: every contract test runs once per adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.store.base import DocumentStore
from shared.store.firestore import FirestoreDocumentStore
from shared.store.sqlite import SqliteDocumentStore
from tests.conftest import new_firestore_client, reset_firestore

STORE_ADAPTERS = ["sqlite", "firestore"]


@pytest.fixture(params=STORE_ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    """A fresh, empty document store of each adapter."""
    if request.param == "sqlite":
        adapter: DocumentStore = SqliteDocumentStore(tmp_path / "store.sqlite3")
    else:
        emulator = request.getfixturevalue("firestore_emulator")
        reset_firestore(emulator)
        adapter = FirestoreDocumentStore(new_firestore_client())
    try:
        yield adapter
    finally:
        adapter.close()
