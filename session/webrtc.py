"""The WebRTC transport: an SDP offer/answer over HTTPS, Opus audio both ways (aiortc).

``POST /v1/sessions/webrtc`` with the same bearer token as the WebSocket and a JSON body
``{"type": "offer", "sdp": ...}`` answers ``{"type": "answer", "sdp": ...}`` (all ICE
candidates included: no trickle). The offer carries one audio track (the microphone,
``sendrecv``) and one data channel; the data channel carries the WebSocket protocol's JSON
control messages and events unchanged, the tracks carry Opus both ways. The pipeline
behind it is the same as behind the WebSocket (``session.endpoint``).

Audio: the microphone track is decoded by aiortc and handed to the session as 48 kHz mono
PCM (a session started over WebRTC always runs ``audio.sampleRate`` and
``outputSampleRate`` 48000: Opus's rate); reply audio goes into ``ReplyAudioTrack``, which
aiortc encodes to Opus in 20 ms frames at real-time pace, and silence when there is
nothing to say. The session paces its audio at most ``playbackLeadSeconds`` ahead, so on
an ``interruption`` the track drops what it holds and the user hears the bot stop within
a frame. A close code travels as ``{"type": "connection.closed", "code", "reason"}`` on
the data channel before the peer connection closes; a peer that goes away leaves its
session resumable, as a dropped WebSocket does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from session.endpoint import BackendFor, SessionEndpoint
from session.http_errors import auth_status, error_response
from shared.auth import bearer_token
from shared.errors import InvalidRequestError, PlatformError
from shared.sessions.backends import BackendUnavailableError
from shared.sessions.config import SessionConfig, SessionDefaults
from shared.sessions.metrics import SessionMetrics
from shared.sessions.model import Transport, UserConnection
from shared.sessions.protocol import CloseCode, event
from shared.sessions.repository import SessionRepository

if TYPE_CHECKING:
    from session.container import SessionContainer
    from shared.sessions.backends import VoiceBackend


class OfferHost(Protocol):
    """What answering an offer needs of the running service (``session.app``)."""

    container: SessionContainer
    backend: VoiceBackend | None
    peers: set[Any]

    async def backend_for(self, config: SessionConfig) -> VoiceBackend:
        """Return the started backend for ``config``."""
        ...


logger = logging.getLogger(__name__)

OPUS_RATE = 48_000
FRAME_SAMPLES = OPUS_RATE // 50  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2
WEBRTC_AUDIO = {"sampleRate": OPUS_RATE, "outputSampleRate": OPUS_RATE, "encoding": "pcm16"}


class InvalidOfferError(InvalidRequestError):
    """The body of an offer request is not an SDP offer (400)."""

    code = "INVALID_REQUEST"
    default_message = 'Send {"type": "offer", "sdp": ...}'


class ReplyAudioTrack(MediaStreamTrack):
    """The session's reply audio as a live 48 kHz mono track (silence between replies)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._start: float | None = None
        self._sent = 0

    def feed(self, pcm: bytes) -> None:
        """Queue reply audio (16-bit mono PCM at 48 kHz)."""
        self._buffer += pcm

    def flush(self) -> None:
        """Drop the reply audio not yet sent (the user barged in)."""
        self._buffer.clear()

    async def recv(self) -> AudioFrame:
        """Return the next 20 ms frame, at real-time pace."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._sent / OPUS_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        chunk = bytes(self._buffer[:FRAME_BYTES])
        del self._buffer[:FRAME_BYTES]
        chunk += bytes(FRAME_BYTES - len(chunk))
        frame = AudioFrame.from_ndarray(
            np.frombuffer(chunk, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = OPUS_RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, OPUS_RATE)
        self._sent += FRAME_SAMPLES
        return frame


class WebRTCTransport:
    """A session's WebRTC connection: events on the data channel, audio on the track."""

    kind = Transport.WEBRTC

    def __init__(
        self, peer: RTCPeerConnection, track: ReplyAudioTrack, *, max_buffer_bytes: int
    ) -> None:
        self._peer = peer
        self._track = track
        self._max_buffer = max_buffer_bytes
        self.channel: RTCDataChannel | None = None
        self.close_code: int | None = None
        self.overflowed = asyncio.Event()

    async def send_event(self, payload: dict[str, Any]) -> None:
        if payload.get("type") == "interruption":
            self._track.flush()
        self._send(json.dumps(payload, default=str))

    async def send_audio(self, pcm: bytes) -> None:
        if len(self._track._buffer) + len(pcm) > self._max_buffer:
            self.overflowed.set()
            return
        self._track.feed(pcm)

    def _send(self, text: str) -> None:
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return
        if channel.bufferedAmount > self._max_buffer:
            self.overflowed.set()
            return
        channel.send(text)

    async def close(self, code: int, reason: str) -> None:
        """Tell the client why (on the data channel), then close the peer connection."""
        if self.close_code is not None:
            return
        self.close_code = code
        self._send(json.dumps(event("connection.closed", code=code, reason=reason[:120])))
        await asyncio.sleep(0.05)  # let the data channel flush before the transport closes
        await self._peer.close()


