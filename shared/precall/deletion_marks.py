"""Deletion marks: what refuses new audio while a recording, or its account's folder, goes.

A recording's deletion marks the recording's lock (``deleting_since``, ``deleting_owner``);
an account's purge adds itself to the account's purge mark (``purges``, one entry per purge
under way, so that two purges at once refuse until both have ended). While either is
there, new audio under the recording's name, or anywhere in the folder, is refused.

An upload refused after writing its audio counts itself on the mark that refused it
(``refused_uploads``), in the transaction that read the mark. Its owner clears the mark
only in a transaction finding the count it read before it last looked at the object or
the folder (deleting what is there); a count moved on means an upload may have written
after that look, so it looks again first. The refused audio thus goes with a look made
while the mark still refuses new audio and new mappings, never after, when new audio
stored under the name, or a mapping naming it, would go with it.

A mark older than ``DELETION_MARK_LIFETIME`` is of a deletion or purge that died before it
could clear it (the function times out after 60 s) and no longer refuses anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from shared.model import new_id
from shared.precall.deps import PrecallDeps
from shared.precall.repository import RECORDING_LOCKS, RECORDING_PURGES, purge_key
from shared.store.base import Document, Transaction

DELETION_MARK_LIFETIME = timedelta(minutes=10)
"""How long a deletion's or a purge's mark refuses mappings and audio."""

_REFUSED = "refused_uploads"


class Deletion(Enum):
    """A deletion that refuses new audio under a recording's name, and what the refusal says."""

    RECORDING = "The voice sample is being deleted; upload it again once its deletion is done"
    DONE = "The voice sample was deleted while it was being stored; upload it again"
    ACCOUNT = "Your account is being deleted, with its voice samples; nothing was stored"


@dataclass(frozen=True)
class Mark:
    """One deletion's or purge's mark, and how many refused uploads it counted when marked."""

    collection: str
    key: str
    owner: str
    seen: int


def deletion_under_way(
    lock: Document | None, purge: Document | None, now: datetime
) -> Deletion | None:
    """Return the deletion of the recording (its ``lock``) or of its account under way."""
    if any(_fresh(entry.get("since"), now) for entry in _purges(purge)):
        return Deletion.ACCOUNT
    if recording_marked(lock, now):
        return Deletion.RECORDING
    return None


def recording_marked(lock: Document | None, now: datetime) -> bool:
    """Return True while a deletion of the recording whose ``lock`` this is is under way."""
    return _fresh(lock.data.get("deleting_since") if lock is not None else None, now)


def count_refusal(
    tx: Transaction, deletion: Deletion, lock: Document | None, purge: Document | None
) -> None:
    """Count an upload refused after writing its audio on the mark that refused it.

    ``lock`` and ``purge`` are the recording's lock and the account's purge mark as ``tx``
    read them; ``deletion`` is what ``deletion_under_way`` found there.
    """
    collection, document = (
        (RECORDING_PURGES, purge) if deletion is Deletion.ACCOUNT else (RECORDING_LOCKS, lock)
    )
    if document is not None:
        tx.update(collection, document.id, {_REFUSED: _refusals(document) + 1})


def mark_recording(
    tx: Transaction, lock: Document | None, key: str, now: datetime, fields: dict[str, Any]
) -> Mark:
    """Mark the recording whose ``lock`` (read in ``tx``, id ``key``) this is as being
    deleted, writing ``fields`` with the mark; return the mark."""
    mark = Mark(RECORDING_LOCKS, key, new_id(), _refusals(lock))
    marked = {**fields, "deleting_since": now, "deleting_owner": mark.owner}
    tx.set(RECORDING_LOCKS, key, marked, merge=True)
    return mark


@contextmanager
def uploads_refused(
    deps: PrecallDeps, account_id: str, look: Callable[[], object]
) -> Iterator[None]:
    """Refuse new audio in the account's folder while the block runs (the account's purge).

    ``look`` deletes what is in the folder; it runs again after the block while uploads
    were refused since the purge began (see the module docstring).
    """
    key, owner = purge_key(account_id), new_id()

    def start(tx: Transaction) -> Mark:
        document, now = tx.get(RECORDING_PURGES, key), deps.clock()
        purges = [entry for entry in _purges(document) if _fresh(entry.get("since"), now)]
        purges.append({"owner": owner, "since": now})
        tx.set(RECORDING_PURGES, key, {"purges": purges, _REFUSED: _refusals(document)})
        return Mark(RECORDING_PURGES, key, owner, _refusals(document))

    with refused_until_looked(deps, deps.store.run_transaction(start), look):
        yield


@contextmanager
def refused_until_looked(
    deps: PrecallDeps, mark: Mark, look: Callable[[], object]
) -> Iterator[None]:
    """Run the block under ``mark``, then clear it once no upload was refused since the last
    look, running ``look`` again until then. A failure clears the mark at once."""
    seen = mark.seen

    def clear_unless_refused(tx: Transaction) -> int | None:
        document = tx.get(mark.collection, mark.key)
        refused = _refusals(document)
        if refused != seen:
            return refused
        _clear(tx, mark, document, deps.clock())
        return None

    try:
        yield
        while (refused := deps.store.run_transaction(clear_unless_refused)) is not None:
            seen = refused
            look()
    except BaseException:
        deps.store.run_transaction(
            lambda tx: _clear(tx, mark, tx.get(mark.collection, mark.key), deps.clock())
        )
        raise


def _clear(tx: Transaction, mark: Mark, document: Document | None, now: datetime) -> None:
    """Remove ``mark`` (only its own: another deletion may have marked since)."""
    if document is None:
        return
    if mark.collection == RECORDING_LOCKS:
        # Only the mark: the audio version stays (a deletion that failed left the audio).
        if document.data.get("deleting_owner") == mark.owner:
            tx.update(mark.collection, mark.key, {"deleting_since": None, "deleting_owner": None})
        return
    others = [
        entry
        for entry in _purges(document)
        if entry.get("owner") != mark.owner and _fresh(entry.get("since"), now)
    ]
    if others:
        tx.update(mark.collection, mark.key, {"purges": others})
    else:
        tx.delete(mark.collection, mark.key)


def _purges(purge: Document | None) -> list[dict[str, Any]]:
    entries = purge.data.get("purges") if purge is not None else None
    return (
        [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
    )


def _refusals(document: Document | None) -> int:
    count = document.data.get(_REFUSED) if document is not None else None
    return count if isinstance(count, int) else 0


def _fresh(since: Any, now: datetime) -> bool:
    return isinstance(since, datetime) and now - since < DELETION_MARK_LIFETIME
