"""An OpenAI-Realtime-compatible speech-to-speech client (the production S2S provider).

One WebSocket per voice session to ``{url}?model={model}`` with ``Authorization: Bearer``.
It configures the session (``session.update``: 24 kHz PCM both ways, server VAD with the
session's threshold and silence timeout, barge-in per the interruption flag, input
transcription, the voice and instructions), replays the conversation so far as
``conversation.item.create`` items (so a resumed session keeps its context), streams the
user's audio as base64 ``input_audio_buffer.append`` events, and maps the server's events
to ``S2SEvent``s. Both the GA event names (``response.output_audio.delta``,
``response.output_audio_transcript.delta``) and the beta ones (``response.audio.delta``,
``response.audio_transcript.delta``) are understood.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import numpy as np
import soxr  # type: ignore[import-untyped]  # no type hints shipped
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from shared.errors import ServiceUnavailableError
from shared.sessions.model import ConversationRole
from shared.sessions.s2s import (
    AssistantText,
    ReplyAudio,
    ResponseDone,
    ResponseStarted,
    S2SError,
    S2SEvent,
    S2SOptions,
    S2SSession,
    SpeechStarted,
    SpeechStopped,
    SpeechToSpeechProvider,
    UserTranscript,
)

logger = logging.getLogger(__name__)

REALTIME_RATE = 24_000
INPUT_RATE = 16_000
_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_TEXT_DELTAS = ("response.output_audio_transcript.delta", "response.audio_transcript.delta")


class OpenAIRealtimeS2S(SpeechToSpeechProvider):
    """Opens Realtime sessions against an OpenAI-compatible endpoint."""

    name: ClassVar[str] = "openai_realtime"

    def __init__(
        self,
        *,
        url: str,
        model: str,
        voice: str = "alloy",
        api_key: str | None = None,
        transcription_model: str = "gpt-4o-mini-transcribe",
        open_timeout: float = 10.0,
    ) -> None:
        self._url = url
        self._model = model
        self._voice = voice
        self._api_key = api_key
        self._transcription_model = transcription_model
        self._open_timeout = open_timeout

    def session_update(self, options: S2SOptions) -> dict[str, Any]:
        """Return the ``session.update`` event configuring a session for ``options``."""
        session: dict[str, Any] = {
            "type": "realtime",
            "model": self._model,
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": REALTIME_RATE},
                    "transcription": {"model": self._transcription_model},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": options.vad.threshold,
                        "prefix_padding_ms": int(options.turn.pre_roll_seconds * 1000),
                        "silence_duration_ms": int(options.turn.silence_timeout_seconds * 1000),
                        "create_response": True,
                        "interrupt_response": options.interruptions,
                    },
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": REALTIME_RATE},
                    "voice": options.voice or self._voice,
                },
            },
        }
        if options.instructions:
            session["instructions"] = options.instructions
        return {"type": "session.update", "session": session}

    async def open(self, options: S2SOptions) -> S2SSession:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        separator = "&" if "?" in self._url else "?"
        try:
            socket = await connect(
                f"{self._url}{separator}model={self._model}",
                additional_headers=headers,
                open_timeout=self._open_timeout,
                max_size=16 * 1024 * 1024,
            )
        except (OSError, TimeoutError, InvalidStatus, WebSocketException) as exc:
            raise ServiceUnavailableError(
                f"The realtime speech service is unreachable ({type(exc).__name__})"
            ) from exc
        session = _RealtimeSession(socket, options.output_sample_rate)
        await session.send(self.session_update(options))
        for line in options.conversation.lines:
            user = line.role is ConversationRole.USER
            await session.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": line.role.value,
                        "content": [
                            {"type": "input_text" if user else "output_text", "text": line.text}
                        ],
                    },
                }
            )
        return session


class _RealtimeSession(S2SSession):
    def __init__(self, socket: ClientConnection, output_rate: int) -> None:
        self._socket = socket
        self._output_rate = output_rate
        self._upsample = soxr.ResampleStream(INPUT_RATE, REALTIME_RATE, 1, dtype="int16")
        self._downsample = (
            None
            if output_rate == REALTIME_RATE
            else soxr.ResampleStream(REALTIME_RATE, output_rate, 1, dtype="int16")
        )
        self._answer: list[str] = []

    async def send(self, payload: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._socket.send(json.dumps(payload))

    async def send_audio(self, pcm: bytes) -> None:
        samples = self._upsample.resample_chunk(np.frombuffer(pcm, dtype="<i2"))
        data = np.asarray(samples, dtype="<i2").tobytes()
        if data:
            audio = base64.b64encode(data).decode("ascii")
            await self.send({"type": "input_audio_buffer.append", "audio": audio})

    async def interrupt(self) -> None:
        await self.send({"type": "response.cancel"})

    async def events(self) -> AsyncIterator[S2SEvent]:
        try:
            async for message in self._socket:
                if isinstance(message, bytes):
                    continue
                item = self._event(json.loads(message))
                if item is not None:
                    yield item
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != 1000:
                yield S2SError("S2S_DISCONNECTED", "The realtime speech service hung up", True)

    def _event(self, payload: dict[str, Any]) -> S2SEvent | None:
        kind = payload.get("type", "")
        if kind == "input_audio_buffer.speech_started":
            return SpeechStarted()
        if kind == "input_audio_buffer.speech_stopped":
            return SpeechStopped()
        if kind == "conversation.item.input_audio_transcription.completed":
            return UserTranscript(str(payload.get("transcript", "")), final=True)
        if kind == "conversation.item.input_audio_transcription.delta":
            return UserTranscript(str(payload.get("delta", "")), final=False)
        if kind == "response.created":
            self._answer = []
            return ResponseStarted()
        if kind in _TEXT_DELTAS:
            self._answer.append(str(payload.get("delta", "")))
            return AssistantText(str(payload.get("delta", "")))
        if kind in _AUDIO_DELTAS:
            return ReplyAudio(
                self._convert(base64.b64decode(payload.get("delta", ""))), self._output_rate
            )
        if kind == "response.done":
            return ResponseDone("".join(self._answer))
        if kind == "error":
            error = payload.get("error") or {}
            code = str(error.get("code") or error.get("type") or "S2S_ERROR")
            return S2SError(code.upper(), str(error.get("message", "The realtime service failed")))
        return None

    def _convert(self, pcm: bytes) -> bytes:
        if self._downsample is None:
            return pcm
        samples = self._downsample.resample_chunk(np.frombuffer(pcm, dtype="<i2"))
        return bytes(np.asarray(samples, dtype="<i2").tobytes())

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._socket.close(), 5)