class WebRTCConnection:
    """One peer connection and the session it runs."""

    def __init__(
        self,
        *,
        user_id: str,
        remote_address: str | None,
        backend_for: BackendFor,
        repository: SessionRepository,
        metrics: SessionMetrics,
        defaults: SessionDefaults,
        max_frame_bytes: int,
        max_buffer_bytes: int,
        ice_servers: list[RTCIceServer],
    ) -> None:
        self.peer = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        self.track = ReplyAudioTrack()
        self.transport = WebRTCTransport(self.peer, self.track, max_buffer_bytes=max_buffer_bytes)
        self.endpoint = SessionEndpoint(
            transport=self.transport,
            connection=UserConnection(
                user_id=user_id, transport=Transport.WEBRTC, remote_address=remote_address
            ),
            backend_for=backend_for,
            repository=repository,
            metrics=metrics,
            defaults=defaults,
            max_frame_bytes=max_frame_bytes,
            fixed_audio=WEBRTC_AUDIO,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._messages: asyncio.Queue[str] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.peer.on("datachannel", self._on_datachannel)
        self.peer.on("track", self._on_track)
        self.peer.on("connectionstatechange", self._on_state)

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Return the answer to ``offer`` (every local ICE candidate gathered into it).

        Raises:
            InvalidOfferError: the offer has neither an audio track nor a data channel
                (aiortc reads any text as SDP and would answer it with no media at all).
        """
        await self.peer.setRemoteDescription(offer)
        if not self.peer.getTransceivers() and self.peer.sctp is None:
            raise InvalidOfferError("The offer's SDP has no audio track and no data channel")
        for transceiver in self.peer.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.sender.replaceTrack(self.track)
                transceiver.direction = "sendrecv"
        answer = await self.peer.createAnswer()
        await self.peer.setLocalDescription(answer)
        self._spawn(self._watch_overflow())
        self._spawn(self._handle_messages())
        return self.peer.localDescription

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        self.transport.channel = channel

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if isinstance(message, str):
                self._messages.put_nowait(message)

    async def _handle_messages(self) -> None:
        # One at a time, in order, as over the WebSocket.
        try:
            ended = False
            while not ended:
                ended = await self.endpoint.handle_text(await self._messages.get())
        except Exception:
            # The endpoint reports every failure itself (INTERNAL_ERROR, 1011), so this is
            # that report failing: the channel is gone. Log it and close the peer rather
            # than leave it connected to a reader that died.
            session = self.endpoint.session
            logger.exception(
                "The WebRTC message reader failed",
                extra={"fields": {"sessionId": session.id if session else None}},
            )
        self._spawn(self.close())

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._read_microphone(track))

    async def _read_microphone(self, track: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self.endpoint.session is None:
                continue  # the microphone streams before start: nothing to hear yet
            assert isinstance(frame, AudioFrame)
            for converted in resampler.resample(frame):
                pcm = bytes(converted.planes[0])[: converted.samples * 2]
                if await self.endpoint.handle_audio(pcm):
                    return

    async def _watch_overflow(self) -> None:
        await self.transport.overflowed.wait()
        session = self.endpoint.session
        if session is not None:
            await session.close(
                complete=False, code=CloseCode.SLOW_CONSUMER, reason="client is not reading"
            )
        await self.close()

    async def _on_state(self) -> None:
        if self.peer.connectionState in ("failed", "closed"):
            await self.close()

    async def close(self) -> None:
        """Close the session (resumable unless it ended) and the peer connection."""
        if self.closed.is_set():
            return
        self.closed.set()
        await self.endpoint.close()
        self.track.stop()
        await self.peer.close()
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def ice_servers_from(text: str) -> list[RTCIceServer]:
    """Return the ICE servers described by ``text`` (JSON: ``[{urls, username, credential}]``).

    Raises:
        ValueError: ``text`` is not such a list.
    """
    if not text.strip():
        return []
    entries = json.loads(text)
    if not isinstance(entries, list):
        raise ValueError("ICE servers must be a JSON list")
    return [
        RTCIceServer(
            urls=entry["urls"],
            username=entry.get("username"),
            credential=entry.get("credential"),
        )
        for entry in entries
    ]


async def answer_offer(request: Request, service: OfferHost) -> Response:
    """Answer ``POST /v1/sessions/webrtc``: authenticate, then answer the SDP offer.

    Every refusal is counted once by its code (``voice_webrtc_offer_errors_total``).
    """
    container = service.container
    settings = container.settings
    metrics = container.services.metrics

    def refuse(error: PlatformError, status: int) -> Response:
        metrics.webrtc_offer_errors.labels(error.code).inc()
        return error_response(request, error, status)

    try:
        token = bearer_token(request.headers.get("authorization"))
        principal = await asyncio.to_thread(container.verifier.verify, token)
    except PlatformError as exc:
        return refuse(exc, auth_status(exc))
    if service.backend is None:
        return refuse(BackendUnavailableError("The service is starting"), 503)
    try:
        body = await request.json()
        offer = RTCSessionDescription(sdp=str(body["sdp"]), type=str(body["type"]))
        if offer.type != "offer":
            raise ValueError("not an offer")
    except (ValueError, KeyError, TypeError):
        return refuse(InvalidOfferError(), 400)
    client = request.client
    peer = WebRTCConnection(
        user_id=str(principal.user_id),
        remote_address=client.host if client else None,
        backend_for=service.backend_for,
        repository=container.services.repository,
        metrics=metrics,
        defaults=container.defaults,
        max_frame_bytes=settings.sessions_max_frame_bytes,
        max_buffer_bytes=settings.sessions_outbound_buffer_bytes,
        ice_servers=ice_servers_from(settings.sessions_webrtc_ice_servers),
    )
    service.peers.add(peer)

    def forget_when_closed() -> None:
        if peer.peer.connectionState == "closed":
            service.peers.discard(peer)

    peer.peer.on("connectionstatechange", forget_when_closed)
    try:
        answer = await peer.answer(offer)
    except InvalidOfferError as exc:
        refused = exc
    except Exception:
        logger.exception("Could not answer a WebRTC offer")
        refused = InvalidOfferError("Could not answer the offer")
    else:
        return JSONResponse({"type": answer.type, "sdp": answer.sdp})
    await peer.close()
    service.peers.discard(peer)
    return refuse(refused, 400)
