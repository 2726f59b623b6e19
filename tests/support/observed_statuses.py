"""Every status the API answered during the test session, checked against the OpenAPI document.

The HTTP layer logs one ``httpRequest`` record per request (method, path, status); a
logging handler collects them while the tests run, and at the end of the session each is
matched to its route: a status the route's OpenAPI operation does not list is a
disagreement between the document and the behaviour, reported as a session error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from werkzeug.exceptions import MethodNotAllowed, NotFound


@dataclass
class StatusRecorder(logging.Handler):
    """Collects (method, path, status) from the HTTP layer's request logs."""

    seen: set[tuple[str, str, int]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        request = getattr(record, "fields", {}).get("httpRequest")
        if not request:
            return
        with self.lock:
            self.seen.add((request["requestMethod"], request["requestUrl"], int(request["status"])))

    def __hash__(self) -> int:
        return id(self)


def undocumented(seen: set[tuple[str, str, int]]) -> Iterator[str]:
    """Yield a line for each observed status the route's OpenAPI operation does not list."""
    from functions.openapi import http_apis
    from shared.openapi import documented_statuses

    apis = http_apis()
    reported: set[str] = set()
    for method, path, status in sorted(seen):
        for api in apis:
            adapter = api._map.bind("localhost")
            try:
                endpoint, _ = adapter.match(path, method)
            except MethodNotAllowed:
                if status == 405:
                    break
                continue
            except NotFound:
                continue
            route = api._endpoints[str(endpoint)]
            line = f"{method} {route.rule} answered {status}, undocumented"
            if status not in documented_statuses(route) and line not in reported:
                reported.add(line)
                yield line
            break
