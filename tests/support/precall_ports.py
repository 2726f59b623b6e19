"""The pre-call contract tests' account: its recordings in storage with hooks, and its deps.

Account "acme" keeps its callers' recordings as ``precall/acme/{name}`` in the samples
bucket of ``InterleavedStorage`` (so a test can run another request at one storage call),
and ``precall_deps`` builds the pre-call capability over those adapters, the given store
and an in-process task queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shared.config import Settings
from shared.precall.deps import PrecallDeps
from shared.providers.registry import ProviderRegistry
from shared.store.base import DocumentStore
from shared.tasks.base import QueuePolicy, TaskRegistry
from shared.tasks.inprocess import InProcessTaskQueue
from tests.support.interleaved_storage import InterleavedStorage
from tests.support.ports import FixedPorts

BUCKET = "voice-samples"
"""The samples bucket the default settings name."""


def acme_recordings(folder: Path, recordings: Mapping[str, bytes]) -> InterleavedStorage:
    """Return storage under ``folder`` holding each of ``recordings`` (name: wav bytes) as
    one of account acme's."""
    storage = InterleavedStorage(
        folder,
        signing_key=b"k" * 32,
        public_base_url="http://127.0.0.1",
        max_upload_bytes=50_000_000,
    )
    for name, wav in recordings.items():
        storage.put(BUCKET, f"precall/acme/{name}", wav, content_type="audio/wav")
    return storage


def precall_deps(
    store: DocumentStore,
    blobs: InterleavedStorage,
    data_dir: Path,
    providers: ProviderRegistry | None = None,
) -> PrecallDeps:
    """Return the pre-call deps over ``store``, ``blobs`` and a task queue of their own."""
    settings = Settings(_env_file=None, data_dir=data_dir)
    assert settings.samples_bucket == BUCKET
    queue = InProcessTaskQueue(
        store=store, policies={settings.default_queue: QueuePolicy()}, registry=TaskRegistry()
    )
    providers = providers if providers is not None else ProviderRegistry.of([])
    return PrecallDeps(FixedPorts(store, blobs, settings, providers, lambda: queue))
