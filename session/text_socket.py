"""The WebSocket at ``/v1/synthesize/ws``: text in pieces in, audio with word timings out.

Authenticated like ``/v1/sessions`` (the ``Authorization`` header, or the
``bearer.<token>`` subprotocol next to ``voice-synthesis``): a bad token gets an ``error``
event and close code 4001. The first message is ``start`` (voice, sample rate, timings);
then ``text`` pieces collect in a ``SentenceBuffer`` (the sessions' own splitter), and
every complete sentence goes to a queue that one speaker task works through in text
order, so receiving never waits for synthesis, while the queue's bound makes a client that
writes faster than the voice speaks wait (TCP back-pressure) instead of growing memory.
``flush`` releases the text waiting without a sentence end; ``end`` releases it too, then
``synthesis.ended`` and close 1000. Everything sent goes through the sessions' bounded
``WebSocketTransport``: a client that stops reading overflows it and is closed with 4009.
Bad messages get ``error`` events and the connection stays open. A client that sends
nothing for the sessions' idle timeout while nothing is being spoken is closed with 4008.
Every error event sent, the refused token's included, is counted once by its code in the
counter given (``voice_synthesize_ws_errors_total``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from starlette.websockets import WebSocket, WebSocketDisconnect

from session.text_protocol import (
    EndOfText,
    Flush,
    Ping,
    StartSynthesis,
    TextPiece,
    parse_text_message,
)
from session.text_synthesis import TextSynthesis
from session.websocket import WebSocketTransport, open_authenticated
from shared.errors import PlatformError
from shared.providers import ProviderError
from shared.sessions.protocol import CloseCode, ProtocolError, error_event, event
from shared.sessions.tts import PlacedSentence, SentenceBuffer

logger = logging.getLogger(__name__)

SUBPROTOCOL = "voice-synthesis"
# Segments waiting for the speaker: past this the receive loop waits, and so does the client.
MAX_QUEUED_SEGMENTS = 8
# Text without a sentence end is spoken once this long, so the buffer stays bounded.
MAX_PENDING_CHARS = 2_000

Opener = Callable[[str, StartSynthesis], TextSynthesis]
"""Returns the synthesis a user's ``start`` asks for (blocking; raises PlatformError)."""


@dataclass(frozen=True)
class _Mark:
    """A flush or the end, in the queue after the segments it follows."""

    end: bool


