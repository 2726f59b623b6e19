"""Uploading a caller's recording while it, or its whole account, is being deleted.

An upload the storage answered is kept: a recording answered as stored is never deleted by
a deletion that was already under way, and a recording uploaded during the account's purge
never outlives it. So an upload overlapping a deletion is either stored and stays, or
refused (409 ``PRECALL_SAMPLE_BEING_DELETED``: upload it again), and one overlapping the
purge is refused and leaves nothing. The object storage is the embedded adapter with hooks
that run the other request at one exact moment, on every store adapter.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shared.errors import PlatformError, ServiceUnavailableError
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.purge import purge_account
from shared.precall.recordings import delete_sample, store_sample
from shared.precall.repository import ACCOUNT_COLLECTIONS
from shared.store.base import DocumentStore, Query
from tests.functions.precall_support import espeak_wav
from tests.support.interleaved_storage import InterleavedStorage
from tests.support.precall_ports import BUCKET, acme_recordings, precall_deps

ACME = Caller("agent-1", "acme")

BEING_DELETED = "PRECALL_SAMPLE_BEING_DELETED"


@pytest.fixture(scope="module")
def new_audio() -> bytes:
    return espeak_wav("en-US+m3", pitch=1.2)


@pytest.fixture
def blobs(tmp_path: Path) -> InterleavedStorage:
    return acme_recordings(tmp_path / "blobs", {"a.wav": espeak_wav(), "b.wav": espeak_wav()})


@pytest.fixture
def deps(store: DocumentStore, blobs: InterleavedStorage, tmp_path: Path) -> PrecallDeps:
    return precall_deps(store, blobs, tmp_path)


def upload(deps: PrecallDeps, audio: bytes, name: str = "a.wav") -> str:
    """Upload ``audio`` as ``name``; return "stored" or the refusal's code."""
    try:
        store_sample(deps, ACME, name, audio, None)
    except PlatformError as exc:
        return exc.code
    return "stored"


def recordings(blobs: InterleavedStorage) -> list[str]:
    return [info.name for info in blobs.list(BUCKET, "precall/acme/").items]


def documents_of_acme(store: DocumentStore) -> int:
    return sum(
        store.count(Query(collection).where("account_id", "==", "acme"))
        for collection in ACCOUNT_COLLECTIONS
    )


def test_an_upload_while_the_recording_is_being_deleted_is_refused(deps, blobs, new_audio):
    # The deletion has marked the recording; its object is about to go.
    outcome: dict[str, str] = {}
    blobs.on_delete = lambda: outcome.update(upload=upload(deps, new_audio))
    delete_sample(deps, ACME, "a.wav", None)
    assert outcome == {"upload": BEING_DELETED}
    assert recordings(blobs) == ["precall/acme/b.wav"]

    assert upload(deps, new_audio) == "stored"  # once it is gone, the name takes new audio
    assert blobs.get(BUCKET, "precall/acme/a.wav") == new_audio


def test_a_deletion_between_an_uploads_write_and_its_answer_refuses_it(deps, blobs, new_audio):
    # The new audio is written; the deletion, begun just before, takes it to the end.
    blobs.after_put = lambda: delete_sample(deps, ACME, "a.wav", None)
    assert upload(deps, new_audio) == BEING_DELETED
    assert recordings(blobs) == ["precall/acme/b.wav"]


def test_a_deletion_marked_while_an_upload_writes_refuses_it(deps, blobs, new_audio):
    """The deletion marks the recording as the upload writes, and deletes the object only
    after the upload has answered: that answer must not say stored."""
    marked, release = threading.Event(), threading.Event()
    deletion = threading.Thread(target=lambda: delete_sample(deps, ACME, "a.wav", None))

    def at_object_deletion() -> None:
        marked.set()
        release.wait(30)

    def start_the_deletion() -> None:
        blobs.on_delete = at_object_deletion
        deletion.start()
        assert marked.wait(30)

    blobs.after_put = start_the_deletion
    try:
        outcome = upload(deps, new_audio)
    finally:
        release.set()
        deletion.join(60)
    assert outcome == BEING_DELETED
    assert recordings(blobs) == ["precall/acme/b.wav"]


def test_an_upload_while_the_purge_deletes_the_folder_is_refused(deps, blobs, new_audio):
    outcome: dict[str, str] = {}
    # Just after the purge deleted the folder's first object.
    blobs.after_delete = lambda: outcome.update(upload=upload(deps, new_audio, "new.wav"))
    purge_account(deps, "acme")
    assert outcome == {"upload": BEING_DELETED}
    assert recordings(blobs) == []
    assert documents_of_acme(deps.store) == 0

    assert upload(deps, new_audio, "new.wav") == "stored"  # the purge is over


def test_an_upload_whose_audio_the_purge_took_is_refused_and_leaves_nothing(deps, blobs, new_audio):
    # The new audio is written; the whole purge runs before the upload answers.
    blobs.after_put = lambda: purge_account(deps, "acme")
    assert upload(deps, new_audio, "new.wav") == BEING_DELETED
    assert recordings(blobs) == []
    assert documents_of_acme(deps.store) == 0


