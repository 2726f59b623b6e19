"""Pre-call cloning's store work on every adapter (SQLite and the Firestore emulator): the
number claims, paging, the clone task's reuse-or-lease transaction under concurrency, the
analytics range queries, expiry and account purge."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from shared.blobs.local import LocalObjectStorage
from shared.config import Settings
from shared.model import utcnow
from shared.precall.analytics import get_analytics
from shared.precall.calls import get_call, receive_call
from shared.precall.cloning import CloneTask, run_clone_task
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.errors import CallerIdTakenError, CloneExpiredError
from shared.precall.expiry import expire_clones
from shared.precall.mappings import create_mapping, delete_mapping, list_mappings
from shared.precall.model import CloneState
from shared.precall.purge import purge_account
from shared.precall.repository import ACCOUNT_COLLECTIONS, CLONE_LOG
from shared.precall.schemas import AnalyticsQuery, CallWebhook, MappingCreate
from shared.precall.voices import clone_voice
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from shared.store.base import DocumentStore, Query
from shared.tasks.base import QueuePolicy, TaskContext, TaskRegistry
from shared.tasks.inprocess import InProcessTaskQueue
from tests.functions.precall_support import espeak_wav
from tests.support.ports import FixedPorts

ACME = Caller("agent-1", "acme")


@pytest.fixture
def deps(store: DocumentStore, tmp_path: Path) -> PrecallDeps:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    blobs = LocalObjectStorage(
        tmp_path / "blobs",
        signing_key=b"k" * 32,
        public_base_url="http://127.0.0.1",
        max_upload_bytes=50_000_000,
    )
    queue = InProcessTaskQueue(
        store=store, policies={settings.default_queue: QueuePolicy()}, registry=TaskRegistry()
    )
    providers = ProviderRegistry.of([EspeakProvider(variant_languages=["en-us"])])
    blobs.put(settings.samples_bucket, "precall/acme/a.wav", espeak_wav(), content_type="audio/wav")
    return PrecallDeps(FixedPorts(store, blobs, settings, providers, lambda: queue))


def context(store: DocumentStore, attempt: int = 1) -> TaskContext:
    return TaskContext("t", "q", "precall.clone", attempt, 5, utcnow(), store)


def mapping(caller_id: str = "+14155550100") -> MappingCreate:
    return MappingCreate(
        caller_id=caller_id,
        voice_sample_url="gs://voice-samples/precall/acme/a.wav",
        voice_name="Ann",
    )


def ring(deps: PrecallDeps, greeting: str) -> str:
    call, _ = receive_call(
        deps, ACME, CallWebhook(caller_id="+14155550100", greeting_call_id=greeting)
    )
    return call.id


def test_claims_paging_clones_analytics_expiry_and_purge(deps):
    first = create_mapping(deps, ACME, mapping())
    with pytest.raises(CallerIdTakenError):
        create_mapping(deps, ACME, mapping())
    create_mapping(deps, ACME, mapping("+14155550101"))
    page = list_mappings(deps, ACME, None, 1, None)
    assert page.next_cursor
    rest = list_mappings(deps, ACME, None, 1, page.next_cursor)
    assert [m.id for m in rest.mappings] == [first.id]

    keys = [ring(deps, f"g-{n}") for n in range(3)]
    threads = [
        threading.Thread(
            target=run_clone_task, args=(deps, CloneTask(call_key=k), context(deps.store))
        )
        for k in keys
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = [get_call(deps, ACME, key, None) for key in keys]
    assert {c.clone_state for c in calls} == {CloneState.READY}
    assert len({c.cloned_voice_id for c in calls}) == 1
    assert deps.store.count(Query(CLONE_LOG)) == 1

    stats = get_analytics(deps, ACME, AnalyticsQuery())
    assert (stats.clone_attempts, stats.ready_events, stats.cache_hits) == (1, 3, 2)
    assert stats.calls_by_status["initiated"] == 3

    voice = f"clone:{calls[0].cloned_voice_id}"
    assert clone_voice(deps.store, "acme", voice).provider == "espeak"
    assert expire_clones(deps, utcnow() + timedelta(hours=25)).expired == 1
    with pytest.raises(CloneExpiredError):
        clone_voice(deps.store, "acme", voice)

    delete_mapping(deps, ACME, first.id, None)
    create_mapping(deps, ACME, mapping())  # the number is free again
    assert purge_account(deps, "acme") == 6  # three mappings (one soft-deleted), three calls
    for collection in ACCOUNT_COLLECTIONS:
        assert deps.store.count(Query(collection).where("account_id", "==", "acme")) == 0
