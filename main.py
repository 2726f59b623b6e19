"""Entry points for the Cloud Functions runtime, which loads ``main.py`` from the source root.

Each deployed function names one of these as its entry point (see ``functions.FUNCTIONS``).
The runtime executes this file once per app it builds, then looks its entry point up by
name (``getattr(main, "users")``): each name is resolved on that lookup (PEP 562), so an
instance imports its own function's module and what that needs, never every other
function's. The error handler registered here keeps even the framework's own answers (an
unroutable path) in the platform's shape. The garbage collector waits until the entry
point is loaded (below).

Pydantic looks for plugins when it builds its first validator, reading the metadata of
every installed distribution, once per process; none is used, so that search is turned
off (``PYDANTIC_DISABLE_PLUGINS``, unless the deployment sets it) before anything is
imported.
"""

import os
from typing import Any

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from shared.startup import hold_collector, release_collector

# The garbage collector waits while this file and the function's module load: a cold
# start makes hundreds of thousands of objects that live as long as the process, and the
# collector's passes over them as they piled up added 10-15 ms to a function's first answer
# (shared/startup.py; bench.cold_start's gc ms column). Before anything of the project is
# imported.
hold_collector()

import functions_framework
from werkzeug.exceptions import HTTPException

from functions import FUNCTIONS
from shared.http import http_exception_response
from shared.lazy import lazy_exports

functions_framework.errorhandler(HTTPException)(http_exception_response)

ENTRY_POINTS = {spec.module: [spec.entry_point] for spec in FUNCTIONS}
"""Each function's module and the entry point it defines (``main.users``: ``functions.users``)."""

_entry_point, __dir__ = lazy_exports(globals(), ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    """Return the entry point ``name`` (its module imported now), then free the collector."""
    try:
        return _entry_point(name)
    finally:
        release_collector()
