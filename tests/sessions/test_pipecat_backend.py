"""The pipecat backend runs the same end-to-end scenario as the native one."""

from __future__ import annotations

import asyncio

import loguru

from tests.sessions.support import Client, assert_heard_as_said, silence, speech, words


def test_a_pipecat_session_hears_answers_and_speaks(start_service, whisper):
    service = start_service()
    backends = {item["name"] for item in service.call(_describe(service))}
    assert {"native", "pipecat"} <= backends
    # The pipecat backend starts with the first session and then routes pipecat's loguru
    # output (its start replaces loguru's handlers); a sink added after that sees what the
    # next session's pipecat services log.
    first = Client(service.url, service.token("pia"))
    first.start({"backend": "pipecat"})
    first.close()
    pipecat_errors: list[str] = []
    sink = loguru.logger.add(lambda message: pipecat_errors.append(str(message)), level="ERROR")
    client = Client(service.url, service.token("pia"))
    started = client.start({"backend": "pipecat"})
    assert started["config"]["backend"] == "pipecat"
    client.stream(silence(0.3) + speech("What is the weather like today?") + silence(1.5))

    final = client.wait_for("transcript.final")
    assert words(final["text"]) == ["what", "is", "the", "weather", "like", "today"]
    done = client.wait_for("agent.done")
    assert "weather" in done["text"]
    client.wait_for("audio.ended")
    metrics = client.wait_for("turn.metrics")
    states = [item["state"] for item in client.received.of("state")]
    assert states == ["listening", "processing", "speaking", "listening"]
    reply = bytes(client.received.audio)
    assert len(reply) / 2 / 16_000 > 1.0
    heard = asyncio.run(whisper.transcribe(reply, 16_000, "en")).text
    # The reply is heard as the agent said it (Whisper tiny may mishear a word or a phrase).
    assert_heard_as_said(done["text"], heard)
    assert metrics["endOfSpeechToFirstAudioMs"] > 0
    client.send({"type": "stop"})
    client.wait_for("session.ended")
    session_tasks = service.tasks_named(f"session:{started['sessionId']}")
    assert session_tasks == []
    loguru.logger.remove(sink)
    assert pipecat_errors == []


async def _describe(service):
    return service.container.backends.describe()
