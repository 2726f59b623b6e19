"""End to end over a real WebSocket: eSpeak speech in, transcript and spoken reply out.

Each test starts the real service (uvicorn on a free loopback port, the embedded store,
Whisper, eSpeak) and talks to it as a client would. Barge-in, resume and the session
limit run on both backend providers (the issue: "the pipecat provider runs the same
scenario"); the pipecat one is installed by ``make``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed

from shared.log import CloudLoggingFormatter
from shared.sessions.agents import AgentContext, AgentIntegration
from shared.sessions.model import ConversationRole
from tests.sessions.support import (
    Client,
    FlakyStore,
    assert_heard_as_said,
    noise,
    silence,
    speech,
    words,
)

BACKENDS = pytest.mark.parametrize("backend", ["native", "pipecat"])


def eventually(read, accept, timeout: float = 10.0):
    """Return ``read()`` once ``accept`` holds for it (saves happen after the events)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value is not None and accept(value):
            return value
        assert time.monotonic() < deadline, f"never accepted: {value!r}"
        time.sleep(0.05)


def transcribe(whisper, pcm: bytes, rate: int) -> str:
    return asyncio.run(whisper.transcribe(pcm, rate, "en")).text


def test_speech_gets_its_transcript_and_a_spoken_reply(start_service, whisper):
    service = start_service()
    client = Client(service.url, service.token("alice"))
    started = client.start()
    assert started["resumed"] is False
    client.stream(silence(0.3) + speech("What is the weather like today?") + silence(1.0))

    final = client.wait_for("transcript.final")
    assert words(final["text"]) == ["what", "is", "the", "weather", "like", "today"]
    done = client.wait_for("agent.done")
    assert "weather" in done["text"]
    client.wait_for("audio.ended")
    metrics = client.wait_for("turn.metrics")

    states = [item["state"] for item in client.received.of("state")]
    assert states == ["listening", "processing", "speaking", "listening"]
    streamed = "".join(item["text"] for item in client.received.of("agent.text"))
    assert streamed.strip() == done["text"]
    reply = bytes(client.received.audio)
    assert len(reply) / 2 / 16_000 > 1.0
    # The reply audio says the agent's words.
    heard = transcribe(whisper, reply, 16_000)
    assert_heard_as_said(done["text"], heard)
    for figure in ("vadStopDelayMs", "sttMs", "agentTtftMs", "ttsTtfbMs"):
        assert metrics[figure] >= 0
    assert metrics["endOfSpeechToFirstAudioMs"] > metrics["sttMs"]
    client.close()


def test_a_client_at_8_khz_is_heard_and_answered_at_8_khz(start_service):
    service = start_service()
    client = Client(service.url, service.token("bob"))
    client.start({"audio": {"sampleRate": 8000}})
    client.stream(
        silence(0.3, rate=8000) + speech("Thank you very much.", rate=8000) + silence(1, rate=8000),
        rate=8000,
    )
    assert words(client.wait_for("transcript.final")["text"]) == ["thank", "you", "very", "much"]
    assert client.wait_for("audio.started")["sampleRate"] == 8000
    client.wait_for("audio.ended")
    seconds = len(client.received.audio) / 2 / 8000
    assert 0.5 < seconds < 5
    client.close()


LONG_REPLY = " ".join(
    f"This is sentence number {index} of a long answer that keeps the assistant talking."
    for index in range(1, 13)
)


@BACKENDS
def test_barge_in_stops_the_reply_and_flushes_playback(start_service, backend):
    service = start_service()

    async def talkative(context: AgentContext, text: str) -> str:
        return LONG_REPLY if "story" in text.lower() else f"You interrupted me to say {text}"

    service.container.services.agents.register(
        "talkative", lambda: AgentIntegration(callback=talkative)
    )
    client = Client(service.url, service.token("carol"))
    assert (
        client.start({"agent": {"name": "talkative"}, "backend": backend})["config"]["backend"]
        == backend
    )
    client.stream(silence(0.3) + speech("Tell me a long story.") + silence(1.0))
    client.wait_for("audio.started")
    time.sleep(1.0)  # let the reply play for a while

    barge_in = time.monotonic()
    client.stream(speech("Stop, please stop.") + silence(1.0), pace=1.0)
    interruption = client.wait_for("interruption", timeout=10)
    assert interruption["flush"] is True
    # Generous functional bound: VAD start plus the minimum speech duration plus delivery.
    assert interruption["_at"] - barge_in < 1.5
    ended = client.received.of("audio.ended")[0]  # sent just before the interruption
    assert ended["interrupted"] is True
    assert ended["turn"] == 1
    audio_at_interruption = sum(
        size for at, size in client.received.audio_chunks if at <= interruption["_at"]
    )
    # The barge-in is answered: its own transcript, then a new reply.
    final = client.wait_for("transcript.final", where=lambda item: item["turn"] == 2)
    assert "stop" in words(final["text"])
    next_reply = client.wait_for("audio.started", where=lambda item: item["turn"] == 2)
    late = sum(
        size
        for at, size in client.received.audio_chunks
        if interruption["_at"] < at < next_reply["_at"]
    )
    assert late == 0  # nothing of the cut-off reply arrives after the interruption
    full_reply_bytes = 16_000 * 2 * 20  # the long answer lasts well over 20 s
    assert audio_at_interruption < full_reply_bytes
    client.close()


