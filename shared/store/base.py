"""The document store port: what every repository may ask of Firestore or its stand-in.

A document is a JSON-like ``dict`` (str, int, float, bool, None, lists, nested dicts) that
may also hold timezone-aware ``datetime`` values and ``Vector`` embeddings; both adapters
give the same values back. Collections are flat and named by plain identifiers.

Semantics follow Firestore, since that is production: ``create`` fails when the document
exists, ``update`` fails when it is missing, ``set(merge=True)`` merges nested maps, a
filter on a field skips documents without it, ``!=`` also skips ``null``, ordering by a
field skips documents without it, results tie-break on the document id. Transactions read
first and then write; their writes become visible together or not at all.
"""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, TypeVar

from shared.errors import InvalidRequestError

Operator = Literal["==", "!=", "<", "<=", ">", ">=", "in", "array-contains"]
OPERATORS: frozenset[str] = frozenset(["==", "!=", "<", "<=", ">", ">=", "in", "array-contains"])
MAX_BATCH_WRITES = 500
# Firestore's limits, which the embedded store enforces too: a map or array value may sit
# at most 20 levels below the document, and a document holds at most 1 MiB.
MAX_DOCUMENT_DEPTH = 20
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_IN_VALUES = 30

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

T = TypeVar("T")


class Vector(tuple[float, ...]):
    """An embedding stored for nearest-neighbour search."""

    __slots__ = ()

    def __new__(cls, values: Iterable[float]) -> Vector:
        return super().__new__(cls, (float(v) for v in values))


@dataclass(frozen=True)
class Increment:
    """A write value that adds ``amount`` to the stored number (missing counts as 0)."""

    amount: int | float


@dataclass(frozen=True)
class Maximum:
    """A write value that keeps the larger of the stored number and ``value``.

    Out-of-order writers (clocks, retries) can then record a "latest" time without a read.
    """

    value: int | float


@dataclass(frozen=True)
class DeleteField:
    """A write value that removes the field (in ``update`` or ``set(merge=True)``)."""


DELETE_FIELD = DeleteField()


class Document(NamedTuple):
    """A stored document: its id and its data."""

    id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Filter:
    """One ``field op value`` condition; a query ANDs its filters."""

    field: str
    op: Operator
    value: Any

    def __post_init__(self) -> None:
        check_field(self.field)
        if self.op not in OPERATORS:
            raise InvalidRequestError(f"Unsupported filter operator: {self.op}")
        if self.op == "in":
            if not isinstance(self.value, list | tuple) or not self.value:
                raise InvalidRequestError("'in' needs a non-empty list of values")
            if len(self.value) > MAX_IN_VALUES:
                raise InvalidRequestError(f"'in' accepts at most {MAX_IN_VALUES} values")


@dataclass(frozen=True)
class Order:
    """Sort by ``field``, ascending unless ``descending``."""

    field: str
    descending: bool = False

    def __post_init__(self) -> None:
        if self.field != DOCUMENT_ID:
            check_field(self.field)


@dataclass(frozen=True)
class Query:
    """A query on one collection: AND of filters, sort orders, a limit and a cursor."""

    collection: str
    filters: tuple[Filter, ...] = ()
    order_by: tuple[Order, ...] = ()
    limit: int | None = None
    cursor: str | None = None

    def __post_init__(self) -> None:
        check_collection(self.collection)
        if self.limit is not None and self.limit < 1:
            raise InvalidRequestError("limit must be at least 1")

    def where(self, field: str, op: Operator, value: Any) -> Query:
        """Return this query with one more filter."""
        return _replace(self, filters=(*self.filters, Filter(field, op, value)))

    def order(self, field: str, *, descending: bool = False) -> Query:
        """Return this query with one more sort order."""
        return _replace(self, order_by=(*self.order_by, Order(field, descending)))

    def take(self, limit: int) -> Query:
        """Return this query limited to ``limit`` documents."""
        return _replace(self, limit=limit)

    def after(self, cursor: str | None) -> Query:
        """Return this query continuing after the page that gave ``cursor``."""
        return _replace(self, cursor=cursor)


def _replace(query: Query, **changes: Any) -> Query:
    return dataclasses.replace(query, **changes)


class Page(NamedTuple):
    """One page of query results; ``next_cursor`` is None on the last page."""

    documents: list[Document]
    next_cursor: str | None = None


