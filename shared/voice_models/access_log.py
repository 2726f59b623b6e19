"""The voice-model access log: who read or changed which models, and when.

Seed 001 keeps access logs for audit because voice models are biometric data. Every
voice-model route that reads or changes models appends one entry (actor, owner, action,
model ids, request id). Entries are append-only; owners and admins read a model's entries.

Changes, exports and backups get one entry each. Plain reads (the hot path: every list,
get and statistics call) are coalesced: the same actor reading the same models the same
way within one minute is one entry (the first such read, with its request id), found by a
deterministic id, so a busy client costs one small read per request instead of a write.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.model import new_id, utcnow
from shared.store.base import DocumentStore, Query

if TYPE_CHECKING:
    from shared.voice_models.model import AccessLogEntry

ACCESS_LOG = "voice_model_access_log"
_MAX_IDS_PER_ENTRY = 100
COALESCED_ACTIONS = frozenset(
    [
        "read",
        "list",
        "read_active",
        "usage_stats",
        "analytics",
        "compare",
        "select_best",
        "list_shared",
        "expiring",
    ]
)


# Coalesced entries this process knows exist, per store: a repeated read in the same minute
# then costs no store round trip. Bounded; an entry forgotten is just looked up again.
_RECENT_LIMIT = 4096
_recent: weakref.WeakKeyDictionary[DocumentStore, OrderedDict[str, None]] = (
    weakref.WeakKeyDictionary()
)
_recent_lock = threading.Lock()


def _known(store: DocumentStore, entry_id: str) -> bool:
    """Return whether this process knows ``entry_id`` exists (and keep it remembered)."""
    with _recent_lock:
        entries = _recent.get(store)
        if entries is None or entry_id not in entries:
            return False
        entries.move_to_end(entry_id)
        return True


def _remember(store: DocumentStore, entry_id: str) -> None:
    with _recent_lock:
        entries = _recent.get(store)
        if entries is None:
            entries = _recent[store] = OrderedDict()
        entries[entry_id] = None
        while len(entries) > _RECENT_LIMIT:
            entries.popitem(last=False)


def record_access(
    store: DocumentStore,
    *,
    actor_id: str,
    action: str,
    model_ids: Sequence[str],
    owner_id: str | None = None,
    request_id: str | None = None,
) -> str:
    """Record the access and return its entry's id (an earlier one's, when coalesced)."""
    ids = list(dict.fromkeys(model_ids))[:_MAX_IDS_PER_ENTRY]
    now = utcnow()
    if action in COALESCED_ACTIONS:
        minute = int(now.timestamp()) // 60
        what = "\n".join([actor_id, action, owner_id or "", *ids])
        entry_id = f"r{minute}-{hashlib.sha256(what.encode()).hexdigest()[:32]}"
        if _known(store, entry_id):
            return entry_id
        if store.get(ACCESS_LOG, entry_id) is not None:
            _remember(store, entry_id)
            return entry_id
    else:
        entry_id = new_id()
    if action in COALESCED_ACTIONS:
        _remember(store, entry_id)
    # Built directly (no model validation): this runs on every request.
    store.set(
        ACCESS_LOG,
        entry_id,
        {
            "id": entry_id,
            "actor_id": actor_id,
            "owner_id": owner_id,
            "action": action,
            "model_ids": ids,
            "request_id": request_id,
            "at": now,
        },
    )
    return entry_id


def entries_for_model(
    store: DocumentStore, model_id: str, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[AccessLogEntry], str | None]:
    """Return one page of the model's entries, newest first, and the next page's cursor."""
    # Recording runs in every voice-model dependency (synthesis too) and builds no entity.
    from shared.voice_models.model import AccessLogEntry  # noqa: PLC0415 - see above

    query = (
        Query(ACCESS_LOG)
        .where("model_ids", "array-contains", model_id)
        .order("at", descending=True)
        .take(limit)
        .after(cursor)
    )
    page = store.query(query)
    entries = [AccessLogEntry.model_validate(document.data) for document in page.documents]
    return entries, page.next_cursor
