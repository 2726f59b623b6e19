"""The session wire protocol: client messages in, server events out, close codes.

Text frames carry JSON control messages, binary frames carry 16-bit little-endian mono PCM
at the negotiated rates. ``parse_client_message`` turns a text frame into one of the
message models or raises ``ProtocolError`` with the error code the client sees; the
connection stays open after any of these. The close codes are the only way a connection
ends on the server's initiative; the README documents all of it for client authors.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from shared.errors import InvalidRequestError, echoed
from shared.model import RequestModel, check_free_form, utcnow, validation_problems


class CloseCode(IntEnum):
    """Why the server closed a session's connection."""

    NORMAL = 1000  # the client sent stop, or the session ended normally
    GOING_AWAY = 1001  # the server is shutting down; reconnect with the session id
    MESSAGE_TOO_BIG = 1009  # a frame exceeded the transport's hard limit
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # this instance is at its session limit
    UNAUTHENTICATED = 4001  # missing, malformed, invalid or expired bearer token
    IDLE_TIMEOUT = 4008  # no speech and no message for the idle timeout
    SLOW_CONSUMER = 4009  # the client stopped reading; its outbound buffer overflowed
    TAKEN_OVER = 4010  # the session was resumed by another connection


M = TypeVar("M")


class ProtocolError(InvalidRequestError):
    """A client message the session cannot act on (the connection stays open)."""

    code: ClassVar[str] = "INVALID_MESSAGE"
    default_message: ClassVar[str] = "Invalid message"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code  # type: ignore[misc]  # instance-level override of the class code


class StartMessage(RequestModel):
    """Open a session, or resume one with ``sessionId``; ``config`` as in the README."""

    type: Literal["start"]
    session_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    config: dict[str, Any] | None = None


class StopMessage(RequestModel):
    """End the session for good (it is completed and forgotten)."""

    type: Literal["stop"]


class UpdateMetadataMessage(RequestModel):
    """Merge ``metadata`` into the session's metadata (a null value removes a key)."""

    type: Literal["update_metadata"]
    metadata: dict[str, Any]


class PingMessage(RequestModel):
    """Ask for a ``pong`` (echoing ``id``); also counts as activity."""

    type: Literal["ping"]
    id: Annotated[str, Field(max_length=64)] | None = None


ClientMessage = Annotated[
    StartMessage | StopMessage | UpdateMetadataMessage | PingMessage,
    Field(discriminator="type"),
]
_CLIENT_MESSAGE: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
KNOWN_TYPES = ("start", "stop", "update_metadata", "ping")


def parse_message(text: str, adapter: TypeAdapter[M], known_types: tuple[str, ...]) -> M:
    """Return the message of one of ``known_types`` that the text frame ``text`` holds,
    validated by ``adapter`` (a union discriminated by ``type``).

    Raises:
        ProtocolError: ``MALFORMED_JSON``, ``UNKNOWN_MESSAGE_TYPE`` or ``INVALID_MESSAGE``.
    """
    try:
        data = json.loads(text)
    except ValueError:
        raise ProtocolError("The message is not valid JSON", code="MALFORMED_JSON") from None
    except RecursionError:
        # JSON nested past the interpreter's limit: a refusal, not a failure of the connection.
        raise ProtocolError("The message nests too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("A message must be a JSON object", code="INVALID_MESSAGE")
    kind = data.get("type")
    if kind not in known_types:
        raise ProtocolError(
            f"Unknown message type {echoed(repr(kind))}; expected one of {', '.join(known_types)}",
            code="UNKNOWN_MESSAGE_TYPE",
        )
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{field or 'message'}: {problem}"
            for field, problem in validation_problems(exc, data, skip=1)
        )
        raise ProtocolError(f"Invalid {kind} message: {problems}") from None


def parse_client_message(
    text: str,
) -> StartMessage | StopMessage | UpdateMetadataMessage | PingMessage:
    """Return the message a text frame holds.

    Raises:
        ProtocolError: ``MALFORMED_JSON``, ``UNKNOWN_MESSAGE_TYPE`` or ``INVALID_MESSAGE``.
    """
    message = parse_message(text, _CLIENT_MESSAGE, KNOWN_TYPES)
    if isinstance(message, UpdateMetadataMessage):
        check_metadata(message.metadata)
    return message


def check_metadata(metadata: dict[str, Any]) -> None:
    """Return None if ``metadata`` is free-form JSON the session may store.

    The bounds are every free-form field's (``shared.model.check_free_form``: 16 KiB of
    JSON, 8 levels, 256 items, 64-bit integers): the metadata is stored with the session
    and handed to the agent with every turn.

    Raises:
        ProtocolError: it is not (``INVALID_MESSAGE``).
    """
    try:
        check_free_form(metadata)
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "nests too deeply"
        raise ProtocolError(f"metadata {message}") from None


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """Return a server event: ``{"type": kind, "timestamp": ..., **fields}``."""
    return {"type": kind, "timestamp": utcnow().isoformat(), **fields}


def error_event(code: str, message: str, *, fatal: bool = False, **fields: Any) -> dict[str, Any]:
    """Return an ``error`` event (``fatal`` when the connection is about to close)."""
    return event("error", code=code, message=message, fatal=fatal, **fields)
