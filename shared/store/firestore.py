"""The production document store: Cloud Firestore through ``google-cloud-firestore``.

Also runs against Google's Firestore emulator (``FIRESTORE_EMULATOR_HOST``). The adapter
only translates: our ``Vector``, ``Increment`` and ``DELETE_FIELD`` to the client's types,
the client's errors to ours, and the effective sort order into explicit ``order_by`` calls
so page cursors carry every value they need.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
from google.cloud.firestore_v1.transforms import Maximum as FirestoreMaximum
from google.cloud.firestore_v1.vector import Vector as FirestoreVector

from shared.errors import (
    DocumentAlreadyExistsError,
    DocumentNotFoundError,
    InvalidRequestError,
    ServiceUnavailableError,
    TransactionContentionError,
)
from shared.store._cursor import decode_cursor, encode_cursor
from shared.store.base import (
    DOCUMENT_ID,
    MAX_DOCUMENT_DEPTH,
    DeleteField,
    Document,
    DocumentStore,
    Filter,
    Increment,
    Maximum,
    Neighbour,
    Page,
    Query,
    Transaction,
    Vector,
    Write,
    check_collection,
    check_doc_id,
    check_field,
    check_nearest_request,
    effective_order,
    is_valid_doc_id,
    naive_to_utc,
)

T = TypeVar("T")
_OPS = {"array-contains": "array_contains"}
_DISTANCE_FIELD = "_vector_distance"
_GET_ALL_CHUNK = 300


class FirestoreDocumentStore(DocumentStore):
    """Document store on Cloud Firestore (or its emulator)."""

    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]  # the client is untyped

    def _ref(self, collection: str, doc_id: str) -> Any:
        check_collection(collection)
        check_doc_id(doc_id)
        return self._client.collection(collection).document(doc_id)

    # -- reads -------------------------------------------------------------------------

    def get(self, collection: str, doc_id: str) -> Document | None:
        if not is_valid_doc_id(doc_id):
            return None  # no document can have it (an id from a client, say)
        with _translated_errors():
            snapshot = self._ref(collection, doc_id).get()
        return _document(snapshot) if snapshot.exists else None

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        refs = [self._ref(collection, d) for d in doc_ids if is_valid_doc_id(d)]
        return _get_many(self._client, refs, None)

    def query(self, query: Query) -> Page:
        orders = effective_order(query)
        native = self._native_query(query.collection, query.filters)
        for order in orders:
            direction = (
                firestore.Query.DESCENDING if order.descending else firestore.Query.ASCENDING
            )
            field = "__name__" if order.field == DOCUMENT_ID else order.field
            native = native.order_by(field, direction=direction)
        if query.cursor is not None:
            values = decode_cursor(query.cursor, orders)
            start: dict[str, Any] = {}
            for order, value in zip(orders, values, strict=True):
                if order.field == DOCUMENT_ID:
                    start["__name__"] = self._client.collection(query.collection).document(value)
                else:
                    start[order.field] = value
            native = native.start_after(start)
        if query.limit is not None:
            native = native.limit(query.limit + 1)
        with _translated_errors():
            documents = [_document(s) for s in native.stream()]
        if query.limit is None or len(documents) <= query.limit:
            return Page(documents)
        documents = documents[: query.limit]
        last = documents[-1]
        values = [
            last.id if order.field == DOCUMENT_ID else _field_value(last.data, order.field)
            for order in orders
        ]
        return Page(documents, encode_cursor(orders, values))

    def _native_query(self, collection: str, filters: Sequence[Filter]) -> Any:
        check_collection(collection)
        native: Any = self._client.collection(collection)
        for condition in filters:
            value = condition.value
            if isinstance(value, list | tuple) and condition.op == "in":
                value = [_to_native(v) for v in value]
            else:
                value = _to_native(value)
            op = _OPS.get(condition.op, condition.op)
            native = native.where(filter=FieldFilter(condition.field, op, value))
        return native

    def count(self, query: Query) -> int:
        native = self._native_query(query.collection, query.filters)
        with _translated_errors():
            result = native.count().get()
        return int(result[0][0].value)

    def find_nearest(
        self,
        collection: str,
        vector_field: str,
        query_vector: Sequence[float],
        *,
        limit: int,
        filters: Sequence[Filter] = (),
    ) -> list[Neighbour]:
        check_nearest_request(vector_field, query_vector, limit)
        native = self._native_query(collection, filters).find_nearest(
            vector_field,
            FirestoreVector([float(v) for v in query_vector]),
            distance_measure=DistanceMeasure.COSINE,
            limit=limit,
            distance_result_field=_DISTANCE_FIELD,
        )
        with _translated_errors():
            snapshots = native.get()
        neighbours = []
        for snapshot in snapshots:
            document = _document(snapshot)
            distance = float(document.data.pop(_DISTANCE_FIELD))
            neighbours.append(Neighbour(document, distance))
        return neighbours

    # -- writes ------------------------------------------------------------------------

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        with _translated_errors(collection, doc_id):
            self._ref(collection, doc_id).create(_to_native(dict(data)))

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        with _translated_errors(collection, doc_id):
            self._ref(collection, doc_id).set(_to_native(dict(data)), merge=merge)

    def update(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        for path in data:
            check_field(path)
        with _translated_errors(collection, doc_id):
            self._ref(collection, doc_id).update(_to_native(dict(data)))

    def delete(self, collection: str, doc_id: str) -> None:
        with _translated_errors(collection, doc_id):
            self._ref(collection, doc_id).delete()

    def commit_writes(self, writes: list[Write]) -> None:
        batch = self._client.batch()
        self._stage(batch, writes)
        with _translated_errors():
            batch.commit()

    def _stage(self, target: Any, writes: list[Write]) -> None:
        for write in writes:
            ref = self._ref(write.collection, write.doc_id)
            if write.kind == "create":
                target.create(ref, _to_native(write.data))
            elif write.kind == "set":
                target.set(ref, _to_native(write.data), merge=write.merge)
            elif write.kind == "update":
                for path in write.data:
                    check_field(path)
                target.update(ref, _to_native(write.data))
            else:
                target.delete(ref)

    def run_transaction(self, function: Callable[[Transaction], T], *, max_attempts: int = 5) -> T:
        def body(native_transaction: Any) -> T:
            transaction = _FirestoreTransaction(self, native_transaction)
            result = function(transaction)
            self._stage(native_transaction, transaction.batch.writes)
            return result

        # The client retries an aborted commit at once; under contention that livelocks, so
        # each attempt here is one client attempt, and attempts back off with jitter.
        for attempt in range(1, max_attempts + 1):
            native = self._client.transaction(max_attempts=1)
            try:
                with _translated_errors():
                    return firestore.transactional(body)(native)  # type: ignore[no-any-return]
            except TransactionContentionError:
                pass
            except ValueError as exc:
                # The client raises ValueError when its attempt was aborted by contention.
                if "attempts" not in str(exc):
                    raise
            if attempt < max_attempts:
                cap = min(2.0, 0.02 * 2**attempt)
                time.sleep(random.uniform(0, cap))  # noqa: S311 - jitter, not crypto
        raise TransactionContentionError()


class _FirestoreTransaction(Transaction):
    def __init__(self, store: FirestoreDocumentStore, native: Any) -> None:
        super().__init__()
        self._store = store
        self._native = native

    def get(self, collection: str, doc_id: str) -> Document | None:
        self._check_read_allowed()
        found = self.get_many(collection, [doc_id])
        return found.get(doc_id)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        self._check_read_allowed()
        refs = [self._store._ref(collection, d) for d in doc_ids if is_valid_doc_id(d)]
        return _get_many(self._store._client, refs, self._native)

    def query(self, query: Query) -> list[Document]:
        self._check_read_allowed()
        native = self._store._native_query(query.collection, query.filters)
        for order in query.order_by:
            direction = (
                firestore.Query.DESCENDING if order.descending else firestore.Query.ASCENDING
            )
            native = native.order_by(order.field, direction=direction)
        if query.limit is not None:
            native = native.limit(query.limit)
        with _translated_errors():
            return [_document(s) for s in native.stream(transaction=self._native)]


def _get_many(client: Any, refs: list[Any], transaction: Any) -> dict[str, Document]:
    found: dict[str, Document] = {}
    unique = list({ref.path: ref for ref in refs}.values())
    for start in range(0, len(unique), _GET_ALL_CHUNK):
        with _translated_errors():
            snapshots = client.get_all(
                unique[start : start + _GET_ALL_CHUNK], transaction=transaction
            )
            for snapshot in snapshots:
                if snapshot.exists:
                    found[snapshot.id] = _document(snapshot)
    return found


def _document(snapshot: Any) -> Document:
    return Document(snapshot.id, _from_native(snapshot.to_dict() or {}))


def _to_native(value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict | list | tuple) and not isinstance(value, Vector):
        # The client serialises recursively: refuse what Firestore would, before it does.
        if depth > MAX_DOCUMENT_DEPTH:
            raise InvalidRequestError(f"A document nests deeper than {MAX_DOCUMENT_DEPTH} levels")
        if isinstance(value, dict):
            return {key: _to_native(item, depth + 1) for key, item in value.items()}
        return [_to_native(item, depth + 1) for item in value]
    if isinstance(value, Vector):
        return FirestoreVector(list(value))
    if isinstance(value, Increment):
        return firestore.Increment(value.amount)
    if isinstance(value, Maximum):
        return FirestoreMaximum(value.value)
    if isinstance(value, DeleteField):
        return firestore.DELETE_FIELD
    if hasattr(value, "tzinfo") and hasattr(value, "isoformat"):
        return naive_to_utc(value)
    return value


def _from_native(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _from_native(item) for key, item in value.items()}
    if isinstance(value, FirestoreVector):
        return Vector(value)
    if isinstance(value, list):
        return [_from_native(item) for item in value]
    return value


def _field_value(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class _translated_errors:
    """Turn the client's errors into the platform's."""

    def __init__(self, collection: str = "", doc_id: str = "") -> None:
        self._name = f"{collection}/{doc_id}" if collection else "document"

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            return
        # Aborted (contention) is a subclass of Conflict: test it before AlreadyExists.
        if isinstance(exc, gexc.Aborted):
            raise TransactionContentionError() from exc
        if isinstance(exc, gexc.AlreadyExists | gexc.Conflict):
            raise DocumentAlreadyExistsError(f"{self._name} already exists") from exc
        if isinstance(exc, gexc.NotFound):
            raise DocumentNotFoundError(f"{self._name} does not exist") from exc
        if isinstance(exc, gexc.InvalidArgument):
            # A document beyond Firestore's limits (size, nesting): the caller's data.
            raise InvalidRequestError(f"{self._name} was refused: {exc.message}") from exc
        if isinstance(
            exc, gexc.ServiceUnavailable | gexc.DeadlineExceeded | gexc.InternalServerError
        ):
            raise ServiceUnavailableError(
                "The document store is unavailable", retry_after=5
            ) from exc