class Neighbour(NamedTuple):
    """A nearest-neighbour result: the document and its cosine distance (0 = same direction)."""

    document: Document
    distance: float


@dataclass
class Write:
    """One buffered write of a batch or transaction."""

    kind: Literal["create", "set", "update", "delete"]
    collection: str
    doc_id: str
    data: dict[str, Any] = field(default_factory=dict)
    merge: bool = False


class WriteBatch:
    """Writes collected and then committed atomically (at most 500)."""

    def __init__(self, commit: Callable[[list[Write]], None]) -> None:
        self._commit = commit
        self.writes: list[Write] = []

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Queue a create; the commit fails if the document exists."""
        self._add(Write("create", collection, doc_id, dict(data)))

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        """Queue a set (replace, or merge nested maps when ``merge``)."""
        self._add(Write("set", collection, doc_id, dict(data), merge))

    def update(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Queue an update of the given (possibly dotted) fields; fails if missing."""
        self._add(Write("update", collection, doc_id, dict(data)))

    def delete(self, collection: str, doc_id: str) -> None:
        """Queue a delete (deleting a missing document is not an error)."""
        self._add(Write("delete", collection, doc_id))

    def commit(self) -> None:
        """Apply every queued write atomically; raise the first write's error otherwise."""
        if self.writes:
            self._commit(self.writes)
        self.writes = []

    def _add(self, write: Write) -> None:
        check_collection(write.collection)
        check_doc_id(write.doc_id)
        if len(self.writes) >= MAX_BATCH_WRITES:
            raise InvalidRequestError(f"A batch holds at most {MAX_BATCH_WRITES} writes")
        self.writes.append(write)

    def __enter__(self) -> WriteBatch:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()


class Transaction(abc.ABC):
    """Reads, then buffered writes, applied atomically when the function returns."""

    def __init__(self) -> None:
        self.batch = WriteBatch(self._refuse_direct_commit)

    @abc.abstractmethod
    def get(self, collection: str, doc_id: str) -> Document | None:
        """Return the document, read inside the transaction, or None."""

    @abc.abstractmethod
    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        """Return the existing documents among ``doc_ids``, keyed by id."""

    @abc.abstractmethod
    def query(self, query: Query) -> list[Document]:
        """Return the documents matching ``query`` (no cursor), read inside the transaction."""

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Queue a create; the transaction fails if the document exists."""
        self.batch.create(collection, doc_id, data)

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        """Queue a set."""
        self.batch.set(collection, doc_id, data, merge=merge)

    def update(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Queue an update; the transaction fails if the document is missing."""
        self.batch.update(collection, doc_id, data)

    def delete(self, collection: str, doc_id: str) -> None:
        """Queue a delete."""
        self.batch.delete(collection, doc_id)

    def _refuse_direct_commit(self, writes: list[Write]) -> None:
        raise InvalidRequestError("A transaction commits when its function returns")

    def _check_read_allowed(self) -> None:
        if self.batch.writes:
            raise InvalidRequestError("A transaction must do all its reads before its writes")


