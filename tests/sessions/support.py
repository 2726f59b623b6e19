"""Test helpers for the session service: speech made with eSpeak, a real server, a client.

``ServiceThread`` runs the real ASGI app under uvicorn on a free loopback port, on its own
thread and event loop, so tests drive it with the synchronous ``websockets`` client like
any other client would; ``tasks_named`` looks into the server's loop for leftover tasks.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import soundfile
from websockets.sync.client import ClientConnection, connect

from session.app import create_app
from session.container import SessionContainer
from session.server import SessionServer
from shared.auth import build_dev_verifier
from shared.config import Settings
from shared.providers import AudioSettings, SynthesisRequest
from shared.providers.espeak import EspeakProvider
from shared.store.base import Transaction
from shared.store.sqlite import SqliteDocumentStore
from tests.data.speech.generate import file_for
from tests.support.processes import free_port

_ESPEAK = EspeakProvider(variant_languages=[])


def speech(text: str, *, rate: int = 16_000, voice: str = "en-US") -> bytes:
    """Return eSpeak NG's ``text`` as 16-bit mono PCM at ``rate``.

    Phrases recorded in tests/data/speech (eSpeak renderings Whisper hears as written) are
    played from there: eSpeak's own output varies a little from call to call.
    """
    recorded = file_for(text, rate, voice)
    if recorded.exists():
        samples, _ = soundfile.read(recorded, dtype="int16")
        return bytes(samples.astype("<i2").tobytes())
    result = _ESPEAK.synthesize(
        SynthesisRequest(
            text=text, voice_id=voice, settings=AudioSettings(sample_rate=rate), want_timings=False
        )
    )
    return result.pcm


def words(text: str) -> list[str]:
    """Return ``text``'s words in lower case, without punctuation."""
    return re.findall(r"[a-z']+", text.lower())


# Whisper tiny mishears a word or a phrase of a synthesized reply, differently from run to
# run (eSpeak's audio is not bit-for-bit repeatable, nor is Opus over real-time RTP). Heard:
# "I can't look up the weather offline. I hope it is clear then." and "I cannot look up
# where the rough line. I hope it is pleasant." for "I cannot look up the weather offline. I
# hope it is pleasant.", word error rates of 0.17 and 0.25 (as ``assert_heard_as_said``
# counts). Either sentence missing fails: the first alone scores 0.42 against it, the second
# alone 0.58, and the question echoed back 0.83.
MAX_REPLY_WER = 0.35


def assert_heard_as_said(said: str, heard: str) -> None:
    """Fail unless Whisper's transcript ``heard`` of a reply says ``said`` nearly word for
    word, in order (a word error rate of at most ``MAX_REPLY_WER``).

    "can't" and "can not" count as "cannot" (Whisper writes all three for the same audio).
    """
    error = jiwer.wer(_normalized(said), _normalized(heard))
    assert error <= MAX_REPLY_WER, (said, heard, error)


def _normalized(text: str) -> str:
    return re.sub(r"\bcan(?:'t| not)\b", "cannot", " ".join(words(text)))


def silence(seconds: float, *, rate: int = 16_000) -> bytes:
    """Return ``seconds`` of digital silence."""
    return bytes(int(rate * seconds) * 2)


def noise(seconds: float, *, rate: int = 16_000, level: float = 300.0) -> bytes:
    """Return quiet white noise (a room, not a voice)."""
    generator = np.random.default_rng(7)
    samples = generator.normal(0, level, int(rate * seconds)).clip(-32768, 32767)
    return samples.astype("<i2").tobytes()


