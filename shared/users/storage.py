"""The storage a user holds: the users' collection and the update of its byte counter.

For the capabilities whose records take space (audio files, samples), which change the
counter in the transaction that stores or deletes them; apart from the user model so that
they do not create it (a cold instance's first speech stores an audio file).
"""

from __future__ import annotations

from shared.store.base import Document

USERS = "users"


def storage_used_change(user: Document, delta_bytes: int) -> dict[str, int]:
    """Return the update adding ``delta_bytes`` to ``user``'s storage used, never below zero.

    For transactions that change the storage used together with what takes the space.
    """
    return {"storage_used_bytes": max(0, int(user.data.get("storage_used_bytes", 0)) + delta_bytes)}
