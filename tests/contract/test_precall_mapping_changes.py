"""A caller's mapping changed while its clone is being made, on every store adapter.

The clone task reads the mapping's sample, makes the voice and then saves it to the cache;
the mapping may be re-pointed, moved or deleted in between (its transaction expires what is
cached, but this clone is not cached yet). Whatever happens, the caller's calls never speak
with a voice made from a sample its number no longer maps to, and that voice is given back.
The object storage is the embedded adapter with a hook that changes the mapping at one
exact moment: just after the clone task has read the old sample.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shared.model import utcnow
from shared.precall.calls import get_call, receive_call
from shared.precall.cloning import CloneTask, run_clone_task
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.mappings import create_mapping, delete_mapping, update_mapping
from shared.precall.model import CallerVoiceMapping, CallLog, CloneState
from shared.precall.recordings import store_sample
from shared.precall.repository import CLONE_CACHE, CLONE_LOG, VOICE_RELEASES
from shared.precall.schemas import CallWebhook, MappingCreate, MappingUpdate
from shared.precall.voices import clone_voice
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from shared.store.base import DocumentStore, Query
from shared.tasks.base import TaskContext
from shared.tasks.errors import RetryTask
from tests.functions.precall_support import espeak_wav
from tests.support.interleaved_storage import InterleavedStorage
from tests.support.precall_ports import acme_recordings, precall_deps
from tests.support.voice_match import warm_voice_match_table

ACME = Caller("agent-1", "acme")
NUMBER = "+14155550100"
OTHER_NUMBER = "+14155550101"
ANN = "gs://voice-samples/precall/acme/ann.wav"
BOB = "gs://voice-samples/precall/acme/bob.wav"
# The voice match answers bob.wav with the voice that spoke it. Ann's is a female voice
# (en-US+f3, which the match may answer with a near one), so never Bob's.
ANN_SPEAKER, BOB_VOICE = "en-US+f3", "en-US+m3"


@pytest.fixture(autouse=True, scope="module")
def _voice_match_table() -> None:
    warm_voice_match_table()


@pytest.fixture
def blobs(tmp_path: Path) -> InterleavedStorage:
    recordings = {"ann.wav": espeak_wav(ANN_SPEAKER), "bob.wav": espeak_wav(BOB_VOICE)}
    return acme_recordings(tmp_path / "blobs", recordings)


@pytest.fixture
def deps(store: DocumentStore, blobs: InterleavedStorage, tmp_path: Path) -> PrecallDeps:
    providers = ProviderRegistry.of([EspeakProvider(variant_languages=["en-us"])])
    return precall_deps(store, blobs, tmp_path, providers)


def context(store: DocumentStore, attempt: int = 1) -> TaskContext:
    return TaskContext("t", "q", "precall.clone", attempt, 5, utcnow(), store)


def map_caller(deps: PrecallDeps, number: str = NUMBER, url: str = ANN) -> CallerVoiceMapping:
    return create_mapping(
        deps, ACME, MappingCreate(caller_id=number, voice_sample_url=url, voice_name="Ann")
    )


def ring_and_clone(deps: PrecallDeps, greeting: str, number: str = NUMBER) -> CallLog:
    call, _ = receive_call(deps, ACME, CallWebhook(caller_id=number, greeting_call_id=greeting))
    run_clone_task(deps, CloneTask(call_key=call.id), context(deps.store))
    return get_call(deps, ACME, call.id, None)


def speaking_voice(deps: PrecallDeps, call: CallLog) -> str:
    assert call.clone_state is CloneState.READY, call.clone_error
    return clone_voice(deps.store, "acme", f"clone:{call.cloned_voice_id}").voice_id


def given_back(store: DocumentStore) -> set[str]:
    """Return the provider voices released because their mapping changed as they were made."""
    releases = Query(VOICE_RELEASES).where("reason", "==", "mapping changed")
    return {str(d.data["voice_id"]) for d in store.stream(releases)}


def cached_voices(store: DocumentStore, number: str) -> list[str]:
    query = (
        Query(CLONE_CACHE)
        .where("account_id", "==", "acme")
        .where("caller_id", "==", number)
        .where("deleted_at", "==", None)
    )
    now = utcnow()
    return [
        str(d.data["provider_voice_id"])
        for d in store.stream(query)
        if d.data["ttl_expires_at"] > now
    ]


def test_a_clone_of_the_old_sample_finished_after_a_re_pointing_is_given_back(deps, blobs):
    """The call in flight clones the new sample instead; so does every later call."""
    mapping = map_caller(deps)
    blobs.on_get = lambda: update_mapping(
        deps, ACME, mapping.id, MappingUpdate(voice_sample_url=BOB)
    )
    first = ring_and_clone(deps, "g-1")
    assert speaking_voice(deps, first) == BOB_VOICE
    assert cached_voices(deps.store, NUMBER) == [BOB_VOICE]
    (stale,) = given_back(deps.store)  # the voice made from ann.wav
    assert stale != BOB_VOICE
    # Both clones were attempts of the call, and both are in the log.
    assert deps.store.count(Query(CLONE_LOG).where("greeting_call_id", "==", "g-1")) == 2

    second = ring_and_clone(deps, "g-2")
    assert speaking_voice(deps, second) == BOB_VOICE
    assert second.cloned_voice_id == first.cloned_voice_id  # the new sample's clone, reused

    # A retried task of a settled call makes nothing new.
    run_clone_task(deps, CloneTask(call_key=first.id), context(deps.store, attempt=2))
    assert get_call(deps, ACME, first.id, None) == first
    assert deps.store.count(Query(CLONE_LOG)) == 2


@pytest.mark.parametrize("change", ["moved", "deleted"])
def test_a_clone_finished_after_its_caller_lost_the_mapping_is_given_back(deps, blobs, change):
    """The call in flight fails (no mapping names its number); the number mapped again
    later clones its new sample, and the moved mapping's new number clones its own."""
    mapping = map_caller(deps)

    def lose_the_mapping() -> None:
        if change == "moved":
            update_mapping(deps, ACME, mapping.id, MappingUpdate(caller_id=OTHER_NUMBER))
        else:
            delete_mapping(deps, ACME, mapping.id, None)

    blobs.on_get = lose_the_mapping
    first = ring_and_clone(deps, "g-1")
    assert first.clone_state is CloneState.FAILED
    assert first.clone_error == "The caller's mapping was deleted or moved to another number"
    assert cached_voices(deps.store, NUMBER) == []
    assert len(given_back(deps.store)) == 1

    map_caller(deps, NUMBER, BOB)
    assert speaking_voice(deps, ring_and_clone(deps, "g-2")) == BOB_VOICE
    if change == "moved":
        assert speaking_voice(deps, ring_and_clone(deps, "g-3", OTHER_NUMBER)) != BOB_VOICE