def test_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Return embedded settings with a fixed dev secret under ``data_dir``."""
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": data_dir,
        "dev_auth_secret": "s" * 40,
        "providers": "espeak",
        "espeak_variant_languages": "",
        "sessions_idle_timeout_seconds": 120.0,
    }
    values.update(overrides)
    return Settings(**values)


class FlakyStore(SqliteDocumentStore):
    """The embedded document store, failing once on demand as a store briefly unreachable does.

    ``fail_once`` names the method (``create`` or ``run_transaction``) whose next call
    raises SQLite's own I/O error instead of running; then it clears itself.
    """

    fail_once: str | None = None

    def _maybe_fail(self, method: str) -> None:
        if self.fail_once == method:
            self.fail_once = None
            raise sqlite3.OperationalError("disk I/O error")

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._maybe_fail("create")
        super().create(collection, doc_id, data)

    def run_transaction(
        self, function: Callable[[Transaction], Any], *, max_attempts: int = 5
    ) -> Any:
        self._maybe_fail("run_transaction")
        return super().run_transaction(function, max_attempts=max_attempts)


class ServiceThread:
    """The session service under uvicorn on a free port, in a thread of its own."""

    def __init__(self, container: SessionContainer) -> None:
        self.container = container
        self.app = create_app(container)
        self.port = free_port()
        self.server = SessionServer(self.app, container.settings, host="127.0.0.1", port=self.port)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve()

        asyncio.run(serve())

    @property
    def url(self) -> str:
        """Return the WebSocket URL of the sessions endpoint."""
        return f"ws://127.0.0.1:{self.port}/v1/sessions"

    @property
    def http(self) -> str:
        """Return the service's HTTP base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceThread:
        """Start serving and wait until the backend is ready."""
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the session service did not start")
            time.sleep(0.02)
        self.call(self.app.state.service.wait_ready())
        return self

    def call(self, coroutine: Any, timeout: float = 60) -> Any:
        """Run ``coroutine`` on the server's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def tasks_named(self, prefix: str) -> list[str]:
        """Return the names of the server loop's unfinished tasks starting with ``prefix``."""

        async def names() -> list[str]:
            return [
                task.get_name()
                for task in asyncio.all_tasks()
                if task.get_name().startswith(prefix) and not task.done()
            ]

        result: list[str] = self.call(names())
        return result

    def token(self, user: str, **kwargs: Any) -> str:
        """Return a dev token for ``user``."""
        return build_dev_verifier(self.container.settings).mint(user, **kwargs)

    def stop(self) -> None:
        """Stop serving (sessions close resumable) and wait for the thread."""
        self.server.should_exit = True
        self._thread.join(timeout=30)


def counted_by_code(service: ServiceThread, counter: str) -> dict[str, float]:
    """Return the counter ``counter`` (``voice_session_errors_total``...) by its ``code``
    label, as the service's ``/metrics`` exposes it to an operator."""
    # Loopback http URL built by the test only.
    with urllib.request.urlopen(f"{service.http}/metrics", timeout=10) as reply:  # noqa: S310
        exposition = reply.read().decode()
    pattern = rf'^{re.escape(counter)}\{{code="([^"]+)"\}} (\S+)$'
    return {code: float(value) for code, value in re.findall(pattern, exposition, re.MULTILINE)}


@dataclass
class Received:
    """What a client got: events in order, and the audio between them."""

    events: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    audio_chunks: list[tuple[float, int]] = field(default_factory=list)  # (arrival, bytes)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Return the events of type ``kind``."""
        return [item for item in self.events if item["type"] == kind]


class Client:
    """A synchronous test client of ``/v1/sessions``."""

    def __init__(self, url: str, token: str | None, **kwargs: Any) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.ws: ClientConnection = connect(url, additional_headers=headers, legacy=True, **kwargs)
        self.received = Received()
        self._seen = 0  # events before this index were matched by wait_for already

    def send(self, message: dict[str, Any]) -> None:
        """Send a control message."""
        self.ws.send(json.dumps(message))

    def start(self, config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Start (or resume) a session; return the ``session.started`` event."""
        self.send({"type": "start", **({"config": config} if config is not None else {}), **fields})
        return self.wait_for("session.started")

    def stream(self, pcm: bytes, *, rate: int = 16_000, pace: float = 0.0) -> None:
        """Send ``pcm`` in 20 ms frames; ``pace`` 1.0 is real time, 0 as fast as possible."""
        frame = rate * 2 // 50
        for start in range(0, len(pcm), frame):
            self.ws.send(pcm[start : start + frame])
            if pace:
                time.sleep(0.02 / pace)
            self.drain(0)

    def receive_one(self, timeout: float) -> dict[str, Any] | None:
        """Receive one message (recording it); return it if it was an event."""
        message = self.ws.recv(timeout=timeout)
        if isinstance(message, bytes):
            self.received.audio.extend(message)
            self.received.audio_chunks.append((time.monotonic(), len(message)))
            return None
        payload: dict[str, Any] = json.loads(message)
        payload["_at"] = time.monotonic()
        self.received.events.append(payload)
        return payload

    def drain(self, timeout: float = 0.0) -> None:
        """Record whatever arrives within ``timeout``."""
        try:
            while True:
                self.receive_one(timeout)
        except TimeoutError:
            return

    def wait_for(
        self,
        kind: str,
        timeout: float = 30.0,
        where: Callable[[dict[str, Any]], bool] = lambda item: True,
    ) -> dict[str, Any]:
        """Return the next event of type ``kind`` (matching ``where``) not yet waited for."""
        events = self.received.events
        for index in range(self._seen, len(events)):
            if events[index]["type"] == kind and where(events[index]):
                self._seen = index + 1
                return events[index]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [item["type"] for item in self.received.events]
                raise AssertionError(f"no {kind} event within {timeout}s; got {kinds}")
            item = self.receive_one(remaining)
            if item is not None and item["type"] == kind and where(item):
                self._seen = len(self.received.events)
                return item

    def close(self) -> None:
        """Close the connection."""
        self.ws.close()


def iterate(count: int) -> Iterator[int]:
    """Return range(count) (readable loops in tests)."""
    return iter(range(count))
