"""Run the session service: ``python -m session`` (Cloud Run's PORT, else VOICE_SESSIONS_PORT)."""

from __future__ import annotations

import logging

import uvicorn

from session.app import create_app
from session.container import SessionContainer
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
    uvicorn.run(
        app,
        host=settings.sessions_host,
        port=settings.sessions_port,
        ws="websockets-sansio",
        ws_max_size=settings.sessions_max_message_bytes,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
