"""A WSGI app served by waitress on a thread of this process, and stopped cleanly.

waitress's ``server.close()`` called from another thread closes the listening socket and
the loop's trigger under the serving loop's poll, while worker threads still pull that
trigger and the loop may close the same descriptors again. With many servers started and
stopped in one process (a test run), a descriptor number closed twice can by then belong
to another server, whose loop or trigger then fails with ``OSError: [Errno 9] Bad file
descriptor``. ``Served`` never closes anything from outside its loop, nor pulls the
trigger from there: ``close`` stops the worker threads first, then tells the loop to
stop; the loop, which polls at most ``POLL_SECONDS`` apart, closes every socket it serves
(connections kept alive by clients included) in its own thread and ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

POLL_SECONDS = 0.05
"""How long the loop waits in one poll when nothing happens: the most ``close`` waits."""


class Served:
    """``app`` served on 127.0.0.1 (``port`` 0: a free one, see ``port``) until ``close``."""

    def __init__(
        self,
        app: Any,
        *,
        port: int = 0,
        threads: int = 8,
        build: Callable[..., Any] = create_server,
    ) -> None:
        """Serve ``app`` on a server made by ``build`` (waitress's ``create_server`` or one
        taking the same keywords, such as ``local.gateway.gateway_server``)."""
        # Any: waitress declares neither its socket map nor its bound port.
        server: Any = build(app, host="127.0.0.1", port=port, threads=threads)
        self._server = server
        self.port: int = server.effective_port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="served-app", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        server = self._server
        try:
            while not self._stop.is_set():
                # Responses wake the poll through the server's trigger; only stopping waits.
                wasyncore.loop(timeout=POLL_SECONDS, map=server._map, count=1)
        finally:
            wasyncore.close_all(server._map)

    def close(self) -> None:
        """Stop the workers, then the loop, which closes every connection and the socket."""
        self._server.task_dispatcher.shutdown()
        self._stop.set()
        self._thread.join(5)
