"""The clone task: reuse the caller's cached clone, or make one, exactly once per caller.

``precall.clone`` runs for each logged call whose clone is pending:

1. **Reuse or lease**, in one transaction: a cache entry of the caller that is neither
   deleted nor past its TTL settles the call at once (reuse count + 1, last used now, the
   call ready, a ready event with ``cacheHit``). Otherwise the task takes the caller's
   lease, unless another task holds it: then it waits, polling, for that clone to land in
   the cache (``VOICE_PRECALL_CLONE_WAIT_SECONDS``, then the task is retried). Concurrent
   calls from one caller therefore make one clone, across processes: the lease is a
   document, renewed by a heartbeat while the clone runs, so a dead cloner's lease lapses.
2. **Clone**: the mapping's sample is read and checked (``shared.precall.samples``: a
   ``sampleId`` as its recorded owner's, through the samples capability's lookup), then
   the cloner makes the voice. Every attempt writes ``voice_clone_log`` (API time, sample
   size, status, error).
3. **Settle**: a success writes, in one transaction, the cache entry (TTL from the
   settings), the call's voice, the log and ``clone_ready_events``; the new voice is
   written to the lease first, so a crash before that commit leaves a release for it.
   That transaction reads the caller's live mapping first. If it was re-pointed, moved or
   deleted while the voice was made (its own transaction expired only what was cached
   then), or new audio was uploaded under its recording's name (the recording's audio
   version, read before the audio, changed), the voice is released, not cached, and the
   attempt clones once more from the mapping as it is now (changed again meanwhile: the
   task is retried), or fails the call's clone if the number has no mapping left. The
   call in flight does not speak the old voice either: it has not spoken yet, the mapping
   or audio was changed to change the voice, and a clone is spoken only through its
   cache entry. A failure writes no cache entry: a transient one (provider timeout, 429,
   5xx, S3 down) is retried up to ``VOICE_PRECALL_CLONE_ATTEMPTS`` times; a permanent
   one, or the last attempt, fails the call's clone and writes ``clone_failed_events``
   with the reason.

Either event queues the webhook notification (``shared.precall.webhooks``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.errors import PlatformError
from shared.model import RequestModel, new_id, with_changes
from shared.precall.cloners import ClonedVoice, CloneFailedError, CloneRequest
from shared.precall.deps import PrecallDeps
from shared.precall.errors import SampleError
from shared.precall.model import (
    CallerVoiceMapping,
    CallLog,
    CloneFailedEvent,
    CloneReadyEvent,
    CloneState,
    CloneStatus,
    VoiceCloneCache,
    VoiceCloneLog,
)
from shared.precall.recordings import audio_version
from shared.precall.repository import (
    CALLS,
    CLONE_CACHE,
    CLONE_LEASES,
    CLONE_LOG,
    FAILED_EVENTS,
    READY_EVENTS,
    VOICE_RELEASES,
    cache_from,
    call_from,
    caller_key,
    live_cache_of,
    live_mapping_for,
    release_document,
    release_id,
    tx_live_mapping_for,
    usable_entry,
)
from shared.precall.samples import check_allowed, check_read
from shared.precall.webhooks import notify_settled, queue_notification
from shared.store.base import Transaction
from shared.store.leases import Heartbeat
from shared.tasks.base import TaskContext
from shared.tasks.errors import RetryTask

logger = logging.getLogger(__name__)

_POLL_START, _POLL_MAX = 0.05, 0.5
_CLONES_PER_ATTEMPT = 2
"""How many voices one attempt makes at most: a second when the mapping changed meanwhile."""
_NO_MAPPING = "The caller's mapping was deleted or moved to another number"


class CloneTask(RequestModel):
    """Payload of ``precall.clone``: the call whose clone to make (no personal data)."""

    call_key: str


@dataclass(frozen=True)
class _Lease:
    key: str
    owner: str


_Outcome = Literal["reused", "settled", "busy"]
_Saved = Literal["ready", "cached", "discarded", "stale"]


def run_clone_task(deps: PrecallDeps, task: CloneTask, context: TaskContext) -> None:
    """Settle the call's clone (see the module docstring).

    Raises RetryTask: another call of the caller is still cloning after the wait, or a
    transient failure with attempts left.
    """
    started = time.monotonic()
    document = deps.store.get(CALLS, task.call_key)
    if document is None:
        return  # the account was deleted meanwhile
    call = call_from(document)
    if call.clone_state is not CloneState.PENDING:
        notify_settled(deps, call)
        return
    try:
        _settle(deps, call, context, started)
    except Exception as exc:
        if not context.is_last_attempt:
            raise
        # The queue would dead-letter the task and leave the call pending forever: settle it.
        reason = exc.reason if isinstance(exc, RetryTask) else "The clone failed unexpectedly"
        logger.exception("The last clone attempt of call %s failed", call.id)
        _settle_failure(deps, call, _Lease("", ""), _Attempt(), reason, final=True)


def _settle(deps: PrecallDeps, call: CallLog, context: TaskContext, started: float) -> None:
    lease = _reuse_or_lease(deps, call, started)
    if lease == "reused":
        queue_notification(deps, "clone.ready", call.id)
        return
    if not isinstance(lease, _Lease):
        return  # settled meanwhile by another task of this call
    attempts = min(deps.settings.precall_clone_attempts, context.max_attempts)
    renew_every = deps.settings.precall_clone_lease_seconds / 3
    with Heartbeat(lambda: _renew(deps, lease), renew_every, name=f"clone {call.id}"):
        try:
            _clone(deps, call, lease, started, last_attempt=context.attempt >= attempts)
        except BaseException:
            _release_lease(deps, lease)
            raise


def _reuse_or_lease(deps: PrecallDeps, call: CallLog, started: float) -> _Lease | _Outcome:
    deadline = started + deps.settings.precall_clone_wait_seconds
    pause = _POLL_START
    owner = new_id()

    def attempt(tx: Transaction) -> _Lease | _Outcome:
        return _reuse_or_lease_tx(deps, tx, call, owner, started)

    while True:
        outcome = deps.store.run_transaction(attempt)
        if outcome != "busy":
            return outcome
        if time.monotonic() >= deadline:
            raise RetryTask("Another call from this caller is still being cloned", delay=1.0)
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)


def _reuse_or_lease_tx(
    deps: PrecallDeps, tx: Transaction, call: CallLog, owner: str, started: float
) -> _Lease | _Outcome:
    account_id = str(call.account_id)
    key = caller_key(account_id, call.caller_id)
    current = tx.get(CALLS, call.id)
    lease = tx.get(CLONE_LEASES, key)
    entries = [cache_from(d) for d in tx.query(live_cache_of(account_id, call.caller_id))]
    if current is None or call_from(current).clone_state is not CloneState.PENDING:
        return "settled"
    now = deps.clock()
    entry = usable_entry(entries, now)
    if entry is not None:
        reused = entry.reused(now)
        tx.update(
            CLONE_CACHE,
            entry.id,
            {"reuse_count": reused.reuse_count, "last_used_at": reused.last_used_at},
        )
        _tx_ready(tx, call_from(current), entry, now, _ms_since(started), cache_hit=True)
        return "reused"
    if lease is not None:
        expires = lease.data.get("lease_expires_at")
        if isinstance(expires, datetime) and expires > now:
            return "busy"
        _tx_release_pending(tx, lease.data, now, reason="abandoned lease")
    tx.set(
        CLONE_LEASES,
        key,
        {
            "account_id": account_id,
            "caller_id": call.caller_id,
            "owner": owner,
            "lease_expires_at": now + _lease_length(deps),
            "pending_voice": None,
        },
    )
    return _Lease(key, owner)


def _tx_release_pending(
    tx: Transaction, lease: dict[str, object], now: datetime, reason: str
) -> None:
    pending = lease.get("pending_voice")
    if isinstance(pending, dict) and pending.get("voice_id"):
        provider, voice_id = str(pending.get("provider")), str(pending["voice_id"])
        tx.set(
            VOICE_RELEASES,
            release_id(provider, voice_id),
            release_document(provider, voice_id, reason, now),
        )


def _lease_length(deps: PrecallDeps) -> timedelta:
    return timedelta(seconds=deps.settings.precall_clone_lease_seconds)


def _renew(deps: PrecallDeps, lease: _Lease) -> bool:
    def extend(tx: Transaction) -> bool:
        document = tx.get(CLONE_LEASES, lease.key)
        if document is None or document.data.get("owner") != lease.owner:
            return False
        tx.update(CLONE_LEASES, lease.key, {"lease_expires_at": deps.clock() + _lease_length(deps)})
        return True

    return bool(deps.store.run_transaction(extend))


def _release_lease(deps: PrecallDeps, lease: _Lease) -> None:
    """Drop our lease after an error, releasing a voice made but not committed."""
    now = deps.clock()

    def drop(tx: Transaction) -> None:
        document = tx.get(CLONE_LEASES, lease.key)
        if document is not None and document.data.get("owner") == lease.owner:
            _tx_release_pending(tx, document.data, now, reason="clone not committed")
            tx.delete(CLONE_LEASES, lease.key)

    try:
        deps.store.run_transaction(drop)
    except PlatformError:
        logger.exception("Could not release the clone lease %s; it lapses by itself", lease.key)


@dataclass
class _Attempt:
    sample_bytes: int = 0
    api_ms: int = 0
    audio_version: str | None = None  # the recording's, read before its audio


def _clone(
    deps: PrecallDeps, call: CallLog, lease: _Lease, started: float, *, last_attempt: bool
) -> None:
    account_id = str(call.account_id)
    for _ in range(_CLONES_PER_ATTEMPT):
        attempt = _Attempt()
        mapping = live_mapping_for(deps.store, account_id, call.caller_id)
        if mapping is None:
            _settle_failure(deps, call, lease, attempt, _NO_MAPPING, final=True)
            return
        attempt.audio_version = audio_version(deps, account_id, mapping.voice_sample_url)
        try:
            voice = _make_voice(deps, account_id, mapping, attempt)
        except CloneFailedError as exc:
            final = last_attempt or not exc.retryable
            _settle_failure(deps, call, lease, attempt, exc.reason, final=final)
            if not final:
                raise RetryTask(exc.reason, delay=1.0) from exc
            return
        if _settle_success(deps, call, mapping, lease, attempt, voice, started) != "stale":
            return
        # The mapping or its audio changed while the voice was made: clone it as it is now.
    raise RetryTask("The caller's mapping kept changing while its voice was cloned", delay=1.0)


def _make_voice(
    deps: PrecallDeps, account_id: str, mapping: CallerVoiceMapping, attempt: _Attempt
) -> ClonedVoice:
    try:
        if mapping.voice_sample_url is not None:
            check_allowed(deps.settings, account_id, mapping.voice_sample_url)
        sample = deps.samples.read(
            mapping.voice_sample_url, mapping.sample_id, owners={mapping.sample_owner}
        )
        attempt.sample_bytes = len(sample.data)
        checked = check_read(sample, deps.settings)
    except SampleError as exc:
        raise CloneFailedError(exc.message, retryable=getattr(exc, "retryable", False)) from exc
    request = CloneRequest(
        name=mapping.voice_name,
        audio=sample.data,
        filename=f"{mapping.id}.{checked.format}",
        content_type=checked.content_type,
        description=mapping.description,
        labels={"source": "precall"},
        language=sample.language,
        target=sample.stored.target if sample.stored is not None else None,
    )
    try:
        cloner = deps.cloner
    except PlatformError as exc:  # e.g. ElevenLabs chosen without its key
        raise CloneFailedError(
            f"Cloning is not configured: {exc.message}", retryable=False
        ) from exc
    api_started = time.monotonic()
    try:
        return cloner.clone(request)
    finally:
        attempt.api_ms = _ms_since(api_started)


def _settle_success(  # noqa: PLR0917 - one internal step, called once
    deps: PrecallDeps,
    call: CallLog,
    mapping: CallerVoiceMapping,
    lease: _Lease,
    attempt: _Attempt,
    voice: ClonedVoice,
    started: float,
) -> _Saved:
    """Save the voice made from ``mapping`` for ``call``; return what became of it.

    ``ready`` (the call speaks it) or ``cached`` (the call was settled meanwhile);
    ``discarded`` or ``stale``: released, not cached, because the account went, or the
    caller's live mapping is no longer ``mapping`` with its number and sample (changed,
    moved or deleted while the voice was made: the transaction that changed it expired
    what was cached then, not this voice), or new audio was uploaded under its recording's
    name. ``stale`` leaves the call pending, to be cloned from the mapping as it is now.
    """
    # Named on the lease before the commit: a crash in between leaves it to be released.
    pending = {"provider": voice.provider, "voice_id": voice.provider_voice_id}
    now = deps.clock()
    try:
        deps.store.update(CLONE_LEASES, lease.key, {"pending_voice": pending})
    except PlatformError as exc:  # the lease lapsed and went: keep nothing of this attempt
        deps.store.set(
            VOICE_RELEASES,
            release_id(voice.provider, voice.provider_voice_id),
            release_document(voice.provider, voice.provider_voice_id, "lease lost", now),
        )
        raise RetryTask("The clone lease was lost before the clone was saved") from exc
    entry = VoiceCloneCache.for_new_clone(
        caller_id=call.caller_id,
        cloned_voice_id=voice.cloned_voice_id,
        now=now,
        ttl=deps.ttl,
        account_id=call.account_id,
        mapping_id=mapping.id,
        provider=voice.provider,
        provider_voice_id=voice.provider_voice_id,
        language=voice.language,
        pitch=voice.pitch,
        speed=voice.speed,
    )
    log = VoiceCloneLog(
        caller_id=call.caller_id,
        cloned_voice_id=voice.cloned_voice_id,
        clone_created_at=now,
        api_response_time_ms=attempt.api_ms,
        sample_file_size_bytes=attempt.sample_bytes,
        status=CloneStatus.SUCCESS,
        created_at=now,
        account_id=call.account_id,
        greeting_call_id=call.call_id,
        provider=voice.provider,
    )

    def commit(tx: Transaction) -> _Saved:
        current = tx.get(CALLS, call.id)
        held = tx.get(CLONE_LEASES, lease.key)
        ours = held is not None and held.data.get("owner") == lease.owner
        if current is None:
            # The account went while cloning: give the voice back, keep nothing.
            _tx_release_voice(tx, voice, "orphaned", now)
            if ours:
                tx.delete(CLONE_LEASES, lease.key)
            return "discarded"
        # Read in this transaction, so a change of the mapping commits wholly before it
        # (and is seen here) or after it (and expires the entry written here).
        live = tx_live_mapping_for(tx, str(call.account_id), call.caller_id)
        changed = live is None or not live.clones_like(mapping)
        # New audio under the recording's name writes its version after the object, then
        # expires the clones cached from it: this voice, if saved first, or seen here.
        replaced = not changed and attempt.audio_version != audio_version(
            deps, str(call.account_id), mapping.voice_sample_url, tx
        )
        if changed or replaced:
            what = "mapping changed" if changed else "new audio"
            _tx_release_voice(tx, voice, what, now)
            unused = with_changes(log, error_message=f"Not used: {what} meanwhile")
            tx.create(CLONE_LOG, unused.id, unused.to_document())
            pending = call_from(current).clone_state is CloneState.PENDING
            if ours and pending:  # held on for the clone of the mapping as it is now
                tx.update(CLONE_LEASES, lease.key, {"pending_voice": None})
            elif ours:
                tx.delete(CLONE_LEASES, lease.key)
            return "stale" if pending else "discarded"
        tx.create(CLONE_CACHE, entry.id, entry.to_document())
        tx.create(CLONE_LOG, log.id, log.to_document())
        settled = call_from(current).clone_state is CloneState.PENDING
        if settled:
            _tx_ready(tx, call_from(current), entry, now, _ms_since(started), cache_hit=False)
        if ours:
            tx.delete(CLONE_LEASES, lease.key)
        return "ready" if settled else "cached"

    saved = deps.store.run_transaction(commit)
    if saved == "ready":
        queue_notification(deps, "clone.ready", call.id)
    return saved


def _tx_release_voice(tx: Transaction, voice: ClonedVoice, reason: str, now: datetime) -> None:
    tx.set(
        VOICE_RELEASES,
        release_id(voice.provider, voice.provider_voice_id),
        release_document(voice.provider, voice.provider_voice_id, reason, now),
    )


def _tx_ready(
    tx: Transaction,
    call: CallLog,
    entry: VoiceCloneCache,
    now: datetime,
    duration_ms: int,
    *,
    cache_hit: bool,
) -> None:
    ready = call.clone_ready(cloned_voice_id=entry.cloned_voice_id, at=now)
    event = CloneReadyEvent(
        id=call.id,
        caller_id=call.caller_id,
        greeting_call_id=call.call_id,
        cloned_voice_id=entry.cloned_voice_id,
        clone_duration_ms=duration_ms,
        ready_at=now,
        created_at=now,
        account_id=call.account_id,
        cache_hit=cache_hit,
    )
    tx.set(CALLS, call.id, ready.to_document())
    tx.create(READY_EVENTS, event.id, event.to_document())


def _settle_failure(
    deps: PrecallDeps, call: CallLog, lease: _Lease, attempt: _Attempt, reason: str, *, final: bool
) -> None:
    now = deps.clock()
    log = VoiceCloneLog(
        caller_id=call.caller_id,
        api_response_time_ms=attempt.api_ms,
        sample_file_size_bytes=attempt.sample_bytes,
        status=CloneStatus.FAILED,
        error_message=reason,
        created_at=now,
        account_id=call.account_id,
        greeting_call_id=call.call_id,
        provider=None,
    )

    def record(tx: Transaction) -> bool:
        current = tx.get(CALLS, call.id)
        held = tx.get(CLONE_LEASES, lease.key) if lease.key else None
        if current is None:
            return False
        tx.create(CLONE_LOG, log.id, log.to_document())
        if held is not None and held.data.get("owner") == lease.owner:
            tx.delete(CLONE_LEASES, lease.key)
        latest = call_from(current)
        if not final or latest.clone_state is not CloneState.PENDING:
            return False
        event = CloneFailedEvent(
            id=call.id,
            caller_id=call.caller_id,
            greeting_call_id=call.call_id,
            error_message=reason,
            failed_at=now,
            created_at=now,
            account_id=call.account_id,
        )
        tx.set(CALLS, call.id, latest.clone_failed(reason=reason, at=now).to_document())
        tx.create(FAILED_EVENTS, event.id, event.to_document())
        return True

    logger.info("Clone attempt failed for call %s: %s", call.id, reason)
    if deps.store.run_transaction(record):
        queue_notification(deps, "clone.failed", call.id)


def _ms_since(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))
