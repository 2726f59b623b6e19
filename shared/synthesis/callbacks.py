"""Synthesis job callbacks: a signed POST to the client's ``callbackUrl`` when a job finishes.

A request may name a ``callbackUrl`` besides polling ``GET /synthesis/jobs/{id}``. When the
job completes or fails, ``notify_finished`` queues one ``synthesis.callback`` task, which
POSTs ``{"event": "synthesis.completed" | "synthesis.failed", "job": {...}}`` (the job as
``GET /synthesis/jobs`` lists it) with the header
``X-Voice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, keyed with
``VOICE_CALLBACK_SIGNING_SECRET`` (locally, a secret generated under the data dir). A
receiver checks the MAC and that ``t`` is recent. Any answer but 2xx, or no answer, is
retried by the task queue with its backoff, then dead-lettered.

In production a callback URL must be https and every address its host resolves to must be
public (no loopback, private, link-local or reserved ranges), checked when the job is
requested and again before each delivery, so a callback cannot reach the platform's own
network. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.auth import load_or_create_dev_secret
from shared.config import Settings
from shared.errors import ConfigurationError, InvalidRequestError
from shared.lazy import lazy_module
from shared.synthesis.model import SynthesisJob, SynthesisStatus
from shared.tasks.base import TaskContext, TaskQueue
from shared.tasks.errors import RetryTask, TaskAlreadyExistsError

if TYPE_CHECKING:
    import requests
else:
    requests = lazy_module("requests")  # a callback's delivery only

logger = logging.getLogger(__name__)

CALLBACK_TASK = "synthesis.callback"
SIGNATURE_HEADER = "X-Voice-Signature"
DELIVERY_TIMEOUT_SECONDS = 10.0
MAX_URL_LENGTH = 2048

Resolver = Callable[[str], list[str]]
"""Returns the IP addresses a host name resolves to."""


class CallbackTask(BaseModel):
    """Payload of ``synthesis.callback``."""

    job_id: str


def resolve_host(host: str) -> list[str]:
    """Return every address ``host`` resolves to (empty when it does not resolve)."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in found})


def check_callback_url(url: str, settings: Settings, resolve: Resolver = resolve_host) -> str:
    """Return ``url`` if the platform may POST to it; raise InvalidRequestError otherwise.

    Every deployment needs an absolute http(s) URL without credentials; production needs
    https and a host whose every address is public.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequestError(f"callbackUrl is longer than {MAX_URL_LENGTH} characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError("callbackUrl must be an absolute https URL")
    if parts.username or parts.password:
        raise InvalidRequestError("callbackUrl must not carry credentials")
    if not settings.is_production:
        return url
    if parts.scheme != "https":
        raise InvalidRequestError("callbackUrl must use https")
    addresses = resolve(parts.hostname)
    if not addresses:
        raise InvalidRequestError(f"callbackUrl's host {parts.hostname} does not resolve")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise InvalidRequestError(
                "callbackUrl must reach a public address, not a private, loopback, "
                "link-local or reserved one"
            )
    return url


def signing_secret(settings: Settings) -> bytes:
    """Return the key callbacks are signed with; raise ConfigurationError in production
    without ``VOICE_CALLBACK_SIGNING_SECRET``.
    """
    if settings.callback_signing_secret is not None:
        return settings.callback_signing_secret.get_secret_value().encode()
    if settings.is_production:
        raise ConfigurationError("Callbacks need VOICE_CALLBACK_SIGNING_SECRET")
    return load_or_create_dev_secret(settings.data_dir / "callback-signing-secret")


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return the ``X-Voice-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def notify_finished(queue: Callable[[], TaskQueue], settings: Settings, job: SynthesisJob) -> None:
    """Queue the callback of a finished ``job`` when it has a ``callbackUrl`` (once)."""
    if not job.config.get("callbackUrl"):
        return
    try:
        queue().enqueue(
            settings.default_queue,
            CALLBACK_TASK,
            CallbackTask(job_id=job.id),
            dedup_key=f"synthesis-callback:{job.id}",
        )
    except TaskAlreadyExistsError:
        logger.info("The callback of synthesis job %s was already queued", job.id)


def deliver_callback(
    settings: Settings,
    job: SynthesisJob,
    event_body: dict[str, object],
    ctx: TaskContext,
    *,
    resolve: Resolver = resolve_host,
) -> None:
    """POST the signed event to the job's ``callbackUrl``; raise RetryTask unless it is 2xx."""
    url = str(job.config["callbackUrl"])
    try:
        check_callback_url(url, settings, resolve)
    except InvalidRequestError as exc:
        # Its host now resolves somewhere it may not go: retrying will not help.
        logger.warning("Callback of job %s not sent: %s", job.id, exc.message)
        return
    event = "synthesis.completed" if job.status is SynthesisStatus.COMPLETED else "synthesis.failed"
    body = json.dumps({"event": event, "job": event_body}, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(signing_secret(settings), int(time.time()), body),
        "User-Agent": "voice-platform-callback/1",
        "X-Voice-Delivery": ctx.task_id,
    }
    try:
        answer = requests.post(
            url, data=body, headers=headers, timeout=DELIVERY_TIMEOUT_SECONDS, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise RetryTask(f"callback of job {job.id}: {type(exc).__name__}") from exc
    if not 200 <= answer.status_code < 300:
        raise RetryTask(f"callback of job {job.id}: HTTP {answer.status_code}")
