"""The document store port and its adapters (SQLite embedded, Firestore in production)."""

from shared.store.base import (
    DELETE_FIELD,
    Document,
    DocumentStore,
    Filter,
    Increment,
    Maximum,
    Neighbour,
    Order,
    Page,
    Query,
    Transaction,
    Vector,
    WriteBatch,
)

__all__ = [
    "DELETE_FIELD",
    "Document",
    "DocumentStore",
    "Filter",
    "Increment",
    "Maximum",
    "Neighbour",
    "Order",
    "Page",
    "Query",
    "Transaction",
    "Vector",
    "WriteBatch",
]