@BACKENDS
def test_barge_in_cancels_the_agent_still_working_on_its_answer(start_service, backend):
    service = start_service()
    thinking, cancelled = threading.Event(), threading.Event()

    async def ponderous(context: AgentContext, text: str) -> str:
        if "stop" in words(text):
            return "All right."
        thinking.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "Finally, an answer."

    service.container.services.agents.register(
        "ponderous", lambda: AgentIntegration(callback=ponderous)
    )
    client = Client(service.url, service.token("paul"))
    client.start({"agent": {"name": "ponderous"}, "backend": backend})
    client.stream(silence(0.3) + speech("Hello.") + silence(1.0))
    assert thinking.wait(30), "the agent was never asked"
    client.stream(speech("Stop, please stop.") + silence(1.0), pace=1.0)
    assert client.wait_for("interruption", timeout=10)["flush"] is True
    assert cancelled.wait(10), "the agent's work went on after the barge-in"
    # The user's words of both turns are answered together, once.
    done = client.wait_for("agent.done")
    assert done["text"] == "All right."
    assert "Finally" not in " ".join(item["text"] for item in client.received.of("agent.text"))
    client.close()


@BACKENDS
def test_a_dropped_session_resumes_on_another_instance(start_service, tmp_path, backend):
    shared_data = tmp_path / "shared"
    first = start_service(data_dir=shared_data)
    client = Client(first.url, first.token("dave"))
    session_id = client.start({"backend": backend})["sessionId"]
    client.stream(silence(0.3) + speech("Hello, how are you?") + silence(1.0))
    client.wait_for("agent.done")
    client.wait_for("audio.ended")
    saved = first.container.services.repository
    eventually(lambda: saved.get(session_id), lambda found: len(found.history) == 2)
    client.close()  # dropped without stop: the session stays resumable

    second = start_service(data_dir=shared_data)  # another instance, the same store
    stranger = Client(second.url, second.token("eve"))
    stranger.send({"type": "start", "sessionId": session_id})
    assert stranger.wait_for("error")["code"] == "SESSION_NOT_FOUND"
    stranger.close()

    again = Client(second.url, second.token("dave"))
    resumed = again.start(sessionId=session_id)
    assert resumed["resumed"] is True
    assert resumed["config"]["backend"] == backend  # the stored config, backend included
    assert resumed["sessionId"] == session_id
    assert [line["role"] for line in resumed["history"]] == ["user", "assistant"]
    assert words(resumed["history"][0]["text"]) == ["hello", "how", "are", "you"]
    again.stream(silence(0.3) + speech("Goodbye.") + silence(1.0))
    again.wait_for("agent.done")
    again.wait_for("turn.metrics")
    repository = second.container.services.repository
    stored = eventually(lambda: repository.get(session_id), lambda found: len(found.history) == 4)
    assert [line.role for line in stored.history] == [
        ConversationRole.USER,
        ConversationRole.ASSISTANT,
    ] * 2
    again.send({"type": "stop"})
    again.wait_for("session.ended")
    deadline = time.monotonic() + 10
    while second.container.services.repository.get(session_id) is not None:
        assert time.monotonic() < deadline, "a completed session must be forgotten"
        time.sleep(0.05)
    after_stop = Client(second.url, second.token("dave"))
    after_stop.send({"type": "start", "sessionId": session_id})
    assert after_stop.wait_for("error")["code"] == "SESSION_NOT_FOUND"
    after_stop.close()


