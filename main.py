"""Entry points for the Cloud Functions runtime, which loads ``main.py`` from the source root.

Each deployed function names one of these as its entry point (see ``functions.FUNCTIONS``).
The runtime executes this file once per app it builds, then looks its entry point up by
name (``getattr(main, "users")``): each name is resolved on that lookup (PEP 562), so an
instance imports its own function's module and what that needs, never every other
function's. The error handler registered here keeps even the framework's own answers (an
unroutable path) in the platform's shape. ``gc.freeze()`` keeps the framework's objects out
of the garbage collector's full passes (they are never garbage), once per process.

Pydantic looks for plugins when it builds its first validator, reading the metadata of
every installed distribution, once per process; none is used, so that search is turned
off (``PYDANTIC_DISABLE_PLUGINS``, unless the deployment sets it) before anything is
imported.
"""

import gc
import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import functions_framework
from werkzeug.exceptions import HTTPException

from functions import FUNCTIONS
from shared.http import http_exception_response
from shared.lazy import lazy_exports

functions_framework.errorhandler(HTTPException)(http_exception_response)

ENTRY_POINTS = {spec.module: [spec.entry_point] for spec in FUNCTIONS}
"""Each function's module and the entry point it defines (``main.users``: ``functions.users``)."""

__getattr__, __dir__ = lazy_exports(globals(), ENTRY_POINTS)

# What is loaded so far (the framework, Flask, this file) lives as long as the process: moved
# out of the collector's reach, the full collection that the function's own imports would
# set off scans only what came after (15 ms of a cold start, a tenth of a bare function's).
# Once per process: one that loads this file again (tests, the local gateway building an app
# per function) must not freeze the garbage made since, which could then never be freed.
if gc.get_freeze_count() == 0:
    gc.freeze()
