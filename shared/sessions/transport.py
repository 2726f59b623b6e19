"""The transport port: how a live session reaches its user (WebSocket today, WebRTC next).

A transport sends the session's JSON events and reply audio to the user and closes the
connection with a close code. The session never knows which transport it runs on; the
WebSocket adapter lives in the Cloud Run service (``session/``), and a WebRTC adapter
(aiortc, Opus track) implements the same three methods.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.sessions.model import Transport


class SessionTransport(Protocol):
    """One user's connection, as a session sees it."""

    kind: Transport

    async def send_event(self, event: dict[str, Any]) -> None:
        """Queue one JSON event for the user (never blocks on a slow client)."""
        ...

    async def send_audio(self, pcm: bytes) -> None:
        """Queue one chunk of reply audio (16-bit mono PCM at the output rate)."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` (see ``shared.sessions.protocol.CloseCode``)."""
        ...
