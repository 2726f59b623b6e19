"""The speech-to-text port: open a stream per utterance, feed it audio, finish it.

A ``SpeechToText`` provider opens a ``RecognitionStream`` for each user turn. Audio goes in
with ``feed`` (16-bit mono PCM at the stream's rate; never blocks), interim hypotheses come
out through the ``on_partial`` callback when the provider has them (Google does; Whisper
decodes once, at the end), and ``finish`` returns the final ``Transcript``. A provider
failure is a ``SpeechToTextError`` carrying the same ``ErrorCategory`` as the TTS
providers', so callers decide retry or give up the same way.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from shared.errors import ServiceUnavailableError
from shared.providers import ErrorCategory

PartialHandler = Callable[[str], None]


class SpeechToTextError(ServiceUnavailableError):
    """A speech-to-text provider failed; ``category`` decides retry or give up."""

    code: ClassVar[str] = "STT_FAILED"
    default_message: ClassVar[str] = "Speech recognition failed"

    def __init__(
        self, message: str | None = None, *, provider: str, category: ErrorCategory
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.category = category


@dataclass(frozen=True)
class Transcript:
    """The words of one utterance; ``seconds`` is how long recognition took after ``finish``."""

    text: str
    language: str | None = None
    seconds: float = 0.0
    audio_seconds: float = 0.0


class RecognitionStream(abc.ABC):
    """One utterance being recognised."""

    @abc.abstractmethod
    def feed(self, pcm: bytes) -> None:
        """Add audio to the utterance (does not block)."""

    @abc.abstractmethod
    async def finish(self) -> Transcript:
        """Return the utterance's final transcript once all audio is in.

        Raises:
            SpeechToTextError: the provider failed.
        """

    async def aclose(self) -> None:  # noqa: B027 - buffering streams hold nothing to release
        """Abandon the stream (after an interruption) and release what it holds."""


class SpeechToText(abc.ABC):
    """A speech-to-text provider, shared by every session of the process."""

    name: ClassVar[str]
    streaming: ClassVar[bool] = False
    """True when the provider sends interim results while the user speaks."""

    @abc.abstractmethod
    def open_stream(
        self,
        *,
        sample_rate: int,
        language: str | None,
        on_partial: PartialHandler | None = None,
    ) -> RecognitionStream:
        """Return a new stream for one utterance of ``sample_rate`` Hz audio.

        Raises:
            SpeechToTextError: the provider cannot take audio now.
        """

    async def warm_up(self) -> None:  # noqa: B027 - providers without a model need no warm-up
        """Load models before the first session needs them."""

    def close(self) -> None:  # noqa: B027 - providers without resources need not override
        """Release threads and connections."""
