"""Run the session service: ``python -m session`` (Cloud Run's PORT, else VOICE_SESSIONS_PORT).

Pydantic's search for plugins (the metadata of every installed distribution) is turned off
first, as in ``main.py``: none is used.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from session.app import create_app
from session.container import SessionContainer
from session.server import SessionServer
from shared.config import get_settings
from shared.log import configure_logging


def main() -> None:
    """Serve sessions until interrupted."""
    settings = get_settings()
    configure_logging(settings.log_level)
    app = create_app(SessionContainer(settings))
    logging.getLogger(__name__).info(
        "Voice sessions on ws://%s:%s/v1/sessions", settings.sessions_host, settings.sessions_port
    )
    SessionServer(app, settings, host=settings.sessions_host, port=settings.sessions_port).run()


if __name__ == "__main__":
    main()
