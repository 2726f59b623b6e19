"""Object-finalized CloudEvents, built and delivered exactly as Eventarc does.

In production Eventarc posts ``google.cloud.storage.object.v1.finalized`` to the function
subscribed to a bucket, in binary content mode: the attributes as ``ce-*`` headers and
the object's JSON API resource as the body. Locally the object storage adapter builds the
same event with ``finalized_event`` and hands it to an ``EventPoster``, which posts it to
the gateway from a background thread (delivery is asynchronous in production too, and a
write must not wait for, or fail because of, its subscriber).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from shared.blobs.base import ObjectInfo
from shared.errors import ServiceUnavailableError
from shared.lazy import lazy_module

if TYPE_CHECKING:
    import requests
else:
    requests = lazy_module("requests")  # posting an event only

logger = logging.getLogger(__name__)

FINALIZED_TYPE = "google.cloud.storage.object.v1.finalized"
_STOP = object()
_API = "https://www.googleapis.com"


def rfc3339(value: datetime) -> str:
    """Return ``value`` in UTC as Cloud Storage writes times: ``2026-01-02T03:04:05.678Z``."""
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def object_resource(info: ObjectInfo) -> dict[str, Any]:
    """Return the Cloud Storage JSON API resource of an object (numbers as strings)."""
    resource: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{info.bucket}/{info.name}/{info.generation}",
        "selfLink": f"{_API}/storage/v1/b/{info.bucket}/o/{quote(info.name, safe='')}",
        "name": info.name,
        "bucket": info.bucket,
        "generation": str(info.generation),
        "metageneration": str(info.metageneration),
        "contentType": info.content_type,
        "timeCreated": rfc3339(info.time_created),
        "updated": rfc3339(info.updated),
        "storageClass": "STANDARD",
        "timeStorageClassUpdated": rfc3339(info.time_created),
        "size": str(info.size),
        "md5Hash": info.md5_hash,
        "mediaLink": (
            f"https://storage.googleapis.com/download/storage/v1/b/{info.bucket}/o/"
            f"{quote(info.name, safe='')}?generation={info.generation}&alt=media"
        ),
        "crc32c": info.crc32c,
        "etag": info.md5_hash,
    }
    if info.metadata:
        resource["metadata"] = dict(info.metadata)
    return resource


def finalized_event(info: ObjectInfo, *, event_id: str | None = None) -> CloudEvent:
    """Return the ``object.v1.finalized`` CloudEvent Eventarc sends for a new object."""
    attributes = {
        "specversion": "1.0",
        "id": event_id or uuid.uuid4().hex,
        "type": FINALIZED_TYPE,
        "source": f"//storage.googleapis.com/projects/_/buckets/{info.bucket}",
        "subject": f"objects/{info.name}",
        "time": rfc3339(info.updated),
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes, object_resource(info))


class FinalizedObject(NamedTuple):
    """What a storage trigger reads from an object-finalized event."""

    bucket: str
    name: str
    size: int
    content_type: str
    generation: int
    time: datetime


class MalformedEventError(ValueError):
    """A storage event without the object fields Eventarc always sends."""


def finalized_object(event: CloudEvent) -> FinalizedObject:
    """Return the object a ``object.v1.finalized`` event announces.

    Raises MalformedEventError when the event lacks or garbles the object's fields (a
    subscriber acknowledges such an event: redelivering it cannot repair it).
    """
    data = event.data
    if not isinstance(data, dict):
        raise MalformedEventError("the event carries no object resource")
    try:
        when = str(event.get("time") or data.get("updated") or data["timeCreated"])
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
        return FinalizedObject(
            bucket=str(data["bucket"]),
            name=str(data["name"]),
            size=int(data.get("size", 0)),
            content_type=str(data.get("contentType") or "application/octet-stream"),
            generation=int(data.get("generation", 0)),
            time=moment if moment.tzinfo else moment.replace(tzinfo=UTC),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEventError(f"the event's object resource is malformed: {exc}") from exc


def bucket_of(event: CloudEvent) -> str:
    """Return the bucket named by a storage event's ``source``."""
    source = str(event["source"])
    return source.rsplit("/buckets/", 1)[-1]


def post_binary_cloudevent(
    url: str,
    event: CloudEvent,
    *,
    session: requests.Session | None = None,
    timeout: float = 30.0,
) -> None:
    """POST ``event`` to ``url`` in binary content mode, as Eventarc delivers it.

    Raises ServiceUnavailableError when the receiver cannot be reached or answers with
    anything but 2xx (for a function, an error status means "retry").
    """
    headers, body = to_binary(event)
    sender = session or requests
    try:
        response = sender.post(url, headers=headers, data=body, timeout=timeout)
    except requests.RequestException as exc:
        raise ServiceUnavailableError(f"Event receiver unreachable: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise ServiceUnavailableError(
            f"Event receiver answered {response.status_code} to {event['type']}"
        )


class EventPoster:
    """Posts events from a background thread, retrying with backoff; a storage publisher.

    ``url_for(event)`` returns where to post (the gateway's storage-event route), or None
    to drop the event (no subscriber). Failed posts are retried ``attempts`` times, then
    logged and dropped, as Eventarc gives up after its retry window.
    """

    def __init__(
        self,
        url_for: Callable[[CloudEvent], str | None],
        *,
        attempts: int = 5,
        backoff_seconds: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        self._url_for = url_for
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._timeout = timeout
        self._queue: queue.Queue[Any] = queue.Queue()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="storage-events", daemon=True)
        self._thread.start()

    def __call__(self, event: CloudEvent) -> None:
        """Queue ``event`` for delivery and return at once."""
        self._queue.put(event)

    def join(self) -> None:
        """Wait until every queued event was delivered or given up."""
        self._queue.join()

    def close(self, timeout: float = 60.0) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout=timeout)
        self._session.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._deliver(item)
            finally:
                self._queue.task_done()

    def _deliver(self, event: CloudEvent) -> None:
        url = self._url_for(event)
        if url is None:
            return
        for attempt in range(1, self._attempts + 1):
            try:
                post_binary_cloudevent(url, event, session=self._session, timeout=self._timeout)
                return
            except ServiceUnavailableError as exc:
                if attempt == self._attempts:
                    logger.error("Dropped %s %s: %s", event["type"], event["subject"], exc)
                    return
                time.sleep(self._backoff * 2 ** (attempt - 1))
