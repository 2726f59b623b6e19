"""What recording a finished synthesis costs its response, before and after one commit.

A short synthesis, once its audio is uploaded, records the user's file (and their storage
used), makes the cache entry ready, stores the completed job and queues the voice model's
use. Before (issue 18): three commits in turn, the file record's transaction (the owner
read, the record and the storage used), the cache entry's set, then the job and the use in
a batch. After: all of it in one transaction (``shared.synthesis.immediate.finish``). Both
write the same documents through the same repository functions, on the same store in the
same run, alternating, on the embedded SQLite store and on Google's Firestore emulator
(started here; production's Firestore is a network round trip per commit, which the
emulator on loopback understates). Prints each one's p50 and the ratio after / before, and
checks that both counted the same storage used.

Run: ``.venv/bin/python -m bench.finish_commit [--repeat N] [--no-firestore]``.
"""

from __future__ import annotations

from datetime import timedelta

from bench.stores import alternating_p50s, run_on_both_stores
from bench.usage_outbox import EVENT, SHARDS
from shared.audio.formats import OutputFormat
from shared.files.cache import CachedAudio, Lease, SingleFlight
from shared.files.model import AudioFile
from shared.files.repository import AudioFileRepository
from shared.model import new_id, utcnow
from shared.store.base import DocumentStore, Transaction, WriteBatch
from shared.store.cache import DocumentCache
from shared.synthesis.repository import SYNTHESIS_JOBS
from shared.users.storage import USERS
from shared.voice_models.usage_outbox import add_pending_use

SIZE = 420_000  # a 30-word sentence of eSpeak wav
JOB = {"user_id": "", "status": "completed", "text_content": "x" * 150, "audio_file_id": ""}


class Finish:
    """One finished synthesis's records for user ``owner`` on ``store``."""

    def __init__(self, store: DocumentStore, owner: str) -> None:
        self.store = store
        self.owner = owner
        self.files = AudioFileRepository(store)
        self.flight = SingleFlight(store, wait_seconds=1, lease_seconds=30)
        self.cache = DocumentCache(store)

    def records(self) -> tuple[AudioFile, CachedAudio, Lease, str]:
        file_id = new_id()
        path = f"audio/{file_id}.wav"
        cached = CachedAudio(path, "wav", SIZE, 9.5, 22_050, "sha256:" + "0" * 64, None)
        now = utcnow()
        audio_file = AudioFile(
            id=file_id,
            user_id=self.owner,
            synthesis_job_id=new_id(),
            file_path=path,
            filename="synthesis.wav",
            format=OutputFormat.WAV,
            file_size=SIZE,
            duration=9.5,
            sample_rate=22_050,
            checksum=cached.checksum,
            created_at=now,
            expires_at=now + timedelta(days=30),
        )
        return audio_file, cached, Lease(new_id(), new_id()), audio_file.synthesis_job_id

    def job_and_use(self, writes: WriteBatch | Transaction, job_id: str, file_id: str) -> None:
        writes.create(
            SYNTHESIS_JOBS, job_id, {**JOB, "user_id": self.owner, "audio_file_id": file_id}
        )
        add_pending_use(
            writes, model_id="m", owner_id=self.owner, event=EVENT, shards=SHARDS, cache=self.cache
        )

    def before(self) -> None:
        audio_file, cached, lease, job_id = self.records()
        self.store.run_transaction(lambda tx: self.files.add_in(tx, audio_file))
        self.flight.publish(lease, cached)
        with self.store.batch() as batch:
            self.job_and_use(batch, job_id, audio_file.id)

    def after(self) -> None:
        audio_file, cached, lease, job_id = self.records()

        def commit(tx: Transaction) -> None:
            self.files.add_in(tx, audio_file)
            self.flight.publish_in(tx, lease, cached)
            self.job_and_use(tx, job_id, audio_file.id)

        self.store.run_transaction(commit)

    def storage_used(self) -> int:
        document = self.store.get(USERS, self.owner)
        assert document is not None
        return int(document.data["storage_used_bytes"])


def measure(name: str, store: DocumentStore, repeat: int) -> None:
    runs = {"before": Finish(store, "bench-before"), "after": Finish(store, "bench-after")}
    for finish in runs.values():
        store.set(USERS, finish.owner, {"email": f"{finish.owner}@example.com"})
    p50 = alternating_p50s(
        {"before": runs["before"].before, "after": runs["after"].after}, repeat=repeat, warmup=3
    )
    old, new = p50["before"], p50["after"]
    used = (runs["before"].storage_used(), runs["after"].storage_used())
    assert used == ((repeat + 3) * SIZE,) * 2, used
    print(f"{name}:")
    print(
        f"   before: file record, cache entry, job and use: three commits  p50 {old * 1000:.3f} ms"
    )
    print(f"   after:  the same in one transaction                        p50 {new * 1000:.3f} ms")
    print(f"   after / before {new / old:.2f}; saved {(old - new) * 1000:.3f} ms per synthesis")
    print(f"   storage used counted: {used[0]} and {used[1]} bytes (each file once)")


def main() -> None:
    run_on_both_stores(measure, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
