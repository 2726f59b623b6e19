"""A WSGI app served by waitress on a thread of this process, and stopped cleanly.

``server.close()`` called from another thread closes the listening socket under the
serving loop's poll, and worker threads still pull the loop's trigger afterwards: waitress
then prints ``OSError: [Errno 9] Bad file descriptor`` at exit (in some runs,
a race). ``Served.close`` stops the worker threads first, then has the loop itself close
every socket it serves (the trigger runs the closing inside the loop's thread), and waits
for the loop to end.
"""

from __future__ import annotations

import threading
from typing import Any

from waitress import wasyncore
from waitress.server import create_server


class Served:
    """``app`` served on 127.0.0.1 (``port`` 0: a free one, see ``port``) until ``close``."""

    def __init__(self, app: Any, *, port: int = 0, threads: int = 8) -> None:
        # Any: waitress declares neither its trigger, its socket map nor its bound port.
        server: Any = create_server(app, host="127.0.0.1", port=port, threads=threads)
        self._server = server
        self.port: int = server.effective_port
        self._thread = threading.Thread(target=server.run, name="served-app", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the workers, close every connection and the listening socket, end the loop."""
        server = self._server
        server.task_dispatcher.shutdown()
        # The loop ends once its socket map is empty; closing from its own thread means
        # no socket is closed under a poll that is watching it.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        self._thread.join(5)