class DocumentStore(abc.ABC):
    """The port. Adapters: ``SqliteDocumentStore`` (embedded) and ``FirestoreDocumentStore``."""

    @abc.abstractmethod
    def get(self, collection: str, doc_id: str) -> Document | None:
        """Return the document or None."""

    @abc.abstractmethod
    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        """Return the existing documents among ``doc_ids``, keyed by id."""

    @abc.abstractmethod
    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Store a new document; raise DocumentAlreadyExistsError if the id is taken."""

    @abc.abstractmethod
    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        """Replace the document, or merge ``data`` into it when ``merge``."""

    @abc.abstractmethod
    def update(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Change the given fields (dotted paths reach into maps); raise DocumentNotFoundError."""

    @abc.abstractmethod
    def delete(self, collection: str, doc_id: str) -> None:
        """Delete the document if it exists."""

    @abc.abstractmethod
    def query(self, query: Query) -> Page:
        """Return one page of matching documents and the cursor for the next page."""

    @abc.abstractmethod
    def count(self, query: Query) -> int:
        """Return how many documents match the query's filters (limit and cursor ignored)."""

    @abc.abstractmethod
    def commit_writes(self, writes: list[Write]) -> None:
        """Apply writes atomically (used by ``batch``)."""

    @abc.abstractmethod
    def run_transaction(self, function: Callable[[Transaction], T], *, max_attempts: int = 5) -> T:
        """Run ``function`` in a transaction, retried on contention; return its result.

        Raises TransactionContentionError when every attempt met contention.
        """

    @abc.abstractmethod
    def find_nearest(
        self,
        collection: str,
        vector_field: str,
        query_vector: Sequence[float],
        *,
        limit: int,
        filters: Sequence[Filter] = (),
    ) -> list[Neighbour]:
        """Return up to ``limit`` documents nearest by cosine distance, after ``filters``."""

    def change_token(self) -> object | None:
        """Return a value that changes whenever a write to the store ends, or None.

        Equal tokens from two calls mean that no write ended in between, from this
        instance or any other; so reads made after the first call are still current.
        None means the store cannot tell cheaply (Firestore cannot; the embedded store
        cannot while a write is under way): the caller reads again.
        """
        return None

    def batch(self) -> WriteBatch:
        """Return a batch whose writes commit atomically (up to 500)."""
        return WriteBatch(self.commit_writes)

    def delete_matching(self, query: Query) -> int:
        """Delete every document matching ``query``'s filters, in batches; return how many."""
        collection = query.collection
        page_query = Query(collection, filters=query.filters, limit=MAX_BATCH_WRITES)
        removed = 0
        while documents := self.query(page_query).documents:
            with self.batch() as batch:
                for document in documents:
                    batch.delete(collection, document.id)
            removed += len(documents)
        return removed

    def stream(self, query: Query, *, page_size: int = 300) -> Iterator[Document]:
        """Yield every matching document, fetching page by page."""
        page_query = query.take(page_size) if query.limit is None else query
        remaining = query.limit
        while True:
            page = self.query(page_query)
            yield from page.documents
            if remaining is not None:
                remaining -= len(page.documents)
                if remaining <= 0:
                    return
            if page.next_cursor is None:
                return
            page_query = page_query.after(page.next_cursor)

    def close(self) -> None:  # noqa: B027 - adapters without resources need not override
        """Release connections."""


def check_nearest_request(vector_field: str, query_vector: Sequence[float], limit: int) -> None:
    """Raise InvalidRequestError for a bad field, a limit below 1 or an all-zero vector."""
    check_field(vector_field)
    if limit < 1:
        raise InvalidRequestError("limit must be at least 1")
    if not any(query_vector):
        raise InvalidRequestError("The query vector must not be all zeros")


def check_collection(name: str) -> None:
    """Raise InvalidRequestError unless ``name`` is a plain collection identifier."""
    if not _NAME.match(name):
        raise InvalidRequestError(f"Invalid collection name: {name!r}")


def check_field(path: str) -> None:
    """Raise InvalidRequestError unless ``path`` is a dotted path of plain identifiers."""
    if not _FIELD.match(path):
        raise InvalidRequestError(f"Invalid field path: {path!r}")


def is_valid_doc_id(doc_id: str) -> bool:
    """Return whether a document may have ``doc_id`` (reads of any other id find nothing)."""
    try:
        check_doc_id(doc_id)
    except InvalidRequestError:
        return False
    return True


def check_doc_id(doc_id: str) -> None:
    """Raise InvalidRequestError for empty ids, ids with '/' or NUL, '.', '..' and ``__x__``."""
    if (
        type(doc_id) is not str
        or not doc_id
        or len(doc_id) > 700
        or "/" in doc_id
        or "\x00" in doc_id
        or doc_id in (".", "..")
        or (doc_id.startswith("__") and doc_id.endswith("__"))
    ):
        raise InvalidRequestError("Invalid document id")


INEQUALITY_OPERATORS = frozenset(["!=", "<", "<=", ">", ">="])


def effective_order(query: Query) -> tuple[Order, ...]:
    """Return the full sort order both adapters use, as Firestore defines it.

    The explicit orders, then every field with an inequality filter not yet ordered (by
    name), then the document id in the direction of the last order.
    """
    orders = list(query.order_by)
    ordered = {order.field for order in orders}
    for name in sorted({f.field for f in query.filters if f.op in INEQUALITY_OPERATORS}):
        if name not in ordered:
            orders.append(Order(name))
    last_descending = orders[-1].descending if orders else False
    orders.append(Order(DOCUMENT_ID, last_descending))
    return tuple(orders)


DOCUMENT_ID = "__id__"
"""The pseudo-field naming the document id in an effective order."""


def naive_to_utc(value: datetime) -> datetime:
    """Return ``value`` with UTC attached when it has no timezone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
