"""The embedded document store: one SQLite file, one table per collection, JSON documents.

WAL mode lets readers run beside one writer; every write takes the write lock up front
(``BEGIN IMMEDIATE``) so a transaction's reads and writes are serializable across threads
and processes; waiters queue instead of failing (``shared.store.sqlite_files``: a connection per
thread, WAL set once, one writer queue per file and process). An expression index is
created the first time a query uses a field. Nearest-neighbour search is exact: the
matching vectors are kept in memory as one matrix (read again after any write, which the
change counter tells) and every query is one matrix product.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from shared.errors import (
    DocumentAlreadyExistsError,
    InvalidRequestError,
    TransactionContentionError,
)
from shared.lazy import lazy_module
from shared.store import _sqlite_sql as sql
from shared.store._cursor import decode_cursor, encode_cursor
from shared.store._writes import apply_write
from shared.store.base import (
    DOCUMENT_ID,
    Document,
    DocumentStore,
    Filter,
    Neighbour,
    Page,
    Query,
    Transaction,
    Vector,
    Write,
    check_collection,
    check_doc_id,
    check_nearest_request,
    effective_order,
    is_valid_doc_id,
)
from shared.store.sqlite_files import SqliteFile

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")

T = TypeVar("T")
_IN_CHUNK = 500
_VECTOR_INDEXES = 8  # (collection, field, filters) whose vectors stay loaded


def _table(collection: str) -> str:
    return f'"c_{collection}"'


# get_many reads all its documents as one packed row. The sqlite3 module releases the GIL
# around every step of a statement (one per row), and with many request threads each
# release can hand the interpreter to another thread; get_many is the cache's hot path.
# Stored JSON (``data``, ``tagged``) never holds a raw control character, so \x01 and
# \x02 can separate fields and records; ids are referred to by their position.
_FIELD_END = "\x01"
_RECORD_END = "\x02"


@lru_cache(maxsize=256)
def _get_many_sql(table: str, count: int) -> str:
    wanted = ",".join(f"({position},?)" for position in range(count))
    return (
        f"WITH wanted(position, id) AS (VALUES {wanted}) "
        "SELECT group_concat(position || char(1) || data || char(1) || ifnull(tagged, ''), "
        f"char(2)) FROM wanted JOIN {table} USING (id)"
    )


class _VectorIndex(NamedTuple):
    """The documents holding a vector of one field and size, and their unit vectors."""

    token: int | None
    ids: list[str]
    documents: list[dict[str, Any]]
    unit: npt.NDArray[np.float64]


class SqliteDocumentStore(DocumentStore):
    """Document store on a SQLite file; safe for many threads and several processes."""

    def __init__(self, path: Path | str) -> None:
        self._file = SqliteFile(path)
        self._writer = self._file.writer
        self._pending = threading.local()  # tables created by this thread's open transaction
        self._lock = threading.Lock()
        self._tables: dict[str, str] = {}
        self._get_statements: dict[str, str] = {}
        self._indexes: set[tuple[str, str]] = set()
        self._vector_indexes: OrderedDict[tuple[str, str, str, int], _VectorIndex] = OrderedDict()

    # -- connections -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        return self._file.connection()

    def close(self) -> None:
        self._file.close()

    def change_token(self) -> int | None:
        return self._file.change_token()

    def _ensure_table(self, collection: str) -> str:
        table = self._tables.get(collection)
        if table is None:
            check_collection(collection)
            table = _table(collection)
            conn = self._conn()
            with self._writer:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} "
                    "(id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, tagged TEXT)"
                )
            # DDL inside a transaction is undone by its rollback: remember the table only
            # once it is surely committed (see _write_lock).
            if conn.in_transaction:
                self._pending_tables().add(collection)
            else:
                with self._lock:
                    self._tables[collection] = table
        return table

    def _pending_tables(self) -> set[str]:
        pending: set[str] | None = getattr(self._pending, "tables", None)
        if pending is None:
            pending = self._pending.tables = set()
        return pending

    def _ensure_index(self, collection: str, field: str) -> None:
        if field == DOCUMENT_ID or (collection, field) in self._indexes:
            return
        name = f'"ix_{collection}_{field.replace(".", "__")}"'
        conn = self._conn()
        with self._writer:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} "
                f"ON {_table(collection)} ({sql.value_expr(field)})"
            )
        if not conn.in_transaction:
            with self._lock:
                self._indexes.add((collection, field))

    @contextmanager
    def _write_lock(self) -> Iterator[sqlite3.Connection]:
        if self._conn().in_transaction:
            raise InvalidRequestError("Use the transaction object for writes inside a transaction")
        pending = self._pending_tables()
        try:
            with self._file.transaction() as conn:
                yield conn
        except BaseException:
            pending.clear()
            raise
        with self._lock:
            for collection in pending:
                self._tables[collection] = _table(collection)
        pending.clear()

    # -- reads -------------------------------------------------------------------------

    def get(self, collection: str, doc_id: str) -> Document | None:
        if not is_valid_doc_id(doc_id):
            return None  # no document can have it (an id from a client, say)
        statement = self._get_statements.get(collection)
        if statement is None:
            statement = f"SELECT data, tagged FROM {self._ensure_table(collection)} WHERE id = ?"
            if collection in self._tables:
                self._get_statements[collection] = statement
        row = self._conn().execute(statement, (doc_id,)).fetchone()
        return Document(doc_id, sql.loads(row[0], row[1])) if row else None

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        table = self._ensure_table(collection)
        found: dict[str, Document] = {}
        unique = [doc_id for doc_id in dict.fromkeys(doc_ids) if is_valid_doc_id(doc_id)]
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            (packed,) = self._conn().execute(_get_many_sql(table, len(chunk)), chunk).fetchone()
            for record in packed.split(_RECORD_END) if packed else ():
                position, text, tagged = record.split(_FIELD_END)
                doc_id = chunk[int(position)]
                found[doc_id] = Document(doc_id, sql.loads(text, tagged or None))
        return found

    def query(self, query: Query) -> Page:
        orders = effective_order(query)
        statement, params = self._select(query, orders)
        if query.limit is not None:
            statement += " LIMIT ?"
            params.append(query.limit + 1)
        rows = self._conn().execute(statement, params).fetchall()
        documents = [Document(doc_id, sql.loads(text, tagged)) for doc_id, text, tagged in rows]
        if query.limit is None or len(documents) <= query.limit:
            return Page(documents)
        documents = documents[: query.limit]
        last = documents[-1]
        values = [
            last.id if order.field == DOCUMENT_ID else _field_value(last.data, order.field)
            for order in orders
        ]
        return Page(documents, encode_cursor(orders, values))

    def _select(self, query: Query, orders: tuple[Any, ...]) -> tuple[str, list[Any]]:
        table = self._ensure_table(query.collection)
        where, params = self._where(query.collection, query.filters)
        order_clause, exists = sql.order_sql(orders)
        for order in orders:
            self._ensure_index(query.collection, order.field)
        where.extend(exists)
        if query.cursor is not None:
            values = decode_cursor(query.cursor, orders)
            after, after_params = sql.after_sql(orders, values)
            where.append(after)
            params.extend(after_params)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        return f"SELECT id, data, tagged FROM {table}{clause} {order_clause}", params

    def _where(self, collection: str, filters: Sequence[Filter]) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for condition in filters:
            self._ensure_index(collection, condition.field)
            text, values = sql.filter_sql(condition)
            where.append(text)
            params.extend(values)
        return where, params

    def count(self, query: Query) -> int:
        table = self._ensure_table(query.collection)
        where, params = self._where(query.collection, query.filters)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        row = self._conn().execute(f"SELECT COUNT(*) FROM {table}{clause}", params).fetchone()
        return int(row[0])

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
        target = np.asarray(query_vector, dtype=np.float64)
        index = self._vector_index(collection, vector_field, tuple(filters), len(target))
        if not index.ids:
            return []
        distances = 1.0 - index.unit @ (target / np.linalg.norm(target))
        if limit < len(distances):
            # Every row as near as the limit-th one, so ties break on the id as Firestore's do.
            kth = np.partition(distances, limit - 1)[limit - 1]
            candidates = np.flatnonzero(distances <= kth)
        else:
            candidates = np.arange(len(distances))
        ordered = sorted(candidates, key=lambda i: (distances[i], index.ids[i]))[:limit]
        return [
            Neighbour(Document(index.ids[i], _copied(index.documents[i])), float(distances[i]))
            for i in ordered
        ]

    def _vector_index(
        self, collection: str, vector_field: str, filters: tuple[Filter, ...], dimension: int
    ) -> _VectorIndex:
        """Return the matching documents' unit vectors, read again only after a write.

        Kept per process for the last few (collection, field, filters): an exact search is
        then one matrix product, and the change token tells when any write (from any
        process) may have changed the rows.
        """
        key = (collection, vector_field, repr(filters), dimension)
        table = self._ensure_table(collection)
        where, params = self._where(collection, filters)  # may create indexes: a write
        token = self.change_token()
        with self._lock:
            cached = self._vector_indexes.get(key)
        if cached is not None and token is not None and cached.token == token:
            return cached
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        rows = self._conn().execute(f"SELECT id, data, tagged FROM {table}{clause}", params)
        ids: list[str] = []
        documents: list[dict[str, Any]] = []
        vectors: list[Sequence[float]] = []
        for doc_id, text, tagged in rows.fetchall():
            data = sql.loads(text, tagged)
            stored = _field_value(data, vector_field)
            if isinstance(stored, Vector) and len(stored) == dimension and any(stored):
                ids.append(doc_id)
                documents.append(data)
                vectors.append(stored)
        matrix = np.array(vectors, dtype=np.float64).reshape(len(vectors), dimension)
        index = _VectorIndex(
            token=token,
            ids=ids,
            documents=documents,
            unit=matrix / np.linalg.norm(matrix, axis=1, keepdims=True),
        )
        if token is not None:
            with self._lock:
                self._vector_indexes[key] = index
                self._vector_indexes.move_to_end(key)
                while len(self._vector_indexes) > _VECTOR_INDEXES:
                    self._vector_indexes.popitem(last=False)
        return index

    # -- writes ------------------------------------------------------------------------

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        check_doc_id(doc_id)
        table = self._ensure_table(collection)
        text, tagged = sql.dumps(dict(data))
        try:
            with self._writer:
                self._conn().execute(
                    f"INSERT INTO {table} (id, data, tagged) VALUES (?, ?, ?)",
                    (doc_id, text, tagged),
                )
        except sqlite3.IntegrityError as exc:
            raise DocumentAlreadyExistsError(f"{collection}/{doc_id} already exists") from exc

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        if merge:
            self.commit_writes([Write("set", collection, doc_id, dict(data), merge=True)])
            return
        check_doc_id(doc_id)
        table = self._ensure_table(collection)
        with self._writer:
            self._upsert(self._conn(), table, doc_id, dict(data))

    def update(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self.commit_writes([Write("update", collection, doc_id, dict(data))])

    def delete(self, collection: str, doc_id: str) -> None:
        check_doc_id(doc_id)
        table = self._ensure_table(collection)
        with self._writer:
            self._conn().execute(f"DELETE FROM {table} WHERE id = ?", (doc_id,))

    def commit_writes(self, writes: list[Write]) -> None:
        for write in writes:
            self._ensure_table(write.collection)
        with self._write_lock() as conn:
            self._apply(conn, writes)

    def _apply(self, conn: sqlite3.Connection, writes: list[Write]) -> None:
        # Several writes may touch one document: later ones see earlier ones' results.
        pending: dict[tuple[str, str], dict[str, Any] | None] = {}
        for write in writes:
            key = (write.collection, write.doc_id)
            if key in pending:
                current = pending[key]
            else:
                row = conn.execute(
                    f"SELECT data, tagged FROM {_table(write.collection)} WHERE id = ?",
                    (write.doc_id,),
                ).fetchone()
                current = sql.loads(row[0], row[1]) if row else None
            pending[key] = apply_write(current, write)
        for (collection, doc_id), document in pending.items():
            table = _table(collection)
            if document is None:
                conn.execute(f"DELETE FROM {table} WHERE id = ?", (doc_id,))
            else:
                self._upsert(conn, table, doc_id, document)

    @staticmethod
    def _upsert(
        conn: sqlite3.Connection, table: str, doc_id: str, document: dict[str, Any]
    ) -> None:
        text, tagged = sql.dumps(document)
        conn.execute(
            f"INSERT INTO {table} (id, data, tagged) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET data = excluded.data, tagged = excluded.tagged",
            (doc_id, text, tagged),
        )

    def run_transaction(self, function: Callable[[Transaction], T], *, max_attempts: int = 5) -> T:
        for attempt in range(1, max_attempts + 1):
            transaction = _SqliteTransaction(self)
            try:
                with self._write_lock() as conn:
                    result = function(transaction)
                    for write in transaction.batch.writes:
                        self._ensure_table(write.collection)
                    self._apply(conn, transaction.batch.writes)
                return result
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == max_attempts:
                    raise TransactionContentionError() from exc
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not crypto
        raise TransactionContentionError()


class _SqliteTransaction(Transaction):
    def __init__(self, store: SqliteDocumentStore) -> None:
        super().__init__()
        self._store = store

    def get(self, collection: str, doc_id: str) -> Document | None:
        self._check_read_allowed()
        return self._store.get(collection, doc_id)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        self._check_read_allowed()
        return self._store.get_many(collection, doc_ids)

    def query(self, query: Query) -> list[Document]:
        self._check_read_allowed()
        return list(self._store.stream(query))


def _copied(value: Any) -> Any:
    """Return a copy of a document's data the caller may change (immutable values shared)."""
    if type(value) is dict:
        return {key: _copied(item) for key, item in value.items()}
    if type(value) is list:
        return [_copied(item) for item in value]
    return value  # str, numbers, bool, None, datetime, Vector: immutable


def _field_value(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
