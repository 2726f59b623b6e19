"""Deleting a caller's recording while a mapping naming it is saved, on every store adapter.

Whatever the order, no live mapping names a recording that is gone, and nothing is deleted
from under a live mapping. The object storage is the embedded adapter with hooks that run
the other request at one exact moment (the interleavings a real race gives now and then):
while the mapping's sample check has read the recording, while the deletion is deleting
the object, and inside the mapping's transaction, where the store itself must order the
deletion's transaction and the mapping's.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shared.errors import ServiceUnavailableError
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.errors import PrecallSampleInUseError, SampleUnreachableError
from shared.precall.mappings import create_mapping, update_mapping
from shared.precall.recordings import audio_version, delete_sample, store_sample
from shared.precall.repository import MAPPINGS
from shared.precall.schemas import MappingCreate, MappingUpdate
from shared.store.base import DocumentStore, Query
from tests.functions.precall_support import espeak_wav
from tests.support.interleaved_storage import InterleavedStorage
from tests.support.precall_ports import acme_recordings, precall_deps

ACME = Caller("agent-1", "acme")
URL = "gs://voice-samples/precall/acme/a.wav"
OTHER_URL = "gs://voice-samples/precall/acme/b.wav"


@pytest.fixture
def blobs(tmp_path: Path) -> InterleavedStorage:
    return acme_recordings(tmp_path / "blobs", {"a.wav": espeak_wav(), "b.wav": espeak_wav()})


@pytest.fixture
def deps(store: DocumentStore, blobs: InterleavedStorage, tmp_path: Path) -> PrecallDeps:
    return precall_deps(store, blobs, tmp_path)


def mapping(caller_id: str = "+14155550100", url: str = URL) -> MappingCreate:
    return MappingCreate(caller_id=caller_id, voice_sample_url=url, voice_name="Ann")


def live_mappings_of(store: DocumentStore, url: str) -> list[str]:
    query = Query(MAPPINGS).where("voice_sample_url", "==", url).where("deleted_at", "==", None)
    return [document.id for document in store.stream(query)]


def recording_kept(blobs: InterleavedStorage) -> bool:
    return blobs.exists("voice-samples", "precall/acme/a.wav")


def test_a_mapping_saved_first_refuses_the_deletion(deps, store, blobs):
    saved = create_mapping(deps, ACME, mapping())
    with pytest.raises(PrecallSampleInUseError) as refused:
        delete_sample(deps, ACME, "a.wav", None)
    assert saved.id in refused.value.message
    assert recording_kept(blobs)


def test_a_deletion_while_a_mappings_sample_is_checked_fails_the_mapping(deps, store, blobs):
    # The mapping's check has read the recording; the deletion then runs to its end.
    blobs.on_get = lambda: delete_sample(deps, ACME, "a.wav", None)
    with pytest.raises(SampleUnreachableError):
        create_mapping(deps, ACME, mapping())
    assert not recording_kept(blobs)
    assert live_mappings_of(store, URL) == []

    other = create_mapping(deps, ACME, mapping("+14155550101", OTHER_URL))
    blobs.put("voice-samples", "precall/acme/a.wav", espeak_wav(), content_type="audio/wav")
    blobs.on_get = lambda: delete_sample(deps, ACME, "a.wav", None)
    with pytest.raises(SampleUnreachableError):
        update_mapping(deps, ACME, other.id, MappingUpdate(voice_sample_url=URL))
    assert not recording_kept(blobs)
    assert live_mappings_of(store, URL) == []


def test_a_mapping_saved_while_the_object_is_being_deleted_is_refused(deps, store, blobs):
    refusals: list[Exception] = []
    other = create_mapping(deps, ACME, mapping("+14155550101", OTHER_URL))

    def save_mappings() -> None:
        for attempt in (
            lambda: create_mapping(deps, ACME, mapping()),
            lambda: update_mapping(deps, ACME, other.id, MappingUpdate(voice_sample_url=URL)),
        ):
            try:
                attempt()
            except SampleUnreachableError as exc:
                refusals.append(exc)

    blobs.on_delete = save_mappings
    delete_sample(deps, ACME, "a.wav", None)
    assert [str(exc) for exc in refusals] == [f"The voice sample at {URL} is being deleted"] * 2
    assert not recording_kept(blobs)
    assert live_mappings_of(store, URL) == []


def test_a_deletion_overlapping_a_mappings_transaction_is_ordered_by_the_store(deps, store, blobs):
    """The deletion starts inside the mapping's transaction, after it read the lock: the
    store lets one of the two see the other (SQLite makes the deletion wait; Firestore
    waits or aborts one and retries it)."""
    outcome: dict[str, str] = {}
    marked, release = threading.Event(), threading.Event()

    def deleting() -> None:
        try:
            delete_sample(deps, ACME, "a.wav", None)
            outcome["deletion"] = "deleted"
        except PrecallSampleInUseError:
            outcome["deletion"] = "refused"

    def at_object_deletion() -> None:
        marked.set()
        release.wait(30)

    deletion = threading.Thread(target=deleting)

    def inside_the_mappings_transaction() -> None:
        blobs.on_delete = at_object_deletion
        deletion.start()
        marked.wait(2)  # the deletion has marked the lock, unless the store holds it back

    blobs.on_exists = inside_the_mappings_transaction
    try:
        create_mapping(deps, ACME, mapping())
        outcome["mapping"] = "saved"
    except SampleUnreachableError:
        outcome["mapping"] = "refused"
    finally:
        release.set()
        deletion.join(60)
    assert outcome in (
        {"mapping": "saved", "deletion": "refused"},
        {"mapping": "refused", "deletion": "deleted"},
    )
    assert bool(live_mappings_of(store, URL)) == recording_kept(blobs)


def test_a_deletion_the_storage_refuses_leaves_the_recording_usable_and_its_version(deps, blobs):
    # Replaced audio once, so the recording has an audio version a clone may have read.
    store_sample(deps, ACME, "a.wav", espeak_wav(), None)
    version = audio_version(deps, "acme", URL)
    assert version is not None

    def outage() -> None:
        raise ServiceUnavailableError("storage is down")

    blobs.on_delete = outage
    with pytest.raises(ServiceUnavailableError):
        delete_sample(deps, ACME, "a.wav", None)
    assert recording_kept(blobs)
    assert audio_version(deps, "acme", URL) == version  # a clone in flight stays good
    assert create_mapping(deps, ACME, mapping()).voice_sample_url == URL  # no mark left
