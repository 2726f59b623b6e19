"""Run small matrix products on one BLAS thread: the speaker encoder's LSTM needs it.

The encoder's LSTM makes hundreds of small matrix products per clip (a batch of eight
partials times a 256 x 1024 matrix, 160 steps, three layers). OpenBLAS spreads each one
over its thread pool and waits for every thread at the end of every product; when the
cores are busy with other work (two cores shared by several processes here, one or two
vCPUs in Cloud Functions) those waits dominate: measured on this machine under load, one
7-second clip took 2-5.7 s with OpenBLAS's two threads and 0.24-0.31 s with one.

``one_blas_thread`` limits the process's BLAS to one thread while any caller is inside it
(``threadpoolctl``; the limit is process-wide, so it is counted: the first caller in sets
it, the last one out restores what was there).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_state: dict[str, Any] = {"controller": None, "limiter": None, "inside": 0}


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Keep BLAS on one thread until the last concurrent caller leaves."""
    with _lock:
        if _state["inside"] == 0:
            if _state["controller"] is None:
                # imported here: threadpoolctl loads C libraries (ctypes) when imported
                from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]  # noqa: PLC0415

                _state["controller"] = ThreadpoolController()
            _state["limiter"] = _state["controller"].limit(limits=1, user_api="blas")
        _state["inside"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["inside"] -= 1
            if _state["inside"] == 0 and _state["limiter"] is not None:
                _state["limiter"].restore_original_limits()
                _state["limiter"] = None
