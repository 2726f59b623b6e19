"""The agent stage and the conversation it keeps.

When a final transcript arrives, the stage asks the agent for an answer with the
conversation so far, streams the answer on as ``AgentTextFrame`` pieces (or as one piece
when the integration's streaming mode is off) and records both lines in the
``Conversation`` that the session persists. An empty transcript gets no answer. When the
user barges in before a reply was heard, the unanswered user line is withdrawn: speech
recognition hears that turn again together with the next one. A reply cut off while
playing is kept as far as it was generated. An agent failure is reported as an error
event and the user hears a short apology, so the conversation can go on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.model import utcnow
from shared.sessions.agents import Agent, AgentContext, AgentError
from shared.sessions.frames import (
    AgentResponseEndedFrame,
    AgentResponseStartedFrame,
    AgentTextFrame,
    BotStartedSpeakingFrame,
    Frame,
    MetricsFrame,
    TranscriptionFrame,
    TurnCompleteFrame,
    TurnFinishedFrame,
)
from shared.sessions.model import ConversationLine, ConversationRole
from shared.sessions.processors import Direction, FrameProcessor

APOLOGY = "Sorry, I could not answer that."
MAX_HISTORY_LINES = 200


class Conversation:
    """A session's lines, oldest first (capped at ``MAX_HISTORY_LINES``)."""

    def __init__(self, lines: tuple[ConversationLine, ...] = ()) -> None:
        self._lines = list(lines)[-MAX_HISTORY_LINES:]

    @property
    def lines(self) -> tuple[ConversationLine, ...]:
        """Return every line so far."""
        return tuple(self._lines)

    def add(self, role: ConversationRole, text: str, at: datetime | None = None) -> None:
        """Append one line."""
        self._lines.append(ConversationLine(role=role, text=text, at=at or utcnow()))
        del self._lines[:-MAX_HISTORY_LINES]

    def withdraw_last_user_line(self) -> None:
        """Remove the last line if the user said it (it was never answered)."""
        if self._lines and self._lines[-1].role is ConversationRole.USER:
            self._lines.pop()


ContextFactory = Callable[[tuple[ConversationLine, ...]], AgentContext]


class AgentProcessor(FrameProcessor):
    """Turns final transcripts into streamed answers; see the module docstring."""

    def __init__(
        self,
        agent: Agent,
        conversation: Conversation,
        context_factory: ContextFactory,
        *,
        streaming: bool = True,
    ) -> None:
        super().__init__(name="agent")
        self._agent = agent
        self._conversation = conversation
        self._context_factory = context_factory
        self._streaming = streaming
        self._unanswered = False
        self._heard = False
        self._answer: list[str] = []
        self._answering = False

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if direction is Direction.UPSTREAM:
            if isinstance(frame, BotStartedSpeakingFrame):
                self._heard, self._unanswered = True, False
            elif isinstance(frame, TurnFinishedFrame):
                self._unanswered = False
            await self.push_frame(frame, direction)
        elif isinstance(frame, TranscriptionFrame) and frame.final:
            await self.push_frame(frame)
            await self._answer_turn(frame)
        else:
            await self.push_frame(frame, direction)

    async def _answer_turn(self, frame: TranscriptionFrame) -> None:
        text = frame.text.strip()
        turn = frame.turn
        if not text:
            await self.push_frame(TurnCompleteFrame(turn=turn))
            return
        if self._unanswered:
            self._conversation.withdraw_last_user_line()
        history = self._conversation.lines
        self._conversation.add(ConversationRole.USER, text)
        self._unanswered, self._heard = True, False
        self._answer, self._answering = [], True
        await self.push_frame(AgentResponseStartedFrame(turn=turn))
        started = self.context.clock()
        self.context.mark(turn, "agent_started", started)
        try:
            async for piece in self._agent.respond(self._context_factory(history), text):
                if not self._answer:
                    first = self.context.clock()
                    self.context.mark(turn, "agent_first_token", first)
                    await self.push_frame(
                        MetricsFrame(turn=turn, values={"agent_ttft_seconds": first - started})
                    )
                self._answer.append(piece)
                if self._streaming:
                    await self.push_frame(AgentTextFrame(text=piece, turn=turn))
        except AgentError as exc:
            await self.push_error(exc.code, exc.message)
            self._answer = [APOLOGY]
            if self._streaming:
                await self.push_frame(AgentTextFrame(text=APOLOGY, turn=turn))
        answer = "".join(self._answer).strip()
        if not self._streaming and answer:
            await self.push_frame(AgentTextFrame(text=answer, turn=turn))
        self._answering = False
        if answer:
            self._conversation.add(ConversationRole.ASSISTANT, answer)
        await self.push_frame(AgentResponseEndedFrame(turn=turn, text=answer))
        await self.push_frame(TurnCompleteFrame(turn=turn))

    async def on_interrupted(self) -> None:
        if self._answering:
            self._answering = False
            partial = "".join(self._answer).strip()
            if self._heard and partial:
                self._conversation.add(ConversationRole.ASSISTANT, partial)
        self._answer = []