def test_a_clone_finished_as_its_number_is_mapped_anew_is_given_back(deps, blobs):
    """The mapping moves away and a new one takes the number while the clone is made: the
    call in flight clones the new mapping's sample."""
    mapping = map_caller(deps)

    def map_the_number_anew() -> None:
        update_mapping(deps, ACME, mapping.id, MappingUpdate(caller_id=OTHER_NUMBER))
        map_caller(deps, NUMBER, BOB)

    blobs.on_get = map_the_number_anew
    first = ring_and_clone(deps, "g-1")
    assert speaking_voice(deps, first) == BOB_VOICE
    assert cached_voices(deps.store, NUMBER) == [BOB_VOICE]
    (stale,) = given_back(deps.store)
    assert stale != BOB_VOICE
    assert ring_and_clone(deps, "g-2").cloned_voice_id == first.cloned_voice_id


def test_a_mapping_changed_again_during_the_second_clone_retries_the_task(deps, blobs):
    """One attempt clones at most twice; the retried task clones the mapping as it is."""
    mapping = map_caller(deps)

    def re_point(url: str, then: Callable[[], None] | None = None) -> Callable[[], None]:
        def hook() -> None:
            update_mapping(deps, ACME, mapping.id, MappingUpdate(voice_sample_url=url))
            blobs.on_get = then

        return hook

    blobs.on_get = re_point(BOB, then=re_point(ANN))
    call, _ = receive_call(deps, ACME, CallWebhook(caller_id=NUMBER, greeting_call_id="g-1"))
    with pytest.raises(RetryTask):
        run_clone_task(deps, CloneTask(call_key=call.id), context(deps.store))
    assert get_call(deps, ACME, call.id, None).clone_state is CloneState.PENDING
    assert cached_voices(deps.store, NUMBER) == []
    given = given_back(deps.store)
    assert BOB_VOICE in given
    assert given - {BOB_VOICE}  # and the one made from ann.wav

    run_clone_task(deps, CloneTask(call_key=call.id), context(deps.store, attempt=2))
    assert speaking_voice(deps, get_call(deps, ACME, call.id, None)) != BOB_VOICE


def test_a_clone_of_audio_replaced_under_its_name_meanwhile_is_given_back(deps, blobs):
    """New audio uploaded under the recording's name while the clone reads the old: the
    mapping is unchanged, but the voice made from the old audio is given back and the call
    clones the new audio; so does every later call."""
    map_caller(deps)  # ann.wav, spoken by ANN_SPEAKER
    blobs.on_get = lambda: store_sample(deps, ACME, "ann.wav", espeak_wav(BOB_VOICE), None)
    first = ring_and_clone(deps, "g-1")
    assert speaking_voice(deps, first) == BOB_VOICE
    assert cached_voices(deps.store, NUMBER) == [BOB_VOICE]
    releases = Query(VOICE_RELEASES).where("reason", "==", "new audio")
    (stale,) = {str(d.data["voice_id"]) for d in deps.store.stream(releases)}
    assert stale != BOB_VOICE
    second = ring_and_clone(deps, "g-2")
    assert second.cloned_voice_id == first.cloned_voice_id
