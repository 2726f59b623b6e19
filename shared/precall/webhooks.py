"""Telling the configured webhook that a call's clone is ready or has failed.

Each settled clone queues the task ``precall.notify`` (de-duplicated per event), whose
handler POSTs the event as JSON to ``VOICE_PRECALL_WEBHOOK_URL``; any answer but a 2xx, or
no answer, raises ``RetryTask`` so the task queue retries with its backoff and finally
dead-letters it. With ``VOICE_PRECALL_WEBHOOK_SECRET`` the body is signed:
``X-Voice-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (the sessions' agent
webhook signs the same way). ``X-Voice-Event`` names the event type and
``X-Voice-Event-Id`` its id, the same on every retry, so the receiver can drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any, Literal

from shared.lazy import lazy_module
from shared.model import RequestModel
from shared.precall.deps import PrecallDeps
from shared.precall.model import CallLog, CloneState
from shared.precall.repository import failed_event_of, ready_event_of
from shared.precall.voices import CLONE_VOICE_PREFIX
from shared.tasks.errors import RetryTask, TaskAlreadyExistsError

if TYPE_CHECKING:
    import requests
else:
    requests = lazy_module("requests")  # a webhook's delivery only

logger = logging.getLogger(__name__)

NOTIFY_TASK = "precall.notify"
EventKind = Literal["clone.ready", "clone.failed"]


class Notification(RequestModel):
    """Payload of ``precall.notify``: which event to send."""

    kind: EventKind
    event_id: str


def sign(secret: bytes, body: bytes) -> str:
    """Return the ``X-Voice-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def queue_notification(deps: PrecallDeps, kind: EventKind, event_id: str) -> None:
    """Queue the webhook call for an event (nothing when no webhook is configured)."""
    if not deps.settings.precall_webhook_url:
        return
    try:
        deps.task_queue().enqueue(
            deps.settings.default_queue,
            NOTIFY_TASK,
            Notification(kind=kind, event_id=event_id),
            dedup_key=f"precall-notify:{kind}:{event_id}",
        )
    except TaskAlreadyExistsError:
        logger.debug("The %s notification of %s is already queued", kind, event_id)


def notify_settled(deps: PrecallDeps, call: CallLog) -> None:
    """Queue the notification of a call whose clone is settled (again, after a crash)."""
    if call.clone_state is CloneState.READY:
        queue_notification(deps, "clone.ready", call.id)
    elif call.clone_state is CloneState.FAILED:
        queue_notification(deps, "clone.failed", call.id)


def event_body(deps: PrecallDeps, notification: Notification) -> dict[str, Any] | None:
    """Return the JSON the webhook gets for the event, or None when it no longer exists."""
    if notification.kind == "clone.ready":
        ready = ready_event_of(deps.store, notification.event_id)
        if ready is None:
            return None
        data = ready.to_api()
        data["voice"] = f"{CLONE_VOICE_PREFIX}{ready.cloned_voice_id}"
    else:
        failed = failed_event_of(deps.store, notification.event_id)
        if failed is None:
            return None
        data = failed.to_api()
    data.pop("id", None)
    return {"type": notification.kind, "eventId": notification.event_id, **data}


def send_notification(deps: PrecallDeps, notification: Notification) -> None:
    """POST the event to the webhook; raise RetryTask when it was not accepted."""
    url = deps.settings.precall_webhook_url
    body = event_body(deps, notification)
    if not url or body is None:
        return  # unconfigured since, or the account was deleted meanwhile
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Voice-Event": notification.kind,
        "X-Voice-Event-Id": notification.event_id,
    }
    secret = deps.settings.precall_webhook_secret
    if secret is not None:
        headers["X-Voice-Signature"] = sign(secret.get_secret_value().encode(), raw)
    try:
        response = requests.post(
            url, data=raw, headers=headers, timeout=deps.settings.precall_webhook_timeout_seconds
        )
    except requests.RequestException as exc:
        raise RetryTask(f"The pre-call webhook is unreachable ({type(exc).__name__})") from exc
    if not 200 <= response.status_code < 300:
        raise RetryTask(f"The pre-call webhook answered {response.status_code}")
