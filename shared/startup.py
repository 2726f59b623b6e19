"""A function instance's start-up: the garbage collector held off while its code loads.

A cold Cloud Functions instance imports ``main.py`` and its function's module: a few
hundred thousand objects (modules, classes, validators) that live as long as the process.
Python's collector counts them as they are made and runs its passes over them again and
again as the heap grows. ``bench.cold_start`` prints the time those passes take (its ``gc
ms`` column): on 2026-12-07, 30-38 ms of a function's first answer without this, against
19 ms for the bare function; 20-26 ms with it, against 22 (one run each, 5 rounds).

``main.py`` calls ``hold_collector`` before it imports anything of the project and
``release_collector`` once the runtime has looked its entry point up (which imports the
function's module): every object then alive moves to the permanent generation
(``gc.freeze``: never scanned again, so later full passes are shorter too) and the
collector runs again. Only the first load of the process holds it: one that loads
``main.py`` again (the local gateway builds an app per function, tests build many) must not
freeze the garbage made since, which could then never be freed. A process that forks its
workers after loading (gunicorn) hands each the frozen heap, which also keeps the pages
shared.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_held = False


def hold_collector() -> None:
    """Turn the collector off, if this is the process's first hold and it is on."""
    global _held  # noqa: PLW0603 - one process-wide state, as the collector's own
    with _lock:
        if _held or gc.get_freeze_count() or not gc.isenabled():
            return
        _held = True
        gc.disable()


def release_collector() -> None:
    """Freeze what is alive now and turn the collector on again, after ``hold_collector``."""
    global _held  # noqa: PLW0603 - see above
    with _lock:
        if not _held:
            return
        _held = False
        gc.freeze()
        gc.enable()
