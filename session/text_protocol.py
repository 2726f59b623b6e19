"""The wire protocol of ``/v1/synthesize/ws``: text pieces in, audio and timings out.

Text frames carry JSON messages both ways; binary frames (server to client only) carry the
audio, 16-bit little-endian mono PCM at the ``sampleRate`` of ``synthesis.started``.
``parse_text_message`` turns a client frame into one of the message models or raises
``ProtocolError`` with the code the client sees (``MALFORMED_JSON``,
``UNKNOWN_MESSAGE_TYPE``, ``INVALID_MESSAGE``); the connection stays open after any of
them. session/README.md documents the protocol for client authors.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter

from shared.lexicons.references import LexiconIds
from shared.model import RequestModel
from shared.sessions.protocol import parse_message
from shared.synthesis.model import Pitch, Rate, Speed, Volume

MAX_PIECE_CHARS = 10_000


class StartSynthesis(RequestModel):
    """Open the stream: the voice as ``POST /synthesize`` names it, and how it sounds."""

    type: Literal["start"]
    voice: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    format: Literal["pcm"] = "pcm"
    sample_rate: Rate | None = None
    speed: Speed = 1.0
    pitch: Pitch = 1.0
    volume: Volume = 1.0
    timings: bool = True
    lexicon_ids: LexiconIds | None = None


class TextPiece(RequestModel):
    """A piece of the text, as an LLM writes it (spaces kept: pieces are joined as sent)."""

    model_config = ConfigDict(str_strip_whitespace=False)

    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_PIECE_CHARS)]
    flush: bool = False


class Flush(RequestModel):
    """Speak whatever text is waiting, even without a sentence end; ``flushed`` follows."""

    type: Literal["flush"]


class EndOfText(RequestModel):
    """No more text: speak what is left, answer ``synthesis.ended`` and close (1000)."""

    type: Literal["end"]


class Ping(RequestModel):
    """Ask for a ``pong`` echoing ``id``."""

    type: Literal["ping"]
    id: Annotated[str, Field(max_length=64)] | None = None


TextMessage = StartSynthesis | TextPiece | Flush | EndOfText | Ping
_MESSAGE: TypeAdapter[TextMessage] = TypeAdapter(
    Annotated[TextMessage, Field(discriminator="type")]
)
KNOWN_TYPES = ("start", "text", "flush", "end", "ping")


def parse_text_message(frame: str) -> TextMessage:
    """Return the message a client's text frame holds.

    Raises:
        ProtocolError: ``MALFORMED_JSON``, ``UNKNOWN_MESSAGE_TYPE`` or ``INVALID_MESSAGE``.
    """
    return parse_message(frame, _MESSAGE, KNOWN_TYPES)
