"""Samples whose signed upload never came are deleted by the daily job, on every adapter.

Runs over SQLite and the Firestore emulator: the job's query (status and an age cutoff,
oldest first, in pages) and its per-sample transaction; Firestore needs the composite
index ``voice_samples_awaiting_upload`` of ``infra/firestore.tf`` for that query.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from shared.blobs.local import LocalObjectStorage
from shared.config import Settings
from shared.model import utcnow, with_changes
from shared.samples import expiry
from shared.samples.deps import Caller, SampleDeps
from shared.samples.expiry import expire_awaited_uploads
from shared.samples.model import SampleStatus, UploadUrlRequest
from shared.samples.repository import SampleRepository
from shared.samples.uploads import create_upload_url
from shared.store.base import DocumentStore
from tests.support.ports import FixedPorts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deps(store: DocumentStore, tmp_path: Path) -> SampleDeps:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    blobs = LocalObjectStorage(
        tmp_path / "blobs",
        signing_key=b"k" * 32,
        public_base_url="http://127.0.0.1",
        max_upload_bytes=50_000_000,
    )
    return SampleDeps(FixedPorts(store, blobs, settings))


def awaiting(deps: SampleDeps, user: str, *, age: timedelta) -> str:
    """Ask for an upload URL as ``user``; return the sample's id, created ``age`` ago."""
    request = UploadUrlRequest(content_type="audio/flac", size_bytes=1000)
    sample = create_upload_url(deps, Caller(user), request).sample
    repository = SampleRepository(deps.store)
    stored = repository.get(sample.id)
    assert stored is not None
    assert stored.status is SampleStatus.AWAITING_UPLOAD
    repository.save(with_changes(stored, created_at=utcnow() - age))
    return sample.id


def test_only_samples_awaiting_upload_past_the_age_go_and_a_second_run_deletes_nothing(
    deps: SampleDeps, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(expiry, "BATCH", 2)  # several pages
    repository = SampleRepository(deps.store)
    day = timedelta(seconds=deps.settings.samples_awaiting_upload_max_seconds)
    stale = [awaiting(deps, f"u{i % 2}", age=day + timedelta(minutes=i + 1)) for i in range(5)]
    fresh = awaiting(deps, "u0", age=day - timedelta(minutes=5))
    uploaded = awaiting(deps, "u1", age=day * 3)
    sample = repository.get(uploaded)
    assert sample is not None
    repository.save(sample.mark_uploaded(size_bytes=1000, content_type="audio/flac"))
    # One stale sample's object did land, but its storage event never came.
    lost = repository.get(stale[0])
    assert lost is not None
    deps.blobs.put(deps.bucket, lost.file_path, b"fLaC" + bytes(996), content_type="audio/flac")

    report = expire_awaited_uploads(deps)

    assert (report.deleted, report.objects_deleted) == (5, 1)
    assert repository.get_many([*stale, fresh, uploaded]).keys() == {fresh, uploaded}
    assert not deps.blobs.exists(deps.bucket, lost.file_path)
    assert expire_awaited_uploads(deps) == expiry.UploadExpiryReport(0, 0)
    assert repository.get_many([fresh, uploaded]).keys() == {fresh, uploaded}


def test_an_upload_that_lands_before_the_deletion_keeps_its_sample(deps: SampleDeps):
    repository = SampleRepository(deps.store)
    sample_id = awaiting(deps, "u0", age=timedelta(days=2))
    cutoff = utcnow() - timedelta(days=1)
    assert [s.id for s in repository.awaiting_upload_since(cutoff, limit=10)] == [sample_id]
    sample = repository.get(sample_id)
    assert sample is not None
    repository.save(sample.mark_uploaded(size_bytes=1000, content_type="audio/flac"))

    assert repository.delete_if_awaiting_upload(sample_id, cutoff) is None
    assert repository.get(sample_id) is not None
    assert repository.awaiting_upload_since(cutoff, limit=10) == []


def test_firestore_has_the_index_the_expiry_query_needs():
    firestore = (ROOT / "infra" / "firestore.tf").read_text()
    block = re.search(r"voice_samples_awaiting_upload = \{(.*?)\n    \}", firestore, re.DOTALL)
    assert block is not None
    fields = re.findall(r'field_path = "(\w+)", order = "(\w+)"', block.group(1))
    assert fields == [("status", "ASCENDING"), ("created_at", "ASCENDING")]
    assert 'collection = "voice_samples"' in block.group(1)
