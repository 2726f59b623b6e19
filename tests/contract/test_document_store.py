"""One contract for the document store, run unchanged over SQLite and the Firestore emulator."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import DocumentAlreadyExistsError, DocumentNotFoundError, InvalidRequestError
from shared.store import DELETE_FIELD, Filter, Increment, Maximum, Query, Vector
from shared.store.base import DocumentStore, Transaction
from shared.store.sqlite import SqliteDocumentStore

C = "things"


def ids(documents) -> list[str]:
    return [d.id for d in documents]


def seed(store: DocumentStore, rows: dict[str, dict]) -> None:
    with store.batch() as batch:
        for doc_id, data in rows.items():
            batch.set(C, doc_id, data)


# -- single documents ---------------------------------------------------------------------


def test_get_missing_returns_none(store):
    assert store.get(C, "nope") is None


def test_create_then_get_round_trips_every_value_type(store):
    when = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    data = {
        "name": "Zoë 你好",
        "count": 3,
        "ratio": 0.25,
        "flag": True,
        "nothing": None,
        "when": when,
        "tags": ["a", "b"],
        "nested": {"deep": {"x": 1}, "list": [1, "two", {"three": 3}]},
        "embedding": Vector([0.1, 0.2, 0.3]),
        "private_use": "\ue000T-not-a-date",
    }
    store.create(C, "d1", data)
    got = store.get(C, "d1")
    assert got is not None
    assert got.id == "d1"
    assert got.data == data
    assert isinstance(got.data["when"], datetime)
    assert got.data["when"].tzinfo is not None
    assert isinstance(got.data["embedding"], Vector)


def test_naive_datetimes_are_taken_as_utc(store):
    store.create(C, "d1", {"when": datetime(2026, 1, 1, 12, 0)})
    assert store.get(C, "d1").data["when"] == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_create_fails_when_the_document_exists(store):
    store.create(C, "d1", {"v": 1})
    with pytest.raises(DocumentAlreadyExistsError):
        store.create(C, "d1", {"v": 2})
    assert store.get(C, "d1").data == {"v": 1}


def test_set_replaces_and_merge_merges_nested_maps(store):
    store.set(C, "d1", {"a": 1, "m": {"x": 1, "y": 2}})
    store.set(C, "d1", {"m": {"y": 20, "z": 30}}, merge=True)
    assert store.get(C, "d1").data == {"a": 1, "m": {"x": 1, "y": 20, "z": 30}}
    store.set(C, "d1", {"b": 2})
    assert store.get(C, "d1").data == {"b": 2}


def test_update_changes_fields_and_dotted_paths(store):
    store.create(C, "d1", {"a": 1, "m": {"x": 1, "y": 2}, "gone": True})
    store.update(C, "d1", {"a": 2, "m.y": 3, "gone": DELETE_FIELD, "n": Increment(5)})
    assert store.get(C, "d1").data == {"a": 2, "m": {"x": 1, "y": 3}, "n": 5}


def test_update_fails_when_the_document_is_missing(store):
    with pytest.raises(DocumentNotFoundError):
        store.update(C, "missing", {"a": 1})
    assert store.get(C, "missing") is None


def test_delete_removes_and_tolerates_missing(store):
    store.create(C, "d1", {"a": 1})
    store.delete(C, "d1")
    store.delete(C, "d1")
    assert store.get(C, "d1") is None


def test_get_many_returns_only_existing(store):
    seed(store, {"a": {"n": 1}, "b": {"n": 2}})
    found = store.get_many(C, ["a", "b", "zz", "a"])
    assert sorted(found) == ["a", "b"]
    assert found["b"].data == {"n": 2}


def test_get_many_keeps_control_characters_in_ids_and_values(store):
    # The SQLite adapter packs documents with \x01/\x02 separators: neither may leak.
    docs = {"a\x01b": {"s": "x\x01y\x02z", "t": "\ue000raw"}, "c\x02": {"n": [1, "\x02"]}}
    seed(store, docs)
    wanted = [*docs, "missing", "a"]
    found = store.get_many(C, wanted)
    assert {doc_id: doc.data for doc_id, doc in found.items()} == docs
    assert found["a\x01b"].id == "a\x01b"


def test_get_many_reads_more_documents_than_one_statement_takes(store):
    for first in (0, 260):  # a batch takes at most 500 writes
        with store.batch() as batch:
            for index in range(first, first + 260):
                batch.set(C, f"d{index}", {"n": index})
    found = store.get_many(C, [f"d{index}" for index in range(0, 600, 3)])
    assert {doc.data["n"] for doc in found.values()} == set(range(0, 520, 3))


@pytest.mark.parametrize("bad", ["a-b", "1abc", "a/b", "x; DROP TABLE t", ""])
def test_bad_collection_names_are_refused(store, bad):
    with pytest.raises(InvalidRequestError):
        store.get(bad, "d1")


def test_bad_field_paths_are_refused():
    with pytest.raises(InvalidRequestError):
        Filter("a') OR 1=1 --", "==", 1)


# -- queries ------------------------------------------------------------------------------


@pytest.fixture
def people(store):
    seed(
        store,
        {
            "p1": {"name": "ann", "age": 30, "team": "red", "tags": ["a", "x"], "active": True},
            "p2": {"name": "bob", "age": 25, "team": "blue", "tags": ["b"], "active": False},
            "p3": {"name": "cat", "age": 35, "team": "red", "tags": ["a"], "active": True},
            "p4": {"name": "dan", "age": "unknown", "team": "blue", "tags": [], "active": True},
            "p5": {"name": "eve", "age": None, "team": "green"},
            "p6": {"name": "fay", "team": "red"},
        },
    )
    return store


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("team", "==", "red", ["p1", "p3", "p6"]),
        ("age", "==", 30, ["p1"]),
        ("age", ">", 25, ["p1", "p3"]),
        ("age", ">=", 25, ["p1", "p2", "p3"]),
        ("age", "<", 30, ["p2"]),
        ("age", "<=", 30, ["p1", "p2"]),
        ("age", "!=", 30, ["p2", "p3", "p4"]),
        ("age", "==", None, ["p5"]),
        ("age", "!=", None, ["p1", "p2", "p3", "p4"]),
        ("name", ">", "cat", ["p4", "p5", "p6"]),
        ("team", "in", ["green", "blue"], ["p2", "p4", "p5"]),
        ("tags", "array-contains", "a", ["p1", "p3"]),
        ("active", "==", True, ["p1", "p3", "p4"]),
        ("active", "==", False, ["p2"]),
        ("age", "==", "unknown", ["p4"]),
    ],
)
def test_each_operator_matches_like_firestore(people, field, op, value, expected):
    page = people.query(Query(C).where(field, op, value))
    assert sorted(ids(page.documents)) == expected


def test_filters_combine_with_and(people):
    page = people.query(Query(C).where("team", "==", "red").where("age", ">", 30))
    assert ids(page.documents) == ["p3"]


def test_order_by_skips_documents_without_the_field(people):
    ascending = people.query(Query(C).where("team", "==", "red").order("age"))
    assert ids(ascending.documents) == ["p1", "p3"]
    descending = people.query(Query(C).where("team", "==", "red").order("age", descending=True))
    assert ids(descending.documents) == ["p3", "p1"]


def test_order_and_limit(people):
    page = people.query(Query(C).order("name", descending=True).take(2))
    assert ids(page.documents) == ["p6", "p5"]
    assert page.next_cursor is not None


def test_datetime_range_filters(store):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    seed(store, {f"d{i}": {"at": base + timedelta(days=i), "label": f"x{i}"} for i in range(5)})
    store.set(C, "text", {"at": "2099-01-01"})
    page = store.query(Query(C).where("at", ">=", base + timedelta(days=3)))
    assert ids(page.documents) == ["d3", "d4"]
    page = store.query(Query(C).where("at", "<", base + timedelta(days=2)).order("at"))
    assert ids(page.documents) == ["d0", "d1"]


def test_datetimes_of_every_year_round_trip_and_sort(store):
    # Years before 1000 too: a platform's own format must not drop their leading zeros.
    times = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ]
    seed(store, {f"y{i}": {"at": at} for i, at in enumerate(reversed(times))})
    assert [store.get(C, f"y{i}").data["at"] for i in range(4)] == list(reversed(times))
    page = store.query(Query(C).order("at"))
    assert [d.data["at"] for d in page.documents] == times
    page = store.query(Query(C).where("at", "<", datetime(1000, 1, 1, tzinfo=UTC)))
    assert sorted(d.data["at"] for d in page.documents) == times[:2]


def test_count(people):
    assert people.count(Query(C)) == 6
    assert people.count(Query(C).where("team", "==", "red")) == 3
    assert people.count(Query(C).where("age", ">", 100)) == 0


# -- pagination ---------------------------------------------------------------------------


def test_cursor_pages_cover_every_document_once(store):
    seed(store, {f"d{i:02d}": {"rank": i % 4, "n": i} for i in range(25)})
    query = Query(C).order("rank", descending=True).take(10)
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        page = store.query(query.after(cursor))
        pages += 1
        seen.extend(ids(page.documents))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(f"d{i:02d}" for i in range(25))
    ranks = [store.get(C, d).data["rank"] for d in seen]
    assert ranks == sorted(ranks, reverse=True)


def test_last_page_has_no_cursor(store):
    seed(store, {f"d{i}": {"n": i} for i in range(4)})
    page = store.query(Query(C).order("n").take(4))
    assert len(page.documents) == 4
    assert page.next_cursor is None


def test_cursor_survives_writes_before_it(store):
    seed(store, {f"d{i}": {"n": i} for i in range(6)})
    first = store.query(Query(C).order("n").take(3))
    store.set(C, "early", {"n": -1})
    second = store.query(Query(C).order("n").take(3).after(first.next_cursor))
    assert ids(second.documents) == ["d3", "d4", "d5"]


def test_cursor_with_inequality_filter_and_no_explicit_order(store):
    seed(store, {f"d{i}": {"n": i % 3} for i in range(9)})
    query = Query(C).where("n", ">", 0).take(4)
    first = store.query(query)
    second = store.query(query.after(first.next_cursor))
    all_ids = ids(first.documents) + ids(second.documents)
    assert sorted(all_ids) == sorted(f"d{i}" for i in range(9) if i % 3)
    assert second.next_cursor is None


def test_foreign_or_garbage_cursors_are_refused(store):
    seed(store, {f"d{i}": {"n": i, "m": i} for i in range(4)})
    page = store.query(Query(C).order("n").take(2))
    with pytest.raises(InvalidRequestError):
        store.query(Query(C).order("m").take(2).after(page.next_cursor))
    with pytest.raises(InvalidRequestError):
        store.query(Query(C).order("n").take(2).after("not-a-cursor!"))


def test_stream_reads_every_page(store):
    seed(store, {f"d{i:03d}": {"n": i} for i in range(23)})
    assert len(list(store.stream(Query(C), page_size=5))) == 23


# -- batches ------------------------------------------------------------------------------


def test_batch_is_atomic(store):
    store.create(C, "exists", {"v": 0})
    batch = store.batch()
    batch.set(C, "new1", {"v": 1})
    batch.create(C, "exists", {"v": 2})
    batch.set(C, "new2", {"v": 3})
    with pytest.raises(DocumentAlreadyExistsError):
        batch.commit()
    assert store.get(C, "new1") is None
    assert store.get(C, "new2") is None
    assert store.get(C, "exists").data == {"v": 0}


def test_batch_holds_at_most_500_writes(store):
    batch = store.batch()
    for i in range(500):
        batch.set(C, f"d{i}", {"i": i})
    with pytest.raises(InvalidRequestError):
        batch.set(C, "one-too-many", {})
    batch.commit()
    assert store.count(Query(C)) == 500


# -- transactions -------------------------------------------------------------------------


def test_transaction_reads_then_writes_atomically(store):
    store.create(C, "acct", {"balance": 10})

    def move(tx: Transaction) -> int:
        balance = tx.get(C, "acct").data["balance"]
        tx.update(C, "acct", {"balance": balance - 3})
        tx.create(C, "receipt", {"amount": 3})
        return int(balance - 3)

    assert store.run_transaction(move) == 7
    assert store.get(C, "acct").data["balance"] == 7
    assert store.get(C, "receipt").data == {"amount": 3}


def test_transaction_error_discards_every_write(store):
    store.create(C, "acct", {"balance": 10})

    def fail(tx: Transaction) -> None:
        tx.get(C, "acct")
        tx.update(C, "acct", {"balance": 0})
        tx.create(C, "other", {"x": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.run_transaction(fail)
    assert store.get(C, "acct").data["balance"] == 10
    assert store.get(C, "other") is None


def test_transaction_refuses_reads_after_writes(store):
    def bad(tx: Transaction) -> None:
        tx.set(C, "a", {"x": 1})
        tx.get(C, "a")

    with pytest.raises(InvalidRequestError):
        store.run_transaction(bad)
    assert store.get(C, "a") is None


def test_transaction_query_sees_committed_data(store):
    seed(store, {"a": {"owner": "u1", "active": True}, "b": {"owner": "u1", "active": False}})

    def activate_b(tx: Transaction) -> list[str]:
        active = tx.query(Query(C).where("owner", "==", "u1").where("active", "==", True))
        for document in active:
            tx.update(C, document.id, {"active": False})
        tx.update(C, "b", {"active": True})
        return ids(active)

    assert store.run_transaction(activate_b) == ["a"]
    active = store.query(Query(C).where("active", "==", True))
    assert ids(active.documents) == ["b"]


def _parallel_increments(store: DocumentStore, threads: int, per_thread: int) -> None:
    store.create(C, "counter", {"n": 0})
    errors: list[BaseException] = []

    def bump(tx: Transaction) -> None:
        current = tx.get(C, "counter").data["n"]
        tx.update(C, "counter", {"n": current + 1})

    def worker() -> None:
        try:
            for _ in range(per_thread):
                store.run_transaction(bump, max_attempts=50)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=240)
    assert not errors, errors


def test_transactions_keep_a_counter_exact_under_parallel_increments(store):
    # The emulator runs real transactions but slowly under contention: keep it small there.
    threads, per_thread = (8, 25) if store.__class__.__name__.startswith("Sqlite") else (4, 5)
    _parallel_increments(store, threads, per_thread)
    assert store.get(C, "counter").data["n"] == threads * per_thread


def test_increment_transform_is_exact_under_parallel_writes(store):
    store.create(C, "hits", {"n": 0})

    def worker() -> None:
        for _ in range(10):
            store.update(C, "hits", {"n": Increment(1)})

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert store.get(C, "hits").data["n"] == 40


# -- nearest neighbours ------------------------------------------------------------------


def test_find_nearest_by_cosine_distance_with_prefilter(store):
    seed(
        store,
        {
            "east": {"owner": "u1", "v": Vector([1.0, 0.0])},
            "north": {"owner": "u1", "v": Vector([0.0, 1.0])},
            "northeast": {"owner": "u1", "v": Vector([1.0, 1.0])},
            "other": {"owner": "u2", "v": Vector([1.0, 0.01])},
            "novector": {"owner": "u1"},
        },
    )
    found = store.find_nearest(C, "v", [1.0, 0.1], limit=2, filters=[Filter("owner", "==", "u1")])
    assert [n.document.id for n in found] == ["east", "northeast"]
    assert found[0].distance == pytest.approx(1 - 1 / (1.01**0.5), abs=1e-6)
    assert "v" in found[0].document.data
    assert found[0].document.data["owner"] == "u1"


def test_find_nearest_sees_every_write_between_two_searches(store):
    # The embedded store keeps the vectors in memory between searches: writes must show.
    seed(store, {"a": {"v": Vector([1.0, 0.0])}, "b": {"v": Vector([0.0, 1.0])}})
    assert [n.document.id for n in store.find_nearest(C, "v", [1.0, 0.2], limit=1)] == ["a"]
    store.update(C, "b", {"v": Vector([1.0, 0.1])})
    assert [n.document.id for n in store.find_nearest(C, "v", [1.0, 0.2], limit=1)] == ["b"]
    store.delete(C, "b")
    store.set(C, "c", {"v": Vector([1.0, 0.2]), "tag": "new"})
    found = store.find_nearest(C, "v", [1.0, 0.2], limit=3)
    assert [n.document.id for n in found] == ["c", "a"]
    assert found[0].distance == pytest.approx(0.0, abs=1e-9)
    found[0].document.data["tag"] = "changed by the caller"
    assert store.find_nearest(C, "v", [1.0, 0.2], limit=1)[0].document.data["tag"] == "new"


def test_delete_field_is_refused_in_a_plain_set(store):
    with pytest.raises((InvalidRequestError, ValueError)):
        store.set(C, "d1", {"a": DELETE_FIELD})
    assert store.get(C, "d1") is None


def test_increment_on_a_new_document_starts_from_zero(store):
    store.set(C, "d1", {"n": Increment(3)})
    store.set(C, "d2", {"m": {"n": Increment(2)}}, merge=True)
    assert store.get(C, "d1").data == {"n": 3}
    assert store.get(C, "d2").data == {"m": {"n": 2}}


@pytest.mark.parametrize(
    ("field", "vector", "limit"),
    [("v", [0.0, 0.0], 1), ("v", [1.0, 0.0], 0), ("bad field", [1.0, 0.0], 1)],
)
def test_find_nearest_refuses_bad_requests(store, field, vector, limit):
    with pytest.raises(InvalidRequestError):
        store.find_nearest(C, field, vector, limit=limit)


def test_maximum_transform_keeps_the_largest_whatever_the_order(store):
    store.set(C, "d1", {"seen": Maximum(5)})
    store.set(C, "d1", {"seen": Maximum(3)}, merge=True)
    store.update(C, "d1", {"seen": Maximum(4)})
    assert store.get(C, "d1").data == {"seen": 5}
    store.update(C, "d1", {"seen": Maximum(9.5)})
    assert store.get(C, "d1").data == {"seen": 9.5}


def test_delete_matching_removes_every_match_past_one_batch(store):
    seed(store, {f"a{i:03d}": {"owner": "ann"} for i in range(400)})
    seed(store, {f"a{i:03d}": {"owner": "ann"} for i in range(400, 520)})
    store.set(C, "b1", {"owner": "bob"})
    assert store.delete_matching(Query(C).where("owner", "==", "ann")) == 520
    assert store.count(Query(C)) == 1
    assert store.get(C, "b1") is not None


def test_a_change_token_is_none_or_changes_when_a_write_ends(store):
    # Equal tokens promise that nothing was written in between; None promises nothing.
    store.set("c", "a", {"n": 0})
    before = store.change_token()
    store.get("c", "a")
    assert store.change_token() == before
    store.set("c", "a", {"n": 1})
    after = store.change_token()
    assert before is None or after != before
    if isinstance(store, SqliteDocumentStore):
        assert before is not None  # the embedded store can always tell when idle


# -- Firestore's limits, kept by every adapter -------------------------------------------------


def _nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"k": value}
    return value


def test_non_finite_numbers_round_trip(store):
    store.create(C, "odd", {"nan": float("nan"), "up": float("inf"), "down": float("-inf")})
    data = store.get(C, "odd").data
    assert data["nan"] != data["nan"]
    assert data["up"] == float("inf")
    assert data["down"] == float("-inf")


def test_maps_nest_twenty_levels_deep_and_no_deeper(store):
    store.set(C, "deep", _nested(20))
    assert store.get(C, "deep").data == _nested(20)
    with pytest.raises(InvalidRequestError):
        store.set(C, "deeper", _nested(21))
    with pytest.raises(InvalidRequestError):
        store.create(C, "much-deeper", _nested(300))
    assert store.get(C, "deeper") is None
    assert store.get(C, "much-deeper") is None


def test_a_document_over_one_mebibyte_is_refused_and_not_stored(store):
    with pytest.raises(InvalidRequestError):
        store.set(C, "big", {"text": "x" * (1024 * 1024 + 16)})
    assert store.get(C, "big") is None
    store.set(C, "fits", {"text": "x" * (1000 * 1000)})
    assert len(store.get(C, "fits").data["text"]) == 1000 * 1000


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], 2**70, {"$dt": 5}, {"$dt": "noon"}])
def test_a_crafted_cursor_is_a_clear_error_never_a_crash(store, value):
    seed(store, {"a": {"n": 1}, "b": {"n": 2}})
    payload = {"f": [["n", False], ["__id__", False]], "v": [value, "a"]}
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    query = Query(C).order("n").take(1)
    assert store.query(query).next_cursor is not None
    with pytest.raises(InvalidRequestError):
        store.query(query.after(cursor))


@pytest.mark.parametrize(
    "doc_id", ["a/b", "", "x" * 701, "__reserved__", "__x__", "..", ".", "nul\x00"]
)
def test_no_document_has_an_impossible_id_and_none_can_be_written(store, doc_id):
    store.set(C, "fine", {"n": 1})
    assert store.get(C, doc_id) is None
    assert set(store.get_many(C, [doc_id, "fine"])) == {"fine"}
    with pytest.raises(InvalidRequestError):
        store.set(C, doc_id, {"n": 2})