class TextSynthesisConnection:
    """Serves one ``/v1/synthesize/ws`` connection from accept to close."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        verifier: object,
        open_synthesis: Opener,
        max_buffer_bytes: int,
        idle_timeout_seconds: float,
        errors: Counter,
    ) -> None:
        self._websocket = websocket
        self._errors = errors
        self._idle_timeout = idle_timeout_seconds
        self._speaking = False
        self._verifier = verifier
        self._open = open_synthesis
        self._max_buffer = max_buffer_bytes
        self._synthesis: TextSynthesis | None = None
        self._buffer = SentenceBuffer()
        self._pending_chars = 0
        self._queue: asyncio.Queue[PlacedSentence | _Mark] = asyncio.Queue(MAX_QUEUED_SEGMENTS)
        self._segments = 0
        self._characters = 0
        self._seconds = 0.0

    async def serve(self) -> None:
        """Authenticate, then handle messages until the client or the server ends."""
        opened = await open_authenticated(
            self._websocket,
            self._verifier,
            subprotocol=SUBPROTOCOL,
            max_buffer_bytes=self._max_buffer,
            errors=self._errors,
        )
        if opened is None:
            return
        transport, user_id = opened
        loop = asyncio.get_running_loop()
        speaker = loop.create_task(self._speak(transport), name="text-synthesis")
        overflow = loop.create_task(self._watch_overflow(transport))
        receiver = loop.create_task(self._receive(user_id, transport))
        try:
            # The speaker ends early only when it failed: that ends the connection too.
            await asyncio.wait({receiver, overflow, speaker}, return_when=asyncio.FIRST_COMPLETED)
            ended = receiver.result() if receiver.done() else None
            if ended == "end":
                # The speaker says what is queued (unless the client stops reading).
                await asyncio.wait({speaker, overflow}, return_when=asyncio.FIRST_COMPLETED)
            if ended == "idle" and not transport.overflowed.is_set():
                message = f"No message for {self._idle_timeout:g} s"
                await self._send_error(transport, "IDLE_TIMEOUT", message, fatal=True)
                await transport.close(CloseCode.IDLE_TIMEOUT, "idle timeout")
            elif transport.overflowed.is_set():
                await overflow  # the 4009 close under way finishes
            elif speaker.done():
                await self._finish(speaker, transport)
        finally:
            for task in (speaker, overflow, receiver):
                task.cancel()
            for task in (speaker, overflow, receiver):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await transport.shutdown()

    async def _send_error(
        self,
        transport: WebSocketTransport,
        code: str,
        message: str,
        *,
        fatal: bool = False,
        **fields: Any,
    ) -> None:
        """Send the client an ``error`` event and count it under ``code``."""
        await transport.send_event(error_event(code, message, fatal=fatal, **fields))
        self._errors.labels(code).inc()

    @staticmethod
    async def _watch_overflow(transport: WebSocketTransport) -> None:
        await transport.overflowed.wait()
        logger.warning("Closing a text synthesis whose client stopped reading")
        await transport.close(CloseCode.SLOW_CONSUMER, "client is not reading")

    async def _finish(self, speaker: asyncio.Task[None], transport: WebSocketTransport) -> None:
        failure = speaker.exception()
        if failure is not None:
            logger.error("Text synthesis failed", exc_info=failure)
            await self._send_error(transport, "INTERNAL_ERROR", "The synthesis failed", fatal=True)
            await transport.close(CloseCode.INTERNAL_ERROR, "internal error")
            return
        await transport.send_event(
            event(
                "synthesis.ended",
                segments=self._segments,
                characters=self._characters,
                durationSeconds=round(self._seconds, 3),
            )
        )
        await transport.close(CloseCode.NORMAL, "end of text")

    async def _receive(self, user_id: str, transport: WebSocketTransport) -> str:
        """Handle messages; return ``end`` after ``end``, ``gone`` when the client went
        away, ``idle`` when it sent nothing for the idle timeout while nothing was spoken."""
        while True:
            try:
                message = await asyncio.wait_for(self._websocket.receive(), self._idle_timeout)
            except TimeoutError:
                if self._speaking or not self._queue.empty():
                    continue  # the client is listening to what it sent
                return "idle"
            except (WebSocketDisconnect, RuntimeError):
                return "gone"
            if message["type"] == "websocket.disconnect":
                return "gone"
            text = message.get("text")
            try:
                if text is None:
                    raise ProtocolError("Send text as JSON messages; audio only comes back")
                if await self._handle(text, user_id, transport):
                    return "end"
            except PlatformError as exc:
                await self._send_error(transport, exc.code, exc.message, details=exc.details or [])

    async def _handle(self, frame: str, user_id: str, transport: WebSocketTransport) -> bool:
        """Act on one message; return True after ``end`` (nothing more is read)."""
        message = parse_text_message(frame)
        if isinstance(message, Ping):
            await transport.send_event(event("pong", id=message.id))
        elif isinstance(message, StartSynthesis):
            if self._synthesis is not None:
                raise ProtocolError("The synthesis has already started", code="ALREADY_STARTED")
            self._synthesis = await asyncio.to_thread(self._open, user_id, message)
            await transport.send_event(
                event(
                    "synthesis.started",
                    voice=self._synthesis.voice,
                    provider=self._synthesis.provider,
                    format="pcm",
                    sampleRate=self._synthesis.sample_rate,
                    timings=self._synthesis.timings,
                )
            )
        elif self._synthesis is None:
            raise ProtocolError(f"Send a start message before {message.type}", code="NOT_STARTED")
        elif isinstance(message, TextPiece):
            self._pending_chars += len(message.text)
            for sentence in self._buffer.add_placed(message.text):
                self._pending_chars = 0
                await self._queue.put(sentence)
            if message.flush or self._pending_chars > MAX_PENDING_CHARS:
                await self._release(_Mark(end=False) if message.flush else None)
        elif isinstance(message, Flush):
            await self._release(_Mark(end=False))
        elif isinstance(message, EndOfText):
            await self._release(_Mark(end=True))
            return True
        return False

    async def _release(self, mark: _Mark | None) -> None:
        rest = self._buffer.flush_placed()
        self._pending_chars = 0
        if rest.text:
            await self._queue.put(rest)
        if mark is not None:
            await self._queue.put(mark)

    async def _speak(self, transport: WebSocketTransport) -> None:
        """Speak queued segments in order; return after the end mark."""
        while True:
            item = await self._queue.get()
            if isinstance(item, _Mark):
                if item.end:
                    return
                await transport.send_event(event("flushed", segments=self._segments))
                continue
            if not any(character.isalnum() for character in item.text):
                continue  # punctuation alone says nothing
            self._speaking = True
            try:
                await self._segment(item, transport)
            except ProviderError as exc:
                await self._send_error(
                    transport,
                    "TTS_FAILED",
                    exc.message,
                    provider=exc.provider,
                    category=exc.category.value,
                    retryable=exc.retryable,
                    text=item.text,
                )
            finally:
                self._speaking = False

    async def _segment(self, sentence: PlacedSentence, transport: WebSocketTransport) -> None:
        synthesis = self._synthesis
        assert synthesis is not None  # text is queued only after start
        text = sentence.text
        index, start = self._segments, self._seconds
        began = time.perf_counter()
        byte_count = 0
        if await asyncio.to_thread(synthesis.streams, text):
            pieces = synthesis.stream(text)
            first = True
            try:
                while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                    if first:
                        await transport.send_event(self._started(index, sentence, start, None))
                        first = False
                    await transport.send_audio(piece)
                    byte_count += len(piece)
            finally:
                await asyncio.to_thread(pieces.close)
            if first:
                return
        else:
            segment = await asyncio.to_thread(synthesis.render, text)
            await transport.send_event(self._started(index, sentence, start, segment.words))
            await transport.send_audio(segment.pcm)
            byte_count = len(segment.pcm)
        latency_ms = (time.perf_counter() - began) * 1000
        duration = byte_count / 2 / synthesis.sample_rate
        self._segments += 1
        self._characters += len(text)
        self._seconds += duration
        await transport.send_event(
            event("segment.ended", segment=index, durationSeconds=round(duration, 4))
        )
        # Off the audio's path: the usage write comes after the segment has gone out.
        await asyncio.to_thread(synthesis.record, text, latency_ms)

    @staticmethod
    def _started(
        index: int, sentence: PlacedSentence, start: float, words: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        # The segment's words are timed and placed on the whole text: its clock, its spans.
        fields: dict[str, Any] = {
            "segment": index,
            "text": sentence.text,
            "startSeconds": round(start, 4),
        }
        if words is not None:
            fields["words"] = [
                {
                    **word,
                    "start": round(start + float(word["start"]), 4),
                    "end": round(start + float(word["end"]), 4),
                    "charStart": sentence.start + word["charStart"],
                    "charEnd": sentence.start + word["charEnd"],
                }
                for word in words
            ]
        return event("segment.started", **fields)
