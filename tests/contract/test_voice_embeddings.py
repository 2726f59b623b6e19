"""Speaker embeddings on both document stores: the same neighbours, scopes and changes.

Production searches Firestore with ``find_nearest`` (here its emulator), the embedded store
with an exact numpy search; the samples repository must get the same answer from both.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.samples.model import SampleStatus, VoiceSample
from shared.samples.repository import (
    VOICE_EMBEDDINGS,
    VOICE_SAMPLES,
    SampleRepository,
    embedding_document,
    scope_filters,
)


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(256)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def add(store, sample_id: str, user: str, vector: np.ndarray, *, public: bool = False) -> None:
    sample = VoiceSample(
        id=sample_id,
        user_id=user,
        name=sample_id,
        file_path=f"samples/{user}/{sample_id}",
        is_public=public,
        status=SampleStatus.READY,
    )
    store.set(VOICE_SAMPLES, sample_id, sample.to_document())
    store.set(VOICE_EMBEDDINGS, sample_id, embedding_document(sample, vector))


def test_nearest_embeddings_in_each_scope(store):
    add(store, "a1", "ann", unit(1, 0))
    add(store, "a2", "ann", unit(1, 0.2))
    add(store, "a3", "ann", unit(0, 1), public=True)
    add(store, "b1", "bob", unit(1, 0.1), public=True)
    add(store, "b2", "bob", unit(1, 0.05))
    repository = SampleRepository(store)
    query = list(unit(1, 0.01))

    own = repository.nearest(query, filters=scope_filters("own", "ann"), limit=3)
    public = repository.nearest(query, filters=scope_filters("public", "ann"), limit=3)

    assert [n.document.id for n in own] == ["a1", "a2", "a3"]
    assert own[0].distance == pytest.approx(1 - float(np.dot(unit(1, 0.01), unit(1, 0))), abs=1e-6)
    assert [n.document.id for n in public] == ["b1", "a3"]
    assert np.allclose(repository.embedding("a2"), unit(1, 0.2))


def test_a_sample_made_private_or_deleted_leaves_the_searches(store):
    add(store, "b1", "bob", unit(1, 0), public=True)
    repository = SampleRepository(store)
    changed = repository.change("b1", {"is_public": False, "language": "de-DE"})
    assert changed is not None
    assert (changed.is_public, changed.status) == (False, SampleStatus.READY)
    assert store.get(VOICE_EMBEDDINGS, "b1").data["language"] == "de-DE"
    assert (
        repository.nearest([1.0] + [0.0] * 255, filters=scope_filters("public", "x"), limit=5) == []
    )
    assert repository.delete("b1") is not None
    assert (
        repository.nearest([1.0] + [0.0] * 255, filters=scope_filters("own", "bob"), limit=5) == []
    )
    assert repository.delete("b1") is None
