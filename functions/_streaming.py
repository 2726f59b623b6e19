"""Streamed synthesis on the wire: chunked audio, JSON lines, or OpenAI's server-sent events.

Each answer takes the stream's first chunk before it answers, so an error up to then (the
first sentence's provider call included) is the route's normal JSON error with its status.
After the first byte an error ends the stream in a way the client can detect:
- audio: the chunked body stops without its terminating zero-length chunk (the server
  closes the connection), which HTTP clients report as an incomplete read;
- JSON lines: a last line holding the platform's error body (``error``, ``code``,
  ``timestamp``, ``requestId``) and no ``done`` line;
- server-sent events: an ``error`` event with OpenAI's error body.
A client that goes away closes the stream, which stops the synthesis and stores nothing.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import flask

from shared import errors
from shared.http import openai_error_body, platform_error_body, status_for

if TYPE_CHECKING:  # the speech path loads with a request that streams, not with the routes
    from shared.synthesis.deps import SynthesisDeps
    from shared.synthesis.stream_render import StreamChunk
    from shared.synthesis.streaming import SynthesisStream

logger = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"


def audio_response(stream: SynthesisStream) -> flask.Response:
    """Return the stream as chunked audio of its format."""
    first, rest = _started(stream)

    def body() -> Iterator[bytes]:
        try:
            yield first.audio
            for chunk in rest:
                yield chunk.audio
        except Exception:
            logger.exception("Streamed synthesis failed after its first byte; aborting")
            raise
        finally:
            stream.close()

    return _streamed(body(), stream.content_type, stream)


def ndjson_response(
    stream: SynthesisStream, deps: SynthesisDeps, request_id: str, *, timings: bool
) -> flask.Response:
    """Return the stream as JSON lines: ``{audio, words, syllables}`` per chunk (base64
    audio; timings on the whole utterance's clock, when ``timings``), then ``{done: true,
    ...totals}``, or an error line."""
    first, rest = _started(stream)

    def line(chunk: StreamChunk) -> bytes:
        body: dict[str, Any] = {"audio": base64.b64encode(chunk.audio).decode("ascii")}
        if timings:
            body.update(stream.timings_of(deps, chunk))
        return _json_line(body)

    def body() -> Iterator[bytes]:
        try:
            yield line(first)
            for chunk in rest:
                yield line(chunk)
            yield _json_line(_totals(stream, request_id))
        except Exception as exc:
            yield _json_line(platform_error_body(_platform(exc), request_id))
        finally:
            stream.close()

    return _streamed(body(), NDJSON, stream)


def sse_response(stream: SynthesisStream) -> flask.Response:
    """Return the stream as OpenAI's ``speech.audio.delta`` events, then
    ``speech.audio.done`` (or an ``error`` event)."""
    first, rest = _started(stream)
    characters = stream.prepared.length

    def event(body: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    def delta(chunk: StreamChunk) -> bytes:
        audio = base64.b64encode(chunk.audio).decode("ascii")
        return event({"type": "speech.audio.delta", "audio": audio})

    def body() -> Iterator[bytes]:
        try:
            yield delta(first)
            for chunk in rest:
                yield delta(chunk)
            # Tokens are what OpenAI bills; here the characters spoken stand for them.
            usage = {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters}
            yield event({"type": "speech.audio.done", "usage": usage})
        except Exception as exc:
            error = _platform(exc)
            yield b"event: error\n" + event(openai_error_body(error, status_for(error)))
        finally:
            stream.close()

    return _streamed(body(), EVENT_STREAM, stream)


def _started(stream: SynthesisStream) -> tuple[StreamChunk, Iterator[StreamChunk]]:
    """Return the first chunk and the rest; errors until then raise (a normal error answer)."""
    chunks = iter(stream)
    try:
        first = next(chunks)
    except BaseException:
        stream.close()
        raise
    return first, chunks


def _totals(stream: SynthesisStream, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "done": True,
        "requestId": request_id,
        "cacheHit": stream.cache_hit,
        "duration": round(stream.duration, 6),
        "format": stream.prepared.options.output_format.value,
    }
    result = stream.result
    if result is not None:
        body |= {
            "jobId": result.job_id,
            "audioFileId": result.audio_file_id,
            "sampleRate": result.sample_rate,
            "billedCharacters": result.billed_characters,
            "cost": result.cost,
        }
    return body


def _platform(exc: Exception) -> errors.PlatformError:
    if isinstance(exc, errors.PlatformError):
        return exc
    logger.exception("Streamed synthesis failed after its first byte")
    return errors.PlatformError()


def _json_line(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def _streamed(body: Iterator[bytes], content_type: str, stream: SynthesisStream) -> flask.Response:
    response = flask.Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Cache-Hit"] = "true" if stream.cache_hit else "false"
    # Proxies that buffer (nginx) pass the chunks on as they come.
    response.headers["X-Accel-Buffering"] = "no"
    return response
