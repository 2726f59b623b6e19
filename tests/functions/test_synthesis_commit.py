"""A synthesis records what it did in one commit: all of it, or nothing.

Once the audio is uploaded, one transaction writes the user's file record (and storage
used), the cache entry made ready, the completed job and the voice model's use. Here that
commit fails (the real store, made to refuse it: the fault a Firestore outage gives) and
nothing is left half-done: no record, no storage counted, no entry naming the objects, no
job, no use, and the uploaded objects deleted again; the same request then renders afresh
and counts once. The streamed path commits the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.blobs.base import ObjectStorage
from shared.bootstrap import get_container
from shared.errors import ServiceUnavailableError
from shared.files.cache import SYNTHESIS_CACHE
from shared.files.repository import AUDIO_FILES
from shared.providers.base import ErrorCategory, ProviderRejectedError
from shared.store.base import DocumentStore, Query
from shared.synthesis.repository import SYNTHESIS_JOBS
from shared.users.storage import USERS
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import SENTENCE, create_model

ann = fx.ann
espeak = fx.espeak
synthesis_client = fx.synthesis_client

FINISH_COMMIT = "finish.<locals>.commit"


def refuse_commits(monkeypatch: pytest.MonkeyPatch, store: DocumentStore, qualname: str) -> None:
    """Make the store refuse the transactions run by the function named ``qualname``."""
    real = store.run_transaction

    def run(function: Callable[..., Any], **options: Any) -> Any:
        if function.__qualname__ == qualname:
            raise ServiceUnavailableError("The document store is unavailable")
        return real(function, **options)

    monkeypatch.setattr(store, "run_transaction", run)


def count(store: DocumentStore, collection: str) -> int:
    return store.count(Query(collection))


def audio_objects(blobs: ObjectStorage, bucket: str) -> list[str]:
    return [info.name for info in blobs.list(bucket, prefix="audio/").items]


def storage_used(store: DocumentStore, user_id: str) -> int:
    document = store.get(USERS, user_id)
    assert document is not None
    return int(document.data.get("storage_used_bytes", 0))


@pytest.mark.parametrize("path", ["/synthesize", "/synthesize/stream"])
def test_a_failed_commit_leaves_nothing_and_the_retry_counts_once(
    function_client, synthesis_client, ann, espeak, monkeypatch, path
):
    users = function_client("users")
    assert users.post("/users", json={"email": "ann@example.com"}, headers=ann).status_code == 201
    model = create_model(function_client("voice_models"), ann, "ann")
    container = get_container()
    store, blobs, bucket = container.store, container.blobs, container.settings.audio_bucket
    body = {"text": SENTENCE, "voice": model["id"]}
    refuse_commits(monkeypatch, store, FINISH_COMMIT)

    failed = synthesis_client.post(path, json=body, headers=ann)
    if path == "/synthesize":
        assert failed.status_code == 503
        assert failed.get_json()["code"] == "SERVICE_UNAVAILABLE"
    else:  # the audio went out before the commit: the stream ends without its last chunk
        with pytest.raises(ServiceUnavailableError):
            failed.get_data()

    rendered = espeak.calls  # (streamed: a call per piece)
    assert rendered >= 1
    for collection in (AUDIO_FILES, SYNTHESIS_JOBS, SYNTHESIS_CACHE):
        assert count(store, collection) == 0, collection
    assert audio_objects(blobs, bucket) == []
    assert storage_used(store, "ann") == 0
    models = function_client("voice_models")
    stats = models.get(f"/voice-models/{model['id']}/usage-stats", headers=ann).get_json()
    assert stats["usageCount"] == 0

    monkeypatch.undo()
    retried = synthesis_client.post("/synthesize", json=body, headers=ann)
    assert retried.status_code == 200, retried.get_json()
    done = retried.get_json()
    assert done["cacheHit"] is False  # rendered afresh: no entry was left half-published
    assert espeak.calls > rendered
    assert count(store, AUDIO_FILES) == count(store, SYNTHESIS_JOBS) == 1
    assert storage_used(store, "ann") == done["size"]
    record = store.get(AUDIO_FILES, done["audioFileId"])
    assert record is not None
    path = record.data["file_path"]
    assert sorted(audio_objects(blobs, bucket)) == [path, path + ".timestamps.json"]
    stats = models.get(f"/voice-models/{model['id']}/usage-stats", headers=ann).get_json()
    assert stats["usageCount"] == 1


def test_a_failed_render_leaves_no_claim_and_the_retry_renders_at_once(
    synthesis_client, ann, espeak, monkeypatch
):
    store = get_container().store
    body = {"text": SENTENCE, "voice": "espeak:en-US"}

    def refuse(request: Any) -> Any:
        raise ProviderRejectedError("refused", provider="espeak", category=ErrorCategory.PERMANENT)

    monkeypatch.setattr(espeak, "synthesize", refuse)
    failed = synthesis_client.post("/synthesize", json=body, headers=ann)
    assert failed.status_code == 502, failed.get_json()
    # The render's claim went with it: nobody waits out a lease nobody holds.
    assert count(store, SYNTHESIS_CACHE) == 0

    monkeypatch.undo()
    started = time.monotonic()
    retried = synthesis_client.post("/synthesize", json=body, headers=ann)
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["cacheHit"] is False
    assert time.monotonic() - started < get_container().settings.synthesis_cache_lease_seconds
    [entry] = store.stream(Query(SYNTHESIS_CACHE))
    assert entry.data["status"] == "ready"  # rendered under its own claim, then published