class PausedPurge:
    """The account's purge in a thread, held just after its ``looks``-th deletion of the
    folder (the purge deletes it before and after the documents)."""

    def __init__(self, deps: PrecallDeps, blobs: InterleavedStorage, looks: int) -> None:
        self.blobs, self.looks = blobs, looks
        self.paused, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=purge_account, args=(deps, "acme"))

    def start(self) -> None:
        self._after_look(1)
        self.thread.start()
        self.paused.wait(5)

    def finish(self) -> None:
        self.release.set()
        self.thread.join(60)

    def _after_look(self, look: int) -> None:
        self.blobs.after_delete_prefix = (
            self._pause if look == self.looks else lambda: self._after_look(look + 1)
        )

    def _pause(self) -> None:
        self.paused.set()
        self.release.wait(30)


def test_an_upload_landing_after_the_purges_last_look_at_the_folder_goes_too(
    deps, blobs, new_audio
):
    """The upload began before the purge and writes its audio after the purge's last look
    at the folder, while the purge still runs: the upload deletes its own audio."""
    purge = PausedPurge(deps, blobs, looks=2)
    blobs.on_put = purge.start
    try:
        outcome = upload(deps, new_audio, "new.wav")
    finally:
        purge.finish()
    assert outcome == BEING_DELETED
    assert recordings(blobs) == []
    assert documents_of_acme(deps.store) == 0


@pytest.mark.parametrize(
    "looks",
    [
        pytest.param(1, id="between-the-purges-two-looks"),
        pytest.param(2, id="after-the-purges-last-look"),
    ],
)
def test_audio_a_refused_upload_could_not_delete_goes_with_the_purge(
    deps, blobs, new_audio, looks: int
):
    """The upload writes while the purge is under way (between its two looks at the folder,
    or after its last one), is refused, and the storage fails its deletion of its own
    audio: the purge's next look takes it, one more made before it ends if need be."""
    purge = PausedPurge(deps, blobs, looks=looks)

    def outage() -> None:
        raise ServiceUnavailableError("storage is down")

    def start_the_purge() -> None:
        purge.start()
        blobs.on_delete = outage

    blobs.on_put = start_the_purge
    try:
        outcome = upload(deps, new_audio, "new.wav")
    finally:
        purge.finish()
    assert outcome == "SERVICE_UNAVAILABLE"  # not stored: the client uploads it again
    assert recordings(blobs) == []
    assert documents_of_acme(deps.store) == 0


class PausedDeletion:
    """The deletion of a.wav in a thread, held just after it deleted the object and before
    it ends (its mark still refuses new audio)."""

    def __init__(self, deps: PrecallDeps, blobs: InterleavedStorage) -> None:
        self.blobs, self.outcome = blobs, ""
        self.paused, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._delete, args=(deps,))

    def start(self) -> None:
        self.blobs.after_delete = self._pause
        self.thread.start()
        assert self.paused.wait(30)

    def finish(self) -> None:
        self.release.set()
        self.thread.join(60)

    def _delete(self, deps: PrecallDeps) -> None:
        try:
            delete_sample(deps, ACME, "a.wav", None)
            self.outcome = "deleted"
        except PlatformError as exc:
            self.outcome = exc.code

    def _pause(self) -> None:
        self.paused.set()
        self.release.wait(30)


def test_an_upload_refused_after_the_deletion_took_the_old_audio_leaves_nothing(
    deps, blobs, new_audio
):
    """The upload passed its first check before the deletion marked the recording, and
    writes after the deletion deleted the old audio: refused, its audio goes too."""
    deletion = PausedDeletion(deps, blobs)
    blobs.on_put = deletion.start
    try:
        outcome = upload(deps, new_audio)
    finally:
        deletion.finish()
    assert (outcome, deletion.outcome) == (BEING_DELETED, "deleted")
    assert recordings(blobs) == ["precall/acme/b.wav"]


def test_a_refused_upload_deletes_its_own_audio_not_newer_audio_stored_since(
    deps, blobs, new_audio
):
    """Refused by the purge, the upload deletes the audio it wrote; the purge ends just
    before, and a second upload of the name is stored: that audio is not the first's."""
    purge = PausedPurge(deps, blobs, looks=2)
    second_audio = espeak_wav("en-US+f4", pitch=0.8)
    outcome: dict[str, str] = {}

    def the_purge_ends_and_new_audio_is_stored() -> None:
        purge.finish()
        outcome["second"] = upload(deps, second_audio, "new.wav")

    def start_the_purge() -> None:
        purge.start()
        blobs.on_delete = the_purge_ends_and_new_audio_is_stored  # the upload's own deletion

    blobs.on_put = start_the_purge
    try:
        outcome["first"] = upload(deps, new_audio, "new.wav")
    finally:
        purge.finish()
    assert outcome == {"first": BEING_DELETED, "second": "stored"}
    assert recordings(blobs) == ["precall/acme/new.wav"]
    assert blobs.get(BUCKET, "precall/acme/new.wav") == second_audio


def test_uploads_are_refused_until_both_of_two_purges_at_once_have_ended(deps, blobs, new_audio):
    first = PausedPurge(deps, blobs, looks=1)
    first.start()
    try:
        purge_account(deps, "acme")  # the second purge, begun after the first, ends first
        assert upload(deps, new_audio, "new.wav") == BEING_DELETED
    finally:
        first.finish()
    assert recordings(blobs) == []
    assert upload(deps, new_audio, "new.wav") == "stored"
