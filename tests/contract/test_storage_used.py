"""A user's ``storage_used_bytes`` never drifts, whatever races, on every adapter.

The file and sample records that take the space and the counter change in one transaction that
reads both (SQLite serialises every transaction; Firestore only what a transaction
read), so racing deletes free a record's bytes once, racing adds count each, and a
profile update never writes back a counter it read before another change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from shared.audio.formats import OutputFormat
from shared.errors import TransactionContentionError
from shared.files.model import AudioFile
from shared.files.repository import AudioFileRepository
from shared.samples.model import VoiceSample
from shared.samples.repository import SampleRepository
from shared.store.base import DocumentStore
from shared.store.sqlite import SqliteDocumentStore
from shared.users.model import User
from shared.users.repository import UserRepository


def racers(store: DocumentStore) -> int:
    return 8 if isinstance(store, SqliteDocumentStore) else 4


def race(count: int, action: Callable[[int], object]) -> list[int]:
    """Run ``action(i)`` for each i at once; return the i whose action committed."""
    barrier = threading.Barrier(count)
    done: list[int] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            action(i)
        except TransactionContentionError:
            return  # a 503 to the client; the counter must be right regardless
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        else:
            done.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return done


def audio_file(size: int) -> AudioFile:
    return AudioFile(
        user_id="ann",
        synthesis_job_id="job",
        file_path=f"audio/ann-{size}.wav",
        filename="a.wav",
        format=OutputFormat.WAV,
        file_size=size,
        duration=1.0,
        sample_rate=22_050,
    )


def add_file(store: DocumentStore, size: int) -> AudioFile:
    made = audio_file(size)
    store.run_transaction(lambda tx: AudioFileRepository(store).add_in(tx, made))
    return made


def used(store: DocumentStore) -> int:
    return UserRepository(store).require("ann").storage_used_bytes


def test_racing_deletes_of_a_file_free_its_bytes_once(store):
    UserRepository(store).add(User(id="ann", email="ann@example.com"))
    doomed, kept = add_file(store, 1000), add_file(store, 300)
    assert used(store) == 1300
    race(racers(store), lambda _: AudioFileRepository(store).delete(doomed.id))
    assert used(store) == kept.file_size


def test_racing_adds_of_files_count_each(store):
    UserRepository(store).add(User(id="ann", email="ann@example.com"))
    count = racers(store)
    added = race(count, lambda i: add_file(store, 100 + i))
    assert added
    assert used(store) == sum(100 + i for i in added)


def test_profile_updates_racing_storage_changes_lose_none(store):
    users = UserRepository(store)
    users.add(User(id="ann", email="ann@example.com"))
    count = racers(store)

    def act(i: int) -> None:
        if i % 2:
            users.add_storage_used("ann", 100)
        else:
            users.update("ann", {"first_name": f"Ann{i}"})

    expected = 0
    for _ in range(3):  # the race is short: run it a few times
        done = race(2 * count, act)
        expected += 100 * sum(1 for i in done if i % 2)
        assert used(store) == expected


def sample(size: int) -> VoiceSample:
    return VoiceSample(
        user_id="ann", name="s", file_path=f"samples/ann/{size}.wav", size_bytes=size
    )


def test_racing_adds_of_samples_count_each(store):
    UserRepository(store).add(User(id="ann", email="ann@example.com"))
    count = racers(store)
    added = race(count, lambda i: SampleRepository(store).add(sample(100 + i)))
    assert added
    assert used(store) == sum(100 + i for i in added)


def test_racing_deletes_of_a_sample_free_its_bytes_once(store):
    UserRepository(store).add(User(id="ann", email="ann@example.com"))
    doomed, kept = sample(1000), sample(300)
    for made in (doomed, kept):
        SampleRepository(store).add(made)
    assert used(store) == 1300
    race(racers(store), lambda _: SampleRepository(store).delete(doomed.id))
    assert used(store) == kept.size_bytes
