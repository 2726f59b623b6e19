"""Structured JSON logs that Cloud Logging understands.

Each record is one JSON line on stdout with ``severity``, ``message``, ``time`` and, inside
a request, ``requestId`` plus the ``logging.googleapis.com/trace`` field that links the
line to its Cloud Trace. Extra fields passed as ``extra={"fields": {...}}`` are merged in.
Nothing here logs request bodies or headers, so tokens and secrets stay out of the logs.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, NamedTuple


class LogContext(NamedTuple):
    """What ties a log line to its request."""

    request_id: str
    trace: str | None = None
    span: str | None = None
    project: str | None = None


_context: ContextVar[LogContext | None] = ContextVar("log_context", default=None)

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class CloudLoggingFormatter(logging.Formatter):
    """Formats records as Cloud Logging structured JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        context = _context.get()
        if context is not None:
            entry["requestId"] = context.request_id
            if context.trace:
                prefix = f"projects/{context.project}/traces/" if context.project else ""
                entry["logging.googleapis.com/trace"] = prefix + context.trace
            if context.span:
                entry["logging.googleapis.com/spanId"] = context.span
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stdout as structured JSON (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if isinstance(handler.formatter, CloudLoggingFormatter):
            return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root.addHandler(handler)


@contextmanager
def log_context(context: LogContext) -> Iterator[None]:
    """Attach ``context`` to every log line written inside the block."""
    token = _context.set(context)
    try:
        yield
    finally:
        _context.reset(token)
