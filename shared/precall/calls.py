"""Calls: the telephony webhook, polling a call's clone, the transfer and the call's end.

``receive_call`` answers the webhook at once: it logs the call (status ``initiated``, clone
``pending``) and queues the clone as the task ``precall.clone``; the same greeting call
id again returns the logged call (``duplicate``) and queues nothing new unless its clone is
still pending (the queue's de-duplication key keeps that to one task). A call moves only
from ``initiated`` to ``completed`` or ``failed``; ending it again with the same status is
answered with the ended call, a different status is a conflict.
"""

from __future__ import annotations

import logging

from shared.errors import InvalidStateTransitionError
from shared.model import new_id
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.errors import (
    CallAlreadyEndedError,
    CallIdConflictError,
    CallNotFoundError,
    CloneNotReadyError,
    UnknownCallerError,
)
from shared.precall.model import CallLog, CallStatus, CloneState, CloneTransferEvent
from shared.precall.repository import (
    CALLS,
    TRANSFER_EVENTS,
    call_from,
    call_key,
    tx_live_mapping_for,
)
from shared.precall.schemas import CallWebhook, EndRequest, TransferRequest
from shared.store.base import Transaction

logger = logging.getLogger(__name__)

CLONE_TASK = "precall.clone"


def receive_call(deps: PrecallDeps, caller: Caller, request: CallWebhook) -> tuple[CallLog, bool]:
    """Log the call and queue its clone; return the call and whether it was logged before.

    Raises UnknownCallerError (no live mapping for the number), CallIdConflictError (the
    greeting call id is logged for another number) or AccessDeniedError.
    """
    account_id = caller.account_for(request.account_id)
    key = call_key(account_id, request.greeting_call_id)
    now = deps.clock()

    def log(tx: Transaction) -> tuple[CallLog, bool]:
        existing = tx.get(CALLS, key)
        if existing is not None:
            call = call_from(existing)
            if call.caller_id != request.caller_id:
                raise CallIdConflictError()
            return call, True
        mapping = tx_live_mapping_for(tx, account_id, request.caller_id)
        if mapping is None:
            raise UnknownCallerError(f"No live caller mapping for {request.caller_id}")
        call = CallLog(
            id=key,
            call_id=request.greeting_call_id,
            threecx_call_id=request.threecx_call_id,
            caller_id=request.caller_id,
            # A telephony clock ahead of ours: the call started when we heard of it.
            call_started_at=min(request.call_started_at or now, now),
            metadata=request.metadata,
            account_id=account_id,
            mapping_id=mapping.id,
            created_at=now,
            updated_at=now,
        )
        tx.create(CALLS, key, call.to_document())
        return call, False

    call, duplicate = deps.store.run_transaction(log)
    if call.clone_state is CloneState.PENDING:
        queue_clone(deps, call)
    return call, duplicate


def queue_clone(deps: PrecallDeps, call: CallLog) -> None:
    """Queue the clone task of ``call`` (once per call: a repeat is de-duplicated)."""
    # With the task queue, which only requests that queue work build.
    from shared.tasks.errors import TaskAlreadyExistsError  # noqa: PLC0415 - see above

    try:
        deps.task_queue().enqueue(
            deps.settings.default_queue,
            CLONE_TASK,
            {"callKey": call.id},
            dedup_key=f"precall-clone:{call.id}",
        )
    except TaskAlreadyExistsError:
        logger.debug("The clone of call %s is already queued", call.id)


def get_call(deps: PrecallDeps, caller: Caller, call_id: str, account: str | None) -> CallLog:
    """Return a call of the account by its id or its greeting call id.

    Raises CallNotFoundError.
    """
    account_id = caller.account_for(account)
    for key in (call_id, call_key(account_id, call_id)):
        document = deps.store.get(CALLS, key)
        if document is not None and document.data.get("account_id") == account_id:
            return call_from(document)
    raise CallNotFoundError()


def transfer_call(
    deps: PrecallDeps, caller: Caller, call_id: str, request: TransferRequest
) -> CallLog:
    """Record the hand-off of the call to the agent call; return the call.

    Repeating the same agent call id records nothing new. Raises CallNotFoundError,
    CallAlreadyEndedError or CloneNotReadyError (the agent has no clone to speak with).
    """
    current = get_call(deps, caller, call_id, request.account_id)
    now = deps.clock()

    def transfer(tx: Transaction) -> CallLog:
        document = tx.get(CALLS, current.id)
        if document is None:
            raise CallNotFoundError()
        call = call_from(document)
        if call.agent_call_id == request.agent_call_id:
            return call
        if call.status is not CallStatus.INITIATED:
            raise CallAlreadyEndedError(f"The call is {call.status.value}")
        if call.clone_state is not CloneState.READY or call.cloned_voice_id is None:
            raise CloneNotReadyError(f"The call's clone is {call.clone_state.value}")
        moved = call.transferred(agent_call_id=request.agent_call_id, at=now)
        event = CloneTransferEvent(
            id=new_id(),
            greeting_call_id=call.call_id,
            agent_call_id=request.agent_call_id,
            cloned_voice_id=call.cloned_voice_id,
            transferred_at=now,
            created_at=now,
            account_id=call.account_id,
        )
        tx.set(CALLS, call.id, moved.to_document())
        tx.create(TRANSFER_EVENTS, event.id, event.to_document())
        return moved

    return deps.store.run_transaction(transfer)


def end_call(deps: PrecallDeps, caller: Caller, call_id: str, request: EndRequest) -> CallLog:
    """Close the call as completed or failed with its transcript and duration.

    Raises CallNotFoundError or CallAlreadyEndedError (it ended with another status).
    """
    current = get_call(deps, caller, call_id, request.account_id)
    now = deps.clock()

    def end(tx: Transaction) -> CallLog:
        document = tx.get(CALLS, current.id)
        if document is None:
            raise CallNotFoundError()
        call = call_from(document)
        if call.status is request.status:
            return call  # a retried request: the call ended as asked
        ended_at = max(now, call.call_started_at)
        try:
            if request.status is CallStatus.COMPLETED:
                ended = call.complete(ended_at=ended_at, transcript=request.transcript)
            else:
                ended = call.fail(ended_at=ended_at, transcript=request.transcript)
        except InvalidStateTransitionError as exc:
            raise CallAlreadyEndedError(f"The call already ended as {call.status.value}") from exc
        tx.set(CALLS, call.id, ended.to_document())
        return ended

    return deps.store.run_transaction(end)
