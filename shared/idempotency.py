"""Idempotency keys: a client's retry of a POST gets the first answer, not a second effect.

A mobile client that loses the answer to ``POST /voice-models`` cannot tell whether the
model was made; retrying would make a second one. With an ``Idempotency-Key`` header (1-255
printable ASCII characters, as in the IETF's ``draft-ietf-httpapi-idempotency-key-header``)
on an authenticated POST with a JSON body, the platform answers every request that carries
the same key with the first one's answer:

- the first request claims the key for its user (one transaction), runs, and stores its
  answer (status, JSON body, ``Content-Type``, ``Location``, ``Retry-After``) for
  ``KEY_TTL``; an error (4xx or 5xx: nothing was done, or it may be transient, such as a
  429) or an answer that is not JSON (audio, a stream) is not stored, and the key is freed
  for the retry to run again;
- a request with the same key and the same method, path, query and body gets the stored
  answer, with ``Idempotent-Replayed: true``;
- the same key with another request is 422 ``IDEMPOTENCY_KEY_REUSED``;
- the same key while the first request still runs is 409 ``IDEMPOTENCY_KEY_IN_USE`` (with
  ``Retry-After``). A claim is a lease of ``CLAIM_LEASE``, renewed every ``RENEW_EVERY``
  while its request runs (``shared.store.leases.Heartbeat``, in ``shared.http``): a request
  that runs long keeps its key, and one whose instance died (killed, out of memory, scaled
  in) stops renewing, so a retry takes the key over a lease later rather than after the
  longest a request may run. Renewals stop at ``LONGEST_RUN`` after the claim, so a
  handler hung in a live instance frees its key then.

Keys are per user (``idempotency_keys/{sha256(user, key)}``), so users never see each
other's answers. Firestore's TTL deletes expired keys (``expires_at``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.errors import ConflictError, InvalidRequestError, UnprocessableError
from shared.store.base import DocumentStore, Transaction

COLLECTION = "idempotency_keys"
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_TTL = timedelta(hours=24)
CLAIM_LEASE = timedelta(seconds=30)
RENEW_EVERY = CLAIM_LEASE / 3  # two renewals may fail (a store blip) before it lapses
# Longer than any request may run (the HTTP functions' longest timeout is 300 s,
# infra/functions.json). A claim written before claims were leases (no ``lease_until``)
# holds this long too.
LONGEST_RUN = timedelta(minutes=10)
MAX_STORED_BYTES = 256 * 1024
STORED_HEADERS = ("Content-Type", "Location", "Retry-After")
_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


class IdempotencyKeyInvalidError(InvalidRequestError):
    code = "INVALID_IDEMPOTENCY_KEY"
    default_message = "An Idempotency-Key is 1-255 printable ASCII characters"


class IdempotencyKeyInUseError(ConflictError):
    code = "IDEMPOTENCY_KEY_IN_USE"
    default_message = "A request with this Idempotency-Key is still running; retry shortly"


class IdempotencyKeyReusedError(UnprocessableError):
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was used with another request"


@dataclass(frozen=True)
class StoredAnswer:
    """The first request's answer, replayed to its retries."""

    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    """The key, held by the request that runs."""

    document_id: str
    token: str


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """Return what identifies a request for its key: method, path, query and body."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyKeys:
    """The claimed keys and their stored answers, in the document store."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def claim(self, user_id: str, key: str, request: str, now: datetime) -> Claim | StoredAnswer:
        """Claim ``key`` for the request whose fingerprint is ``request``.

        Returns the claim (run the request, then ``finish`` or ``release``) or the stored
        answer to replay.

        Raises:
            IdempotencyKeyInvalidError, IdempotencyKeyInUseError, IdempotencyKeyReusedError.
        """
        if not _KEY.match(key):
            raise IdempotencyKeyInvalidError()
        document_id = hashlib.sha256(f"{user_id}\n{key}".encode()).hexdigest()
        token = uuid.uuid4().hex

        def run(tx: Transaction) -> Claim | StoredAnswer:
            found = tx.get(COLLECTION, document_id)
            if found is not None and found.data.get("expires_at", now) > now:
                data = found.data
                if data.get("request") != request:
                    raise IdempotencyKeyReusedError()
                if data.get("state") == "done":
                    return StoredAnswer(
                        int(data["status"]), str(data["body"]), dict(data.get("headers") or {})
                    )
                lease_until = data.get("lease_until") or (data.get("claimed_at", now) + LONGEST_RUN)
                if now < lease_until:
                    raise IdempotencyKeyInUseError(retry_after=1)
            tx.set(
                COLLECTION,
                document_id,
                {
                    "user_id": user_id,
                    "request": request,
                    "state": "running",
                    "token": token,
                    "claimed_at": now,
                    "lease_until": now + CLAIM_LEASE,
                    "expires_at": now + KEY_TTL,
                },
            )
            return Claim(document_id, token)

        answer: Claim | StoredAnswer = self._store.run_transaction(run)
        return answer

    def renew(self, claim: Claim, now: datetime) -> bool:
        """Extend the claim's lease to ``now + CLAIM_LEASE``, never past ``LONGEST_RUN``
        after the claim; return whether to renew it again.

        False when the request is no longer the key's (finished, released or taken over),
        or when this renewal reached ``LONGEST_RUN``: its heartbeat stops.
        """

        def run(tx: Transaction) -> bool:
            found = tx.get(COLLECTION, claim.document_id)
            if found is None or found.data.get("token") != claim.token:
                return False
            if found.data.get("state") != "running":
                return False
            deadline: datetime = found.data["claimed_at"] + LONGEST_RUN
            until = min(now + CLAIM_LEASE, deadline)
            tx.update(COLLECTION, claim.document_id, {"lease_until": until})
            return until < deadline

        held: bool = self._store.run_transaction(run)
        return held

    def finish(self, claim: Claim, answer: StoredAnswer) -> None:
        """Store the answer to replay, if the claim is still this request's."""

        def run(tx: Transaction) -> None:
            found = tx.get(COLLECTION, claim.document_id)
            if found is None or found.data.get("token") != claim.token:
                return
            done: dict[str, Any] = {
                "state": "done",
                "status": answer.status,
                "body": answer.body,
                "headers": answer.headers,
            }
            tx.update(COLLECTION, claim.document_id, done)

        self._store.run_transaction(run)

    def release(self, claim: Claim) -> None:
        """Free the key (the request failed in a way its retry may not repeat)."""

        def run(tx: Transaction) -> None:
            found = tx.get(COLLECTION, claim.document_id)
            if found is not None and found.data.get("token") == claim.token:
                tx.delete(COLLECTION, claim.document_id)

        self._store.run_transaction(run)