@BACKENDS
def test_the_session_limit_refuses_with_a_clear_close_code(start_service, backend):
    service = start_service(sessions_max_concurrent=1)
    first = Client(service.url, service.token("frank"))
    first.start({"backend": backend})
    second = Client(service.url, service.token("grace"))
    second.send({"type": "start", "config": {"backend": backend}})
    error = second.wait_for("error")
    assert error["code"] == "SESSION_LIMIT_REACHED"
    with pytest.raises(ConnectionClosed) as closed:
        second.wait_for("never", timeout=10)
    assert getattr(closed.value, "rcvd", None) is not None
    assert closed.value.rcvd.code == 1013
    # The first session is unaffected, and its slot frees when it stops.
    first.send({"type": "ping", "id": "p1"})
    assert first.wait_for("pong")["id"] == "p1"
    first.send({"type": "stop"})
    first.wait_for("session.ended")
    third = Client(service.url, service.token("grace"))
    deadline = time.monotonic() + 5
    while service.app.state.service.backends[backend].active_session_count:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert third.start({"backend": backend})["resumed"] is False
    third.close()


def test_a_user_at_the_per_user_limit_is_refused_while_others_still_start(start_service):
    # One user could fill the instance's every slot; now one user runs at most
    # VOICE_SESSIONS_MAX_PER_USER sessions at once, and a resume of her own is not another.
    service = start_service(sessions_max_concurrent=5, sessions_max_per_user=1)
    first = Client(service.url, service.token("hana"))
    session_id = first.start()["sessionId"]
    second = Client(service.url, service.token("hana"))
    second.send({"type": "start"})
    error = second.wait_for("error")
    assert (error["code"], error["fatal"]) == ("USER_SESSION_LIMIT_REACHED", True)
    assert "1 session " in error["message"]
    with pytest.raises(ConnectionClosed) as closed:
        second.wait_for("never", timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    other = Client(service.url, service.token("ivan"))
    assert other.start()["resumed"] is False
    again = Client(service.url, service.token("hana"))
    assert again.start(sessionId=session_id)["resumed"] is True
    with pytest.raises(ConnectionClosed) as closed:
        first.wait_for("never", timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4010
    again.send({"type": "stop"})
    again.wait_for("session.ended")
    backend = service.app.state.service.backend
    deadline = time.monotonic() + 5
    while backend.active_session_count > 1:  # ivan's alone
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fresh = Client(service.url, service.token("hana"))
    assert fresh.start()["resumed"] is False
    metrics = service.container.services.metrics.exposition().decode()
    assert 'voice_session_errors_total{code="USER_SESSION_LIMIT_REACHED"} 1.0' in metrics
    assert 'voice_sessions_refused_total{reason="user_limit"} 1.0' in metrics
    for client in (fresh, other):
        client.close()


def test_the_limits_count_the_instances_sessions_on_both_backends(start_service):
    # Each backend counted only its own sessions: an instance running native and pipecat
    # let in twice VOICE_SESSIONS_MAX_CONCURRENT, and twice one user's limit.
    service = start_service(sessions_max_concurrent=2, sessions_max_per_user=1)

    def refused(user: str, backend: str) -> str:
        client = Client(service.url, service.token(user))
        client.send({"type": "start", "config": {"backend": backend}})
        code = client.wait_for("error")["code"]
        with pytest.raises(ConnectionClosed) as closed:
            client.wait_for("never", timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        return code

    kim = Client(service.url, service.token("kim"))
    session_id = kim.start({"backend": "native"})["sessionId"]
    assert refused("kim", "pipecat") == "USER_SESSION_LIMIT_REACHED"
    leo = Client(service.url, service.token("leo"))
    assert leo.start({"backend": "pipecat"})["resumed"] is False
    assert refused("max", "native") == "SESSION_LIMIT_REACHED"
    assert refused("max", "pipecat") == "SESSION_LIMIT_REACHED"
    # Her session moved to pipecat keeps its one slot: the full instance lets it in.
    moved = Client(service.url, service.token("kim"))
    started = moved.start({"backend": "pipecat"}, sessionId=session_id)
    assert (started["resumed"], started["config"]["backend"]) == (True, "pipecat")
    with pytest.raises(ConnectionClosed) as closed:
        kim.wait_for("never", timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4010
    assert refused("max", "native") == "SESSION_LIMIT_REACHED"
    metrics = service.container.services.metrics.exposition().decode()
    assert 'voice_sessions_refused_total{reason="limit"} 3.0' in metrics
    assert 'voice_sessions_refused_total{reason="user_limit"} 1.0' in metrics
    for client in (moved, leo):
        client.close()


@BACKENDS
def test_disconnect_leaves_no_session_task_running(start_service, backend):
    service = start_service()
    client = Client(service.url, service.token("heidi"))
    client.start({"backend": backend})
    client.stream(silence(0.3) + speech("Hello.") + silence(0.8))
    client.wait_for("audio.started")
    assert service.tasks_named("session:")  # the pipeline is running
    client.close()  # mid-reply
    deadline = time.monotonic() + 10
    backends = service.app.state.service.backends
    while service.tasks_named("session:") or backends[backend].active_session_count:
        assert time.monotonic() < deadline, service.tasks_named("session:")
        time.sleep(0.05)


@BACKENDS
def test_an_idle_session_is_closed_and_forgotten(start_service, backend):
    service = start_service(sessions_idle_timeout_seconds=1.0)
    client = Client(service.url, service.token("ivan"))
    session_id = client.start({"backend": backend})["sessionId"]
    client.stream(silence(2.0))  # silence is not activity
    ended = client.wait_for("session.ended", timeout=10)
    assert ended["reason"] == "idle timeout"
    with pytest.raises(ConnectionClosed) as closed:
        client.wait_for("never", timeout=10)
    assert closed.value.rcvd.code == 4008
    assert service.container.services.repository.get(session_id) is None
    assert service.tasks_named("session:") == []


def http_get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Loopback http URLs built by the test only.
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


TURN_FIGURES = ("vadStopDelay", "stt", "agentTtft", "ttsTtfb", "endOfSpeechToFirstAudio")


def test_health_readiness_metrics_and_backends(start_service, caplog):
    caplog.set_level(logging.INFO, logger="shared.sessions.session")
    service = start_service()
    assert http_get(f"{service.http}/healthz") == (200, '{"status":"ok"}')
    status, body = http_get(f"{service.http}/readyz")
    assert status == 200
    assert '"status":"healthy"' in body
    client = Client(service.url, service.token("judy"))
    client.start()
    client.stream(silence(0.3) + speech("Hello.") + silence(1.0))
    client.wait_for("turn.metrics")
    client.close()
    _, text = http_get(f"{service.http}/metrics")
    # Every per-turn figure the issue names is a histogram with this turn in it...
    for figure in TURN_FIGURES:
        snake = re.sub(r"([A-Z])", r"_\1", figure).lower()
        assert f"voice_session_{snake}_seconds_count 1.0" in text, snake
    # ... and one JSON log line with all of them.
    (record,) = [r for r in caplog.records if r.getMessage() == "Turn metrics"]
    line = json.loads(CloudLoggingFormatter().format(record))
    assert line["turn"] == 1
    for figure in TURN_FIGURES:
        assert line[f"{figure}Ms"] >= 0, figure
    assert 'voice_session_turns_total{outcome="completed"} 1.0' in text
    assert http_get(f"{service.http}/v1/backends")[0] == 401
    status, body = http_get(f"{service.http}/v1/backends", service.token("judy"))
    assert status == 200
    assert '"name":"native"' in body
    assert '"s2sSupport":true' in body


def test_an_embedded_speech_to_speech_session(start_service):
    service = start_service()
    client = Client(service.url, service.token("kim"))
    client.start({"pipeline": {"type": "s2s", "s2sProvider": "embedded"}})
    client.stream(silence(0.3) + speech("What is your name?") + silence(1.0))
    assert words(client.wait_for("transcript.final")["text"]) == ["what", "is", "your", "name"]
    assert "assistant" in client.wait_for("agent.done")["text"]
    client.wait_for("turn.metrics")
    assert len(client.received.audio) > 16_000
    states = [item["state"] for item in client.received.of("state")]
    assert states == ["listening", "processing", "speaking", "listening"]
    client.close()


def test_preemptive_recognition_keeps_whole_turns_across_pauses(start_service):
    service = start_service()
    client = Client(service.url, service.token("lena"))
    client.start({"agent": {"preemptiveGeneration": True}, "turn": {"silenceTimeoutSeconds": 0.7}})
    # eSpeak ends a sentence with 0.3 s of silence: longer than the VAD's stop, shorter
    # than the silence timeout. The early decode of "Good morning" is dropped when the user
    # goes on, and the turn is one.
    client.stream(silence(0.3) + speech("Good morning.") + speech("Thank you.") + silence(1.2))
    first = client.wait_for("transcript.final")
    assert first["turn"] == 1
    assert words(first["text"]) == ["good", "morning", "thank", "you"]
    assert client.received.of("interruption") == []
    client.wait_for("turn.metrics")
    # A turn without a pause is answered from the early decode.
    client.stream(speech("What is your name?") + silence(1.2))
    second = client.wait_for("transcript.final", where=lambda item: item["turn"] == 2)
    assert words(second["text"]) == ["what", "is", "your", "name"]
    client.close()


def test_speaking_on_before_the_reply_is_heard_makes_one_request(start_service):
    service = start_service()
    client = Client(service.url, service.token("mona"))
    session_id = client.start()["sessionId"]
    # The pause ends turn 1 (0.7 s > the 0.5 s timeout), but the user goes on before any
    # reply is heard: the reply is cancelled and both parts are recognised as one request.
    client.stream(
        silence(0.3) + speech("Good morning.") + silence(0.4) + speech("Thank you.") + silence(1.0)
    )
    final = client.wait_for("transcript.final")
    assert final["turn"] == 2
    assert words(final["text"]) == ["good", "morning", "thank", "you"]
    assert client.received.of("interruption")
    client.wait_for("turn.metrics", where=lambda item: item["turn"] == 2)
    stored = eventually(
        lambda: service.container.services.repository.get(session_id),
        lambda found: len(found.history) == 2,
    )
    assert [line.role for line in stored.history] == [
        ConversationRole.USER,
        ConversationRole.ASSISTANT,
    ]
    client.close()


def test_resuming_elsewhere_takes_the_session_from_the_old_connection(start_service, tmp_path):
    shared_data = tmp_path / "shared"
    first = start_service(data_dir=shared_data)
    second = start_service(data_dir=shared_data)
    old = Client(first.url, first.token("nora"))
    session_id = old.start()["sessionId"]
    new = Client(second.url, second.token("nora"))
    assert new.start(sessionId=session_id)["resumed"] is True
    # The old instance learns at its next write that the session has moved.
    old.send({"type": "update_metadata", "metadata": {"from": "old"}})
    with pytest.raises(ConnectionClosed) as closed:
        old.wait_for("never", timeout=10)
    assert closed.value.rcvd.code == 4010
    new.send({"type": "update_metadata", "metadata": {"from": "new"}})
    assert new.wait_for("metadata.updated")["metadata"] == {"from": "new"}
    stored = eventually(
        lambda: second.container.services.repository.get(session_id),
        lambda found: found.metadata == {"from": "new"},
    )
    assert stored.user_id == "nora"
    new.close()


def test_a_resume_on_the_same_instance_keeps_what_the_old_connection_had_not_saved(
    start_service,
):
    service = start_service()
    repository = service.container.services.repository
    old = Client(service.url, service.token("opal"))
    session_id = old.start()["sessionId"]
    saved, first_save_held, release = repository.save, threading.Event(), threading.Event()

    def save(record):
        if not first_save_held.is_set():  # the old connection's save is slow: still unwritten
            first_save_held.set()
            release.wait(30)
        saved(record)

    repository.save = save
    try:
        old.send({"type": "update_metadata", "metadata": {"step": "unsaved"}})
        assert old.wait_for("metadata.updated")["metadata"] == {"step": "unsaved"}
        assert first_save_held.wait(10)
        new = Client(service.url, service.token("opal"))  # the same user, the same instance
        assert new.start(sessionId=session_id)["resumed"] is True
        # The old session saved its last state before the claim: nothing it held is lost.
        assert repository.get(session_id).metadata == {"step": "unsaved"}
    finally:
        release.set()
    new.close()


def race_resumes(service, user: str, session_id: str, configs: list[dict | None]) -> list[Client]:
    """Return one new connection per entry of ``configs``, each having sent, at once, a
    resume of ``session_id`` as ``user`` (with that config, or none)."""
    racers = [Client(service.url, service.token(user)) for _ in configs]
    ready = threading.Barrier(len(racers))

    def resume(client: Client, config: dict | None) -> None:
        message = {"type": "start", "sessionId": session_id}
        ready.wait()
        client.send(message if config is None else {**message, "config": config})

    threads = [
        threading.Thread(target=resume, args=(client, config))
        for client, config in zip(racers, configs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return racers


def closes_and_holders(clients: list[Client], timeout: float) -> tuple[list[int], list[Client]]:
    """Return the close codes of the ``clients`` closed within ``timeout`` seconds, and
    those still open then."""
    closes: list[int] = []
    holders: list[Client] = []
    for client in clients:
        try:
            client.wait_for("never", timeout=timeout)
        except ConnectionClosed as closed:
            closes.append(closed.rcvd.code if closed.rcvd else 1006)
        except (AssertionError, TimeoutError):  # still open
            holders.append(client)
    return closes, holders


def test_connections_resuming_one_session_at_once_leave_it_to_exactly_one(start_service, caplog):
    # A client's retries racing each other: each resume takes the session from the one
    # before, and the last holds it. Before, a resume landing while another was starting
    # failed with an unhandled error and dropped the winner from the backend's sessions,
    # leaving two connections that each believed they held the session.
    service = start_service()
    first = Client(service.url, service.token("rita"))
    session_id = first.start()["sessionId"]
    first.close()
    with caplog.at_level(logging.ERROR):
        racers = race_resumes(service, "rita", session_id, [None] * 4)
        closes, holders = closes_and_holders(racers, timeout=3)
    assert closes == [4010] * (len(racers) - 1)
    assert len(holders) == 1
    assert holders[0].received.of("session.started")[-1]["sessionId"] == session_id
    live = service.app.state.service.live_sessions()
    assert [(session.id, session.closed) for session in live] == [(session_id, False)]
    assert not [record for record in caplog.records if "Exception in ASGI" in record.getMessage()]
    holders[0].send({"type": "update_metadata", "metadata": {"held": True}})
    assert holders[0].wait_for("metadata.updated")["metadata"] == {"held": True}
    holders[0].close()


@pytest.mark.parametrize(("running", "named"), [("native", "pipecat"), ("pipecat", "native")])
def test_a_resume_naming_another_backend_takes_the_session_over_and_runs_it_there(
    start_service, running, named
):
    # Each backend saw only its own live sessions: a resume whose config named another
    # backend claimed the session there while the old pipeline went on running here.
    service = start_service()
    old = Client(service.url, service.token("vera"))
    session_id = old.start({"backend": running, "metadata": {"step": 1}})["sessionId"]
    old.stream(silence(0.3) + speech("Hello, how are you?") + silence(1.0))
    assert old.wait_for("turn.metrics")["turn"] == 1

    new = Client(service.url, service.token("vera"))
    started = new.start({"backend": named}, sessionId=session_id)
    assert (started["resumed"], started["config"]["backend"]) == (True, named)
    assert [line["role"] for line in started["history"]] == ["user", "assistant"]
    with pytest.raises(ConnectionClosed) as closed:
        old.wait_for("never", timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4010
    sessions = service.app.state.service
    assert [(session.id, session.closed) for session in sessions.live_sessions()] == [
        (session_id, False)
    ]
    assert sessions.backends[named].get_session(session_id) is not None
    assert sessions.backends[running].active_session_count == 0
    stored = service.container.services.repository.get(session_id)
    assert stored.backend_id == sessions.backends[named].id
    assert stored.metadata == {"step": 1}

    # The session goes on where the config named, and a resume without one stays there.
    new.stream(silence(0.3) + speech("Thank you very much.") + silence(1.0))
    assert new.wait_for("transcript.final")["turn"] == 2
    assert new.wait_for("turn.metrics")["turn"] == 2
    new.close()
    eventually(lambda: len(sessions.live_sessions()), lambda count: count == 0)
    last = Client(service.url, service.token("vera"))
    assert last.start(sessionId=session_id)["config"]["backend"] == named
    assert sessions.backends[named].get_session(session_id) is not None
    last.close()


def test_resumes_racing_on_both_backends_leave_the_session_to_exactly_one(start_service):
    service = start_service()
    first = Client(service.url, service.token("wilma"))
    session_id = first.start()["sessionId"]
    backends = [{"backend": ("native", "pipecat")[index % 2]} for index in range(4)]
    racers = race_resumes(service, "wilma", session_id, backends)
    closes, holders = closes_and_holders([first, *racers], timeout=5)
    assert closes == [4010] * len(racers)
    assert len(holders) == 1
    assert not [client for client in racers if client.received.of("error")]
    live = service.app.state.service.live_sessions()
    assert [(session.id, session.closed) for session in live] == [(session_id, False)]
    holders[0].send({"type": "update_metadata", "metadata": {"held": True}})
    assert holders[0].wait_for("metadata.updated")["metadata"] == {"held": True}
    holders[0].close()


def test_a_config_given_on_resume_is_the_one_the_next_resume_gets(start_service):
    service = start_service()
    first = Client(service.url, service.token("otto"))
    session_id = first.start({"audio": {"sampleRate": 16000}})["sessionId"]
    first.close()  # dropped: resumable
    changed = {"audio": {"sampleRate": 8000}, "agent": {"systemPrompt": "Be brief."}}
    second = Client(service.url, service.token("otto"))
    assert second.start(changed, sessionId=session_id)["config"]["audio"]["sampleRate"] == 8000
    second.close()  # dropped again, now sending 8 kHz audio

    third = Client(service.url, service.token("otto"))
    resumed = third.start(sessionId=session_id)
    assert resumed["config"]["audio"]["sampleRate"] == 8000
    assert resumed["config"]["agent"]["systemPrompt"] == "Be brief."
    third.close()


def test_with_streaming_mode_off_the_answer_comes_in_one_piece(start_service):
    service = start_service()
    client = Client(service.url, service.token("olga"))
    client.start({"agent": {"streamingMode": False}})
    client.stream(silence(0.3) + speech("Thank you very much.") + silence(1.0))
    done = client.wait_for("agent.done")
    client.wait_for("turn.metrics")
    assert client.received.of("audio.started")
    # The local agent streams word by word (test_agents_and_s2s); with the flag off the
    # client gets the whole answer as one agent.text, and still hears it.
    assert len(done["text"].split()) > 1
    assert [item["text"] for item in client.received.of("agent.text")] == [done["text"]]
    client.close()


@pytest.mark.parametrize(("vad_provider", "hears_noise"), [("silero", False), ("webrtc", True)])
def test_the_configured_vad_provider_is_the_one_listening(start_service, vad_provider, hears_noise):
    service = start_service()
    client = Client(service.url, service.token("quinn"))
    client.start({"pipeline": {"vadProvider": vad_provider}})
    # Steady white noise: WebRTC's VAD takes it for speech, Silero does not
    # (test_pipeline::test_detectors_tell_espeak_speech_from_silence_and_noise).
    client.stream(noise(2.0, level=2000) + silence(0.6) + speech("Hello.") + silence(1.0))
    # Both hear the word; once they have, the noise before it has been judged.
    client.wait_for("vad.speech_started", where=lambda item: item["streamSeconds"] >= 2.5)
    during_noise = [
        item for item in client.received.of("vad.speech_started") if item["streamSeconds"] < 2.0
    ]
    assert bool(during_noise) is hears_noise
    client.close()


@pytest.mark.parametrize(("vad", "segments"), [({}, 2), ({"stopSeconds": 1.2}, 1)])
def test_the_vad_thresholds_of_the_session_config_decide_the_speech_it_hears(
    start_service, vad, segments
):
    """A live session's ``vad`` config is the one its detector runs with.

    The 0.6 s pause (plus eSpeak's own 0.3 s after a sentence) ends speech at the default
    stopSeconds (0.15 s) and starts it again; with stopSeconds 1.2 the pause is inside
    the speech, which ends once the user has been quiet that long.
    """
    service = start_service()
    client = Client(service.url, service.token("rosa"))
    client.start({"vad": vad})
    client.stream(
        silence(0.3) + speech("Good morning.") + silence(0.6) + speech("Thank you.") + silence(2.0)
    )
    thanks = speech("Thank you.")
    thanks_start = 0.3 + len(speech("Good morning.")) / 2 / 16_000 + 0.6
    thanks_end = thanks_start + len(thanks) / 2 / 16_000  # eSpeak's trailing quiet included
    last_stop = client.wait_for(
        "vad.speech_stopped", where=lambda item: item["streamSeconds"] > thanks_start
    )
    assert len(client.received.of("vad.speech_started")) == segments
    assert len(client.received.of("vad.speech_stopped")) == segments
    # On the stream's clock: the speech ends stopSeconds of quiet after the last word
    # (eSpeak ends it with about 0.3 s of its own quiet), not before, nor much after.
    quiet = vad.get("stopSeconds", 0.15)
    assert thanks_end - 0.4 + quiet <= last_stop["streamSeconds"] <= thanks_end + quiet + 0.1
    client.close()


def test_a_save_the_store_refuses_is_logged_and_the_next_one_writes_it_all(start_service, caplog):
    service = start_service()
    repository = service.container.services.repository
    client = Client(service.url, service.token("stella"))
    session_id = client.start({"metadata": {"step": 0}})["sessionId"]
    saved = repository.save
    down = threading.Event()

    def save(record):
        if down.is_set():
            raise ConnectionError("the store is unreachable")
        saved(record)

    repository.save = save
    down.set()
    with caplog.at_level(logging.ERROR, logger="shared.sessions.session"):
        client.send({"type": "update_metadata", "metadata": {"step": 1}})
        assert client.wait_for("metadata.updated")["metadata"] == {"step": 1}
        logged = eventually(
            lambda: [r for r in caplog.records if r.getMessage() == "Could not save the session"],
            bool,
        )
    assert logged[0].fields == {"sessionId": session_id}
    down.clear()
    client.send({"type": "ping", "id": "still-there"})
    assert client.wait_for("pong")["id"] == "still-there"
    client.send({"type": "update_metadata", "metadata": {"more": True}})
    stored = eventually(
        lambda: repository.get(session_id),
        lambda found: found is not None and found.metadata == {"step": 1, "more": True},
    )
    assert stored.user_id == "stella"
    client.close()


def test_an_unexpected_failure_ends_with_internal_error_and_close_1011_leaving_it_resumable(
    start_service, caplog
):
    caplog.set_level(logging.ERROR, logger="session.endpoint")
    service = start_service(store_type=FlakyStore)
    store = service.container.store
    assert isinstance(store, FlakyStore)
    # A new session whose record the store fails to create: no session, but a clear end.
    store.fail_once = "create"
    refused = Client(service.url, service.token("ursula"))
    refused.send({"type": "start"})
    error = refused.wait_for("error")
    assert (error["code"], error["fatal"]) == ("INTERNAL_ERROR", True)
    with pytest.raises(ConnectionClosed) as closed:
        refused.wait_for("never", timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011

    first = Client(service.url, service.token("ursula"))
    session_id = first.start({"metadata": {"step": 1}})["sessionId"]
    first.close()
    backend = service.app.state.service.backends["native"]
    eventually(lambda: backend.active_session_count, lambda count: count == 0)
    # A resume whose claim the store fails: the session stays as it was, resumable.
    store.fail_once = "run_transaction"
    failed = Client(service.url, service.token("ursula"))
    failed.send({"type": "start", "sessionId": session_id})
    error = failed.wait_for("error")
    with pytest.raises(ConnectionClosed) as closed:
        failed.wait_for("never", timeout=10)
    assert (error["code"], error["fatal"]) == ("INTERNAL_ERROR", True)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
    logged = [r for r in caplog.records if r.getMessage() == "A session failed unexpectedly"]
    # The first failure had no session to name yet.
    assert [record.fields for record in logged] == [{"sessionId": None}, {"sessionId": session_id}]
    assert all(record.exc_info for record in logged)
    again = Client(service.url, service.token("ursula"))
    resumed = again.start(sessionId=session_id)
    assert resumed["resumed"] is True
    assert again.wait_for("state")["state"] == "listening"
    assert service.container.services.repository.get(session_id).metadata == {"step": 1}
    again.close()


@BACKENDS
def test_turn_numbers_go_on_after_a_resume(start_service, backend):
    service = start_service()
    client = Client(service.url, service.token("wanda"))
    session_id = client.start({"backend": backend})["sessionId"]
    live = service.app.state.service.backends[backend]
    client.stream(silence(0.3) + speech("Hello, how are you?") + silence(1.0))
    assert client.wait_for("turn.started")["turn"] == 1
    assert client.wait_for("turn.metrics")["turn"] == 1
    client.close()
    eventually(lambda: live.active_session_count, lambda count: count == 0)

    again = Client(service.url, service.token("wanda"))
    assert again.start(sessionId=session_id)["resumed"] is True
    again.stream(silence(0.3) + speech("Thank you very much.") + silence(1.0))
    assert again.wait_for("turn.started")["turn"] == 2
    assert again.wait_for("transcript.final")["turn"] == 2
    assert again.wait_for("turn.metrics")["turn"] == 2
    # Gone in the middle of a turn: that turn's number was given out too.
    again.stream(silence(0.3) + speech("What is the weather like today?"))
    assert again.wait_for("turn.started")["turn"] == 3
    again.close()
    eventually(lambda: live.active_session_count, lambda count: count == 0)

    last = Client(service.url, service.token("wanda"))
    assert last.start(sessionId=session_id)["resumed"] is True
    last.stream(silence(0.3) + speech("Thank you very much.") + silence(1.0))
    assert last.wait_for("turn.started")["turn"] == 4
    assert last.wait_for("turn.metrics")["turn"] == 4
    last.close()


@BACKENDS
def test_at_the_session_limit_a_resume_takes_over_the_users_own_live_session(
    start_service, backend
):
    # A phone's old connection not yet noticed dead holds the instance's only slot.
    service = start_service(sessions_max_concurrent=1)
    old = Client(service.url, service.token("xena"))
    session_id = old.start({"backend": backend})["sessionId"]
    new = Client(service.url, service.token("xena"))
    assert new.start(sessionId=session_id)["resumed"] is True
    with pytest.raises(ConnectionClosed) as closed:
        old.wait_for("never", timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4010

    # Retries racing each other take it in turn, none refused for the limit.
    racers = race_resumes(service, "xena", session_id, [None] * 3)
    closes, holders = closes_and_holders([new, *racers], timeout=3)
    assert closes == [4010] * len(racers)
    assert len(holders) == 1
    assert not [client for client in racers if client.received.of("error")]

    # Everyone else still meets the limit.
    stranger = Client(service.url, service.token("yves"))
    stranger.send({"type": "start", "config": {"backend": backend}})
    assert stranger.wait_for("error")["code"] == "SESSION_LIMIT_REACHED"
    fresh = Client(service.url, service.token("xena"))  # a new session of the same user too
    fresh.send({"type": "start", "config": {"backend": backend}})
    assert fresh.wait_for("error")["code"] == "SESSION_LIMIT_REACHED"
    holders[0].send({"type": "ping", "id": "still-held"})
    assert holders[0].wait_for("pong")["id"] == "still-held"
    holders[0].close()
