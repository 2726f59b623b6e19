"""Local stand-ins for paid third-party APIs, speaking their real wire formats.

``FakeChatCompletions`` is an OpenAI-compatible ``POST /v1/chat/completions`` server that
streams ``chat.completion.chunk`` server-sent events over chunked HTTP, with an optional
pause between pieces. ``FakeWebhook`` records JSON posts and answers ``{"text": ...}``.
``FakeRealtime`` is an OpenAI Realtime WebSocket server: it answers ``session.update``,
detects speech in the appended audio by its energy, and answers each utterance with the
GA event sequence (speech started/stopped, committed, transcription completed, response
created, output audio transcript and audio deltas, response done).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

from tests.support.processes import free_port


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.httpd.fake = self  # type: ignore[attr-defined]
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        return

    def do_POST(self) -> None:
        fake: FakeChatCompletions = self.server.fake  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        fake.requests.append(body)
        fake.headers.append(dict(self.headers))
        if fake.status != 200:
            payload = json.dumps({"error": {"message": "nope", "type": "invalid_request_error"}})
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            event = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            self._send_chunk(f"data: {json.dumps(event)}\n\n")

        self._send_chunk(": keep-alive\n\n")
        chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in fake.pieces:
            if piece is None:
                time.sleep(fake.pause)
                continue
            chunk({"content": piece})
        chunk({}, "stop")
        self._send_chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _send_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class FakeChatCompletions(_Server):
    """Streams ``pieces`` (None = pause ``pause`` seconds) as chat completion chunks."""

    def __init__(self, pieces: list[str | None], *, pause: float = 0.0, status: int = 200):
        super().__init__(_ChatHandler)
        self.pieces = pieces
        self.pause = pause
        self.status = status


class _WebhookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        return

    def do_POST(self) -> None:
        fake: FakeWebhook = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        fake.raw.append(raw)
        fake.requests.append(json.loads(raw))
        fake.headers.append(dict(self.headers))
        status, payload = fake.answer(json.loads(raw))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeWebhook(_Server):
    """Answers each post with ``answer(body) -> (status, json)``."""

    def __init__(self, answer: Callable[[dict[str, Any]], tuple[int, Any]]) -> None:
        super().__init__(_WebhookHandler)
        self.answer = answer
        self.raw: list[bytes] = []


class FakeRealtime:
    """An OpenAI Realtime server on a loopback port, in its own thread and loop."""

    def __init__(self, *, transcript: str, reply: str, reply_seconds: float = 1.0) -> None:
        self.port = free_port()
        self.transcript = transcript
        self.reply = reply
        self.reply_seconds = reply_seconds
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.audio_bytes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._session, "127.0.0.1", self.port, max_size=None):
            self._ready.set()
            await self._stop.wait()

    async def _session(self, socket: ServerConnection) -> None:
        assert socket.request is not None
        self.paths.append(socket.request.path)
        self.headers.append({k.lower(): v for k, v in socket.request.headers.raw_items()})
        counter = 0

        async def send(kind: str, **fields: Any) -> None:
            nonlocal counter
            counter += 1
            await socket.send(json.dumps({"type": kind, "event_id": f"event_{counter}", **fields}))

        await send("session.created", session={"id": "sess_fake", "object": "realtime.session"})
        speaking = False
        quiet_seconds = 0.0
        async for message in socket:
            event = json.loads(message)
            self.received.append(event)
            kind = event["type"]
            if kind == "session.update":
                await send("session.updated", session=event["session"])
            elif kind == "input_audio_buffer.append":
                pcm = base64.b64decode(event["audio"])
                self.audio_bytes += len(pcm)
                samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
                loud = bool(samples.size) and float(np.sqrt(np.mean(samples**2))) > 500
                seconds = len(pcm) / 2 / 24_000
                if loud and not speaking:
                    speaking, quiet_seconds = True, 0.0
                    await send(
                        "input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_1"
                    )
                elif speaking:
                    quiet_seconds = 0.0 if loud else quiet_seconds + seconds
                    if quiet_seconds >= 0.5:
                        speaking = False
                        await self._answer(send)

    async def _answer(self, send: Callable[..., Any]) -> None:
        await send("input_audio_buffer.speech_stopped", audio_end_ms=1000, item_id="item_1")
        await send("input_audio_buffer.committed", item_id="item_1", previous_item_id=None)
        await send(
            "conversation.item.input_audio_transcription.completed",
            item_id="item_1",
            content_index=0,
            transcript=self.transcript,
        )
        await send("response.created", response={"id": "resp_1", "status": "in_progress"})
        for word in self.reply.split(" "):
            await send(
                "response.output_audio_transcript.delta",
                response_id="resp_1",
                item_id="item_2",
                output_index=0,
                content_index=0,
                delta=word + " ",
            )
        tone = np.sin(np.arange(int(24_000 * self.reply_seconds)) / 24_000 * 2 * np.pi * 440) * 8000
        pcm = tone.astype("<i2").tobytes()
        for start in range(0, len(pcm), 9600):
            await send(
                "response.output_audio.delta",
                response_id="resp_1",
                item_id="item_2",
                output_index=0,
                content_index=0,
                delta=base64.b64encode(pcm[start : start + 9600]).decode(),
            )
        await send("response.output_audio.done", response_id="resp_1", item_id="item_2")
        await send(
            "response.done",
            response={"id": "resp_1", "status": "completed", "output": []},
        )

    def __enter__(self) -> FakeRealtime:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
