"""Agents (local rules, webhook, OpenAI chat streaming) and S2S (OpenAI Realtime), against
local fakes in the real wire formats; then sessions that use them end to end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from shared.errors import InvalidRequestError
from shared.sessions.agent_http import OpenAIChatAgent, WebhookAgent
from shared.sessions.agents import (
    AgentContext,
    AgentError,
    AgentIntegration,
    CallbackAgent,
    LocalRuleAgent,
)
from shared.sessions.model import ConversationLine, ConversationRole
from tests.sessions.fake_servers import FakeChatCompletions, FakeRealtime, FakeWebhook
from tests.sessions.support import Client, silence, speech

CONTEXT = AgentContext(
    session_id="s1",
    user_id="u1",
    history=(
        ConversationLine(role=ConversationRole.USER, text="Hi"),
        ConversationLine(role=ConversationRole.ASSISTANT, text="Hello!"),
    ),
    system_prompt="Be brief.",
    metadata={"device": "phone"},
)


async def collect(agent, text: str, *, close: bool = False) -> list[str]:
    try:
        return [piece async for piece in agent.respond(CONTEXT, text)]
    finally:
        if close:
            await agent.aclose()


def test_the_local_agent_answers_by_rule_and_streams_word_by_word():
    agent = LocalRuleAgent()
    noon = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    assert agent.answer("What time is it?", noon) == "It is 12:05 UTC."
    assert agent.answer("Tell me about boats.") == "You said: Tell me about boats. Tell me more."
    pieces = asyncio.run(collect(agent, "Thank you"))
    assert pieces == ["You ", "are ", "welcome."]
    assert asyncio.run(collect(agent, "  ")) == []


def test_an_integration_takes_exactly_one_of_agent_and_callback():
    async def echo(context: AgentContext, text: str) -> str:
        return f"{context.user_id}: {text}"

    with pytest.raises(InvalidRequestError):
        AgentIntegration()
    with pytest.raises(InvalidRequestError):
        AgentIntegration(agent=LocalRuleAgent(), callback=echo)
    agent = AgentIntegration(callback=echo).resolve()
    assert isinstance(agent, CallbackAgent)
    assert asyncio.run(collect(agent, "yo")) == ["u1: yo"]


def test_the_webhook_agent_posts_the_turn_signed_and_reads_the_answer():
    with FakeWebhook(lambda body: (200, {"text": f"Echo {body['text']}"})) as hook:
        agent = WebhookAgent(f"{hook.url}/agent", secret="shh")
        assert asyncio.run(collect(agent, "Hello", close=True)) == ["Echo Hello"]
    body = hook.requests[0]
    assert body["sessionId"] == "s1"
    assert body["text"] == "Hello"
    assert body["history"] == [
        {"role": "user", "text": "Hi"},
        {"role": "assistant", "text": "Hello!"},
    ]
    expected = hmac.new(b"shh", hook.raw[0], hashlib.sha256).hexdigest()
    assert hook.headers[0]["X-Voice-Signature"] == f"sha256={expected}"


@pytest.mark.parametrize(
    ("status", "payload", "category"),
    [
        (500, {}, "transient"),
        (429, {}, "rate_limited"),
        (401, {}, "auth"),
        (200, {"txt": 1}, "permanent"),
    ],
)
def test_webhook_failures_carry_a_category(status, payload, category):
    with FakeWebhook(lambda body: (status, payload)) as hook:
        agent = WebhookAgent(hook.url)
        with pytest.raises(AgentError) as failed:
            asyncio.run(collect(agent, "Hello", close=True))
    assert failed.value.category.value == category


def test_the_chat_agent_streams_server_sent_events():
    with FakeChatCompletions(["Hello", " there", "! How can", " I help?"]) as chat:
        agent = OpenAIChatAgent(base_url=chat.url, model="gpt-test", api_key="sk-test")
        pieces = asyncio.run(collect(agent, "Hi again", close=True))
    assert pieces == ["Hello", " there", "! How can", " I help?"]
    request = chat.requests[0]
    assert request["stream"] is True
    assert request["model"] == "gpt-test"
    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Hi again"},
    ]
    assert chat.headers[0]["Authorization"] == "Bearer sk-test"


def test_chat_errors_carry_a_category():
    with FakeChatCompletions([], status=429) as chat:
        agent = OpenAIChatAgent(base_url=chat.url, model="m")
        with pytest.raises(AgentError) as failed:
            asyncio.run(collect(agent, "Hi", close=True))
    assert failed.value.category.value == "rate_limited"


def test_speech_starts_while_the_chat_model_is_still_writing(start_service):
    pieces = ["The first sentence", " is ready now.", None, " The second comes later."]
    with FakeChatCompletions(pieces, pause=2.0) as chat:
        service = start_service(
            sessions_agents="local,openai", sessions_openai_chat_base_url=chat.url
        )
        client = Client(service.url, service.token("nina"))
        client.start({"agent": {"name": "openai", "systemPrompt": "Speak."}})
        client.stream(silence(0.3) + speech("Hello, how are you?") + silence(1.0))
        audio_started = client.wait_for("audio.started")
        done = client.wait_for("agent.done")
        client.wait_for("turn.metrics")
        client.close()
    assert done["text"] == "The first sentence is ready now. The second comes later."
    # The first sentence was heard well before the model finished writing.
    assert done["_at"] - audio_started["_at"] > 1.5
    assert chat.requests[0]["messages"][0] == {"role": "system", "content": "Speak."}


def test_an_agent_failure_is_reported_and_apologised_for(start_service):
    with FakeChatCompletions([], status=500) as chat:
        service = start_service(
            sessions_agents="openai",
            sessions_default_agent="openai",
            sessions_openai_chat_base_url=chat.url,
        )
        client = Client(service.url, service.token("olga"))
        client.start()
        client.stream(silence(0.3) + speech("Hello, how are you?") + silence(1.0))
        assert client.wait_for("error")["code"] == "AGENT_FAILED"
        assert "Sorry" in client.wait_for("agent.done")["text"]
        client.wait_for("audio.ended")
        client.close()


def test_a_realtime_speech_to_speech_session(start_service):
    with FakeRealtime(transcript="Hello, how are you?", reply="I am fine, thanks.") as realtime:
        service = start_service(
            sessions_s2s_providers="embedded,openai_realtime",
            sessions_openai_realtime_url=realtime.url,
            sessions_openai_realtime_api_key="sk-rt",
            sessions_openai_realtime_model="gpt-realtime-test",
        )
        client = Client(service.url, service.token("pat"))
        client.start(
            {
                "pipeline": {"type": "s2s", "s2sProvider": "openai_realtime"},
                "agent": {"systemPrompt": "Be kind."},
                "audio": {"outputSampleRate": 16000},
            }
        )
        client.stream(silence(0.3) + speech("Hello, how are you?") + silence(1.0))
        assert client.wait_for("transcript.final")["text"] == "Hello, how are you?"
        assert client.wait_for("agent.done")["text"].strip() == "I am fine, thanks."
        client.wait_for("turn.metrics")
        client.close()
        update = realtime.received[0]
    assert realtime.paths[0] == "/v1/realtime?model=gpt-realtime-test"
    assert realtime.headers[0]["authorization"] == "Bearer sk-rt"
    assert update["type"] == "session.update"
    assert update["session"]["instructions"] == "Be kind."
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert update["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    # 24 kHz audio went up; one second of 24 kHz reply came back at 16 kHz.
    assert realtime.audio_bytes > 24_000 * 2
    assert abs(len(client.received.audio) - 16_000 * 2) < 16_000 * 2 * 0.05
    states = [item["state"] for item in client.received.of("state")]
    assert states == ["listening", "processing", "speaking", "listening"]
