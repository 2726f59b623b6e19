"""WebRTC end to end: a real aiortc peer offers over HTTP, speaks over Opus, hears the reply.

ICE is restricted to the loopback interface (no STUN, no other address): aioice leaves
127.0.0.1 out of its host candidates, so the test hands it that address only, for both
peers (the server runs in this process). Everything else is the real stack: SDP offer and
answer, DTLS, SRTP, Opus both ways, the data channel, and the same pipeline as behind the
WebSocket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fractions
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler

from tests.sessions.support import (
    assert_heard_as_said,
    counted_by_code,
    silence,
    speech,
    words,
)
from tests.support.processes import free_port

RATE = 48_000
FRAME = RATE // 50


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch):
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["127.0.0.1"])


class Microphone(MediaStreamTrack):
    """Plays PCM (48 kHz mono) at real-time pace, then silence for ever."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._audio = bytearray()
        self._start: float | None = None
        self._sent = 0

    def say(self, pcm: bytes) -> None:
        self._audio += pcm

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._sent / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = bytes(self._audio[: FRAME * 2])
        del self._audio[: FRAME * 2]
        chunk += bytes(FRAME * 2 - len(chunk))
        frame = AudioFrame.from_ndarray(
            np.frombuffer(chunk, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = RATE, self._sent
        frame.time_base = fractions.Fraction(1, RATE)
        self._sent += FRAME
        return frame


def post_offer(url: str, token: str | None, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


class Peer:
    """A WebRTC client of the session service."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.pc = RTCPeerConnection()
        self.microphone = Microphone()
        self.events: list[dict] = []
        self.reply = bytearray()
        self.chunks: list[tuple[float, bytes]] = []  # (arrival, PCM) once a reply started
        self._arrived = asyncio.Event()
        self.channel = self.pc.createDataChannel("control")
        self.opened = asyncio.Event()
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._on_message)
        self.pc.addTrack(self.microphone)
        self.pc.on("track", self._on_track)
        self._readers: list[asyncio.Task] = []

    def _on_message(self, message: str) -> None:
        self.events.append({**json.loads(message), "_at": time.monotonic()})
        self._arrived.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.get_running_loop().create_task(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="mono", rate=RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if any(event["type"] == "audio.started" for event in self.events):
                for converted in resampler.resample(frame):
                    pcm = bytes(converted.planes[0])[: converted.samples * 2]
                    self.reply += pcm
                    self.chunks.append((time.monotonic(), pcm))

    async def connect(self) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"type": "offer", "sdp": self.pc.localDescription.sdp}
        status, answer = await asyncio.to_thread(post_offer, self.url, self.token, offer)
        assert status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(self.opened.wait(), 20)

    def send(self, message: dict) -> None:
        self.channel.send(json.dumps(message))

    async def wait_for(self, kind: str, timeout: float = 30, where=lambda item: True) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for item in self.events[seen:]:
                if item["type"] == kind and where(item):
                    return item
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            kinds = [item["type"] for item in self.events]
            assert remaining > 0, f"no {kind} within {timeout}s; got {kinds}"
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def close(self) -> None:
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()


def test_a_webrtc_peer_is_heard_and_answered_over_opus(start_service, whisper):
    service = start_service()
    offer_url = f"{service.http}/v1/sessions/webrtc"

    async def conversation() -> tuple[list[dict], bytes, list[str]]:
        peer = Peer(offer_url, service.token("opal"))
        await peer.connect()
        # The client's config asks for 16 kHz; over WebRTC the Opus track's 48 kHz wins.
        peer.send({"type": "start", "config": {"audio": {"sampleRate": 16000}}})
        started = await peer.wait_for("session.started")
        peer.microphone.say(
            silence(0.3, rate=RATE) + speech("What is the weather like today?", rate=RATE)
        )
        await peer.wait_for("audio.ended", timeout=40)
        await asyncio.sleep(0.3)  # the last reply frames are in flight
        live = service.tasks_named(f"session:{started['sessionId']}")
        peer.send({"type": "stop"})
        await peer.wait_for("connection.closed")
        await peer.close()
        return peer.events, bytes(peer.reply), live

    events, reply, live = asyncio.run(conversation())
    kinds = [item["type"] for item in events]
    started = events[kinds.index("session.started")]
    assert started["config"]["audio"]["sampleRate"] == RATE
    final = next(item for item in events if item["type"] == "transcript.final")
    assert words(final["text"]) == ["what", "is", "the", "weather", "like", "today"]
    assert "weather" in next(item for item in events if item["type"] == "agent.done")["text"]
    assert next(item for item in events if item["type"] == "audio.started")["sampleRate"] == RATE
    closed = next(item for item in events if item["type"] == "connection.closed")
    assert closed["code"] == 1000
    assert live  # the session ran while connected...
    deadline = time.monotonic() + 10
    while service.tasks_named(f"session:{started['sessionId']}"):
        assert time.monotonic() < deadline, "session tasks left running after stop"
        time.sleep(0.05)
    # ...and the reply came back as audio over the Opus track, saying the agent's words.
    answer = next(item for item in events if item["type"] == "agent.done")["text"]
    samples = np.frombuffer(reply, dtype="<i2").astype(np.float64)
    voiced = np.flatnonzero(np.abs(samples) > 500)
    expected = np.frombuffer(speech(answer, rate=RATE), dtype="<i2").astype(np.float64)
    expected_voiced = np.flatnonzero(np.abs(expected) > 500)
    # All of it, without gaps or repeats: the voiced span lasts as long as the synthesis.
    span, expected_span = voiced[-1] - voiced[0], expected_voiced[-1] - expected_voiced[0]
    assert abs(span - expected_span) / expected_span < 0.1
    assert np.sqrt(np.mean(samples[voiced[0] : voiced[-1]] ** 2)) > 1000
    heard = asyncio.run(whisper.transcribe(reply, RATE, "en")).text
    # Both sentences arrived, in order, and nearly word for word (the span and loudness
    # checks above pass for a reply Whisper mishears: see MAX_REPLY_WER).
    assert_heard_as_said(answer, heard)


def test_an_offer_needs_a_valid_token_and_an_sdp_offer(start_service):
    service = start_service()
    offer_url = f"{service.http}/v1/sessions/webrtc"
    status, body = post_offer(offer_url, None, {"type": "offer", "sdp": "v=0"})
    assert (status, body["code"]) == (401, "UNAUTHENTICATED")
    status, body = post_offer(offer_url, "forged.token.value", {"type": "offer", "sdp": "v=0"})
    assert status == 401
    status, body = post_offer(offer_url, service.token("opal"), {"type": "answer", "sdp": "x"})
    assert (status, body["code"]) == (400, "INVALID_REQUEST")
    status, body = post_offer(offer_url, service.token("opal"), {"sdp": "v=0"})
    assert status == 400


def test_an_offer_whose_sdp_is_not_usable_is_refused_and_leaves_no_peer(start_service):
    service = start_service()
    offer_url = f"{service.http}/v1/sessions/webrtc"
    peers = service.app.state.service.peers
    before = len(peers)
    for sdp in ("garbage", "v=0", ""):
        status, body = post_offer(offer_url, service.token("opal"), {"type": "offer", "sdp": sdp})
        assert (status, body.get("code")) == (400, "INVALID_REQUEST"), (sdp, status, body)
        assert {"error", "code", "timestamp", "requestId"} <= body.keys()
        assert len(peers) == before, sdp


def test_every_refused_offer_is_counted_once_by_its_code(start_service):
    # Refused offers were answered in the platform's error body, and counted nowhere.
    service = start_service()
    offer_url = f"{service.http}/v1/sessions/webrtc"
    refusals = [
        (None, {"type": "offer", "sdp": "v=0"}),
        ("forged.token.value", {"type": "offer", "sdp": "v=0"}),
        (service.token("opal"), {"type": "answer", "sdp": "x"}),  # not an offer
        (service.token("opal"), {"type": "offer", "sdp": "garbage"}),  # no usable SDP
    ]
    codes = []
    for token, body in refusals:
        status, answer = post_offer(offer_url, token, body)
        assert status in (400, 401), (body, status, answer)
        codes.append(answer["code"])
    assert codes == ["UNAUTHENTICATED", "UNAUTHENTICATED", "INVALID_REQUEST", "INVALID_REQUEST"]
    assert counted_by_code(service, "voice_webrtc_offer_errors_total") == {
        "UNAUTHENTICATED": 2.0,
        "INVALID_REQUEST": 2.0,
    }
    assert counted_by_code(service, "voice_session_errors_total") == {}


def unverifiable_token() -> str:
    """Return a Firebase-shaped token (RS256, a key id) whose signing keys must be fetched."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header, claims = {"alg": "RS256", "kid": "k1", "typ": "JWT"}, {"sub": "opal"}
    return f"{part(header)}.{part(claims)}.c2ln"


def test_offers_and_the_backend_list_are_503_while_tokens_cannot_be_checked(start_service):
    # The key endpoint unreachable is our outage, not a bad token: as the functions and the
    # WebSocket do (503, close 1013), never a 401 telling the client its token is bad.
    jwks = f"http://127.0.0.1:{free_port()}/jwks"  # nothing listens there
    service = start_service(auth_mode="firebase", auth_jwks_url=jwks)
    offer = {"type": "offer", "sdp": "v=0"}

    status, answer = post_offer(f"{service.http}/v1/sessions/webrtc", unverifiable_token(), offer)

    assert (status, answer["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert counted_by_code(service, "voice_webrtc_offer_errors_total") == {
        "SERVICE_UNAVAILABLE": 1.0
    }
    listing = urllib.request.Request(f"{service.http}/v1/backends")  # noqa: S310
    listing.add_header("Authorization", f"Bearer {unverifiable_token()}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(listing, timeout=30)  # noqa: S310
    assert refused.value.code == 503
    assert json.loads(refused.value.read())["code"] == "SERVICE_UNAVAILABLE"
    assert refused.value.headers["Retry-After"] is not None
    assert counted_by_code(service, "voice_backends_list_errors_total") == {
        "SERVICE_UNAVAILABLE": 1.0
    }


LONG_REPLY = " ".join(
    f"This is sentence number {index} of a long answer that keeps the assistant talking."
    for index in range(1, 13)
)


def rms(chunks: list[tuple[float, bytes]], start: float, end: float) -> float:
    pcm = b"".join(data for at, data in chunks if start <= at < end)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def test_a_webrtc_barge_in_silences_the_track_and_a_peer_gone_leaves_its_session_resumable(
    start_service,
):
    from shared.sessions.agents import AgentContext, AgentIntegration
    from tests.sessions.support import Client

    service = start_service()

    async def talkative(context: AgentContext, text: str) -> str:
        return LONG_REPLY if "story" in text.lower() else "All right."

    service.container.services.agents.register(
        "talkative", lambda: AgentIntegration(callback=talkative)
    )
    offer_url = f"{service.http}/v1/sessions/webrtc"

    async def conversation() -> tuple[Peer, str, dict, dict]:
        peer = Peer(offer_url, service.token("pearl"))
        await peer.connect()
        peer.send({"type": "start", "config": {"agent": {"name": "talkative"}}})
        started = await peer.wait_for("session.started")
        peer.microphone.say(silence(0.3, rate=RATE) + speech("Tell me a long story.", rate=RATE))
        await peer.wait_for("audio.started", timeout=40)
        await asyncio.sleep(1.5)  # the reply plays for a while
        peer.microphone.say(speech("Stop, please stop.", rate=RATE))
        interruption = await peer.wait_for("interruption", timeout=20)
        answer = await peer.wait_for("audio.started", timeout=40, where=lambda e: e["turn"] == 2)
        await peer.close()  # gone without stop
        return peer, started["sessionId"], interruption, answer

    peer, session_id, interruption, answer = asyncio.run(conversation())
    assert interruption["flush"] is True
    ended = next(item for item in peer.events if item["type"] == "audio.ended")
    assert (ended["turn"], ended["interrupted"]) == (1, True)
    first = next(item for item in peer.events if item["type"] == "audio.started")
    # The long reply was heard, then the track fell silent until the answer to the barge-in
    # (what is in flight and the paced output's lead, at most 0.25 s, may still play: this
    # does not tell the track's own flush apart from that lead running out).
    assert rms(peer.chunks, first["_at"] + 0.3, interruption["_at"]) > 1000
    quiet = [data for at, data in peer.chunks if interruption["_at"] + 0.5 <= at < answer["_at"]]
    assert sum(map(len, quiet)) >= RATE * 2 * 0.2  # at least 0.2 s of the track to judge
    assert rms(peer.chunks, interruption["_at"] + 0.5, answer["_at"]) < 50

    # The peer went away: its session is resumable, here over a WebSocket.
    repository = service.container.services.repository
    deadline = time.monotonic() + 10
    while (stored := repository.get(session_id)) is None or len(stored.history) < 2:
        assert time.monotonic() < deadline, stored
        time.sleep(0.05)
    client = Client(service.url, service.token("pearl"))
    resumed = client.start(sessionId=session_id)
    assert resumed["resumed"] is True
    assert [line["role"] for line in resumed["history"]][:2] == ["user", "assistant"]
    client.close()


def test_an_unexpected_failure_over_webrtc_is_an_internal_error_and_close_1011(start_service):
    from tests.sessions.support import FlakyStore

    service = start_service(store_type=FlakyStore)
    store = service.container.store
    assert isinstance(store, FlakyStore)
    offer_url = f"{service.http}/v1/sessions/webrtc"

    async def failed_start() -> tuple[dict, dict, dict]:
        peer = Peer(offer_url, service.token("quinn"))
        await peer.connect()
        store.fail_once = "create"  # the new session's record cannot be stored
        peer.send({"type": "start"})
        error = await peer.wait_for("error")
        closed = await peer.wait_for("connection.closed")
        await peer.close()
        # The store is back: a retry starts a session.
        again = Peer(offer_url, service.token("quinn"))
        await again.connect()
        again.send({"type": "start"})
        started = await again.wait_for("session.started")
        await again.close()
        return error, closed, started

    error, closed, started = asyncio.run(failed_start())
    assert (error["code"], error["fatal"]) == ("INTERNAL_ERROR", True)
    assert closed["code"] == 1011
    assert started["resumed"] is False
