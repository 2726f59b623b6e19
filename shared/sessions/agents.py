"""Agents: what answers the user. The seed's callback interface and agent instances.

An ``Agent`` streams its answer to one user utterance as pieces of text (``respond``). An
application that only has a function — the seed's ``func(ctx, text) -> (text, error)`` —
passes it as an ``AgentCallback``; ``CallbackAgent`` makes it an agent. ``AgentIntegration``
holds exactly one of the two plus the seed's flags (streaming mode, interruption handling,
preemptive generation).

Built in: ``LocalRuleAgent`` (pattern rules, the embedded default, no network); the HTTP
webhook and OpenAI-compatible chat-completions agents live in ``shared.sessions.agent_http``.
An agent that fails raises ``AgentError`` with the providers' ``ErrorCategory``.
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from shared.errors import InvalidRequestError, ServiceUnavailableError
from shared.providers import ErrorCategory
from shared.sessions.model import ConversationLine


class AgentError(ServiceUnavailableError):
    """The agent failed to answer; ``category`` says whether trying again may help."""

    code: ClassVar[str] = "AGENT_FAILED"
    default_message: ClassVar[str] = "The agent failed to answer"

    def __init__(
        self, message: str | None = None, *, category: ErrorCategory = ErrorCategory.TRANSIENT
    ) -> None:
        super().__init__(message)
        self.category = category


@dataclass(frozen=True)
class AgentContext:
    """What an agent knows about the conversation when the user has spoken."""

    session_id: str
    user_id: str
    history: tuple[ConversationLine, ...] = ()
    language: str = "en-US"
    system_prompt: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


AgentCallback = Callable[[AgentContext, str], Awaitable[str]]
"""The seed's callback: given the context and the user's words, return the answer."""


class Agent(abc.ABC):
    """Answers a user's utterance, streaming the answer as text pieces."""

    name: ClassVar[str] = "agent"

    @abc.abstractmethod
    def respond(self, context: AgentContext, text: str) -> AsyncIterator[str]:
        """Yield the answer to ``text`` piece by piece (concatenated, the whole answer).

        Raises:
            AgentError: the agent could not answer.
        """

    async def aclose(self) -> None:  # noqa: B027 - agents without connections need not override
        """Release connections."""


class CallbackAgent(Agent):
    """An ``AgentCallback`` as an agent: the whole answer arrives as one piece."""

    name: ClassVar[str] = "callback"

    def __init__(self, callback: AgentCallback) -> None:
        self._callback = callback

    async def respond(self, context: AgentContext, text: str) -> AsyncIterator[str]:
        answer = await self._callback(context, text)
        if answer:
            yield answer


@dataclass(frozen=True)
class AgentIntegration:
    """The seed's agent integration: an agent instance or a callback, and its flags.

    Raises:
        InvalidRequestError: neither or both of ``agent`` and ``callback`` are set.
    """

    agent: Agent | None = None
    callback: AgentCallback | None = None
    streaming_mode: bool = True
    interruption_handling: bool = True
    preemptive_generation: bool = False

    def __post_init__(self) -> None:
        if (self.agent is None) == (self.callback is None):
            raise InvalidRequestError("Set exactly one of an agent instance and an agent callback")

    def resolve(self) -> Agent:
        """Return the agent that answers (the callback wrapped when that is what was set)."""
        if self.agent is not None:
            return self.agent
        assert self.callback is not None
        return CallbackAgent(self.callback)


@dataclass(frozen=True)
class Rule:
    """When ``pattern`` matches the user's words, answer with ``reply``.

    ``reply`` may use ``{text}`` (what the user said) and ``{time}`` (UTC, e.g. 14:05).
    """

    pattern: re.Pattern[str]
    reply: str

    @classmethod
    def of(cls, pattern: str, reply: str) -> Rule:
        """Return a case-insensitive rule."""
        return cls(re.compile(pattern, re.IGNORECASE), reply)


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule.of(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b", "Hello! How can I help you?"),
    Rule.of(r"\bwhat time\b|\bthe time\b", "It is {time} UTC."),
    Rule.of(r"\byour name\b|\bwho are you\b", "I am the voice platform's local assistant."),
    Rule.of(r"\bweather\b", "I cannot look up the weather offline. I hope it is pleasant."),
    Rule.of(r"\b(thanks|thank you)\b", "You are welcome."),
    Rule.of(r"\b(bye|goodbye)\b", "Goodbye! Talk to you soon."),
)
FALLBACK_REPLY = "You said: {text}. Tell me more."


class LocalRuleAgent(Agent):
    """The embedded agent: the first matching rule answers; otherwise it echoes the user.

    Answers stream word by word, so the rest of the pipeline sees the same shape as from a
    language model.
    """

    name: ClassVar[str] = "local"

    def __init__(
        self, rules: Sequence[Rule] = DEFAULT_RULES, *, fallback: str = FALLBACK_REPLY
    ) -> None:
        self._rules = tuple(rules)
        self._fallback = fallback

    def answer(self, text: str, now: datetime | None = None) -> str:
        """Return the whole answer to ``text``."""
        words = text.strip().rstrip(".!?")
        if not words:
            return ""
        moment = now or datetime.now(UTC)
        template = next(
            (rule.reply for rule in self._rules if rule.pattern.search(text)), self._fallback
        )
        return template.format(text=words, time=moment.strftime("%H:%M"))

    async def respond(self, context: AgentContext, text: str) -> AsyncIterator[str]:
        answer = self.answer(text)
        if not answer:
            return
        pieces = answer.split(" ")
        for index, piece in enumerate(pieces):
            yield piece if index == len(pieces) - 1 else piece + " "
