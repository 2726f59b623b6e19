"""Agents reached over HTTP: a webhook, and any OpenAI-compatible chat-completions server.

``WebhookAgent`` POSTs the utterance with the conversation so far as JSON
(``{"sessionId", "userId", "text", "history": [{"role", "text"}], "language",
"metadata"}``) and reads ``{"text": ...}`` back; with a secret, the body is signed in
``X-Voice-Signature: sha256=<hex HMAC>`` so the receiver can trust it came from us.

``OpenAIChatAgent`` calls ``POST {base}/v1/chat/completions`` with ``stream: true`` and
reads the server-sent events as they come (``data: {"choices": [{"delta": {"content"}}]}``
lines, ending with ``data: [DONE]``), so speech can start before the model has finished.

HTTP failures become ``AgentError``: 401/403 are ``auth``, 429 ``rate_limited``, 5xx and
network errors ``transient``, other 4xx ``permanent``. No message carries a key or a body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx2

from shared.providers import ErrorCategory
from shared.sessions.agents import Agent, AgentContext, AgentError


def _category(status: int) -> ErrorCategory:
    if status in (401, 403):
        return ErrorCategory.AUTH
    if status == 429:
        return ErrorCategory.RATE_LIMITED
    if status >= 500:
        return ErrorCategory.TRANSIENT
    return ErrorCategory.PERMANENT


def _history(context: AgentContext) -> list[dict[str, str]]:
    return [{"role": line.role.value, "text": line.text} for line in context.history]


class WebhookAgent(Agent):
    """Asks an HTTP endpoint for each answer (one JSON request, one JSON reply)."""

    name: ClassVar[str] = "webhook"

    def __init__(self, url: str, *, secret: str | None = None, timeout: float = 30.0) -> None:
        self._url = url
        self._secret = secret.encode() if secret else None
        self._client = httpx2.AsyncClient(timeout=timeout)

    async def respond(self, context: AgentContext, text: str) -> AsyncIterator[str]:
        body = json.dumps(
            {
                "sessionId": context.session_id,
                "userId": context.user_id,
                "text": text,
                "history": _history(context),
                "language": context.language,
                "metadata": context.metadata,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            signature = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Voice-Signature"] = f"sha256={signature}"
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx2.HTTPError as exc:
            raise AgentError(f"The agent webhook is unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise AgentError(
                f"The agent webhook answered HTTP {response.status_code}",
                category=_category(response.status_code),
            )
        try:
            answer = response.json()["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AgentError(
                'The agent webhook\'s reply is not {"text": ...}', category=ErrorCategory.PERMANENT
            ) from exc
        if not isinstance(answer, str):
            raise AgentError("The agent webhook's text is not a string")
        if answer:
            yield answer

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAIChatAgent(Agent):
    """Streams answers from an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    name: ClassVar[str] = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        default_system_prompt: str = (
            "You are a helpful voice assistant. Answer briefly, in plain spoken sentences."
        ),
    ) -> None:
        self._url = base_url.rstrip("/") + "/v1/chat/completions"
        self._model = model
        self._api_key = api_key
        self._default_system_prompt = default_system_prompt
        self._client = httpx2.AsyncClient(timeout=timeout)

    def messages(self, context: AgentContext, text: str) -> list[dict[str, str]]:
        """Return the chat messages for ``text``: system prompt, history, then the user."""
        messages = [
            {"role": "system", "content": context.system_prompt or self._default_system_prompt}
        ]
        messages += [{"role": line.role.value, "content": line.text} for line in context.history]
        messages.append({"role": "user", "content": text})
        return messages

    async def respond(self, context: AgentContext, text: str) -> AsyncIterator[str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        body = {"model": self._model, "messages": self.messages(context, text), "stream": True}
        try:
            async with self._client.stream("POST", self._url, json=body, headers=headers) as reply:
                if reply.status_code >= 400:
                    raise AgentError(
                        f"The chat model answered HTTP {reply.status_code}",
                        category=_category(reply.status_code),
                    )
                async for line in reply.aiter_lines():
                    piece = _delta(line)
                    if piece is _DONE:
                        return
                    if piece:
                        assert isinstance(piece, str)
                        yield piece
        except httpx2.HTTPError as exc:
            raise AgentError(f"The chat model is unreachable ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


_DONE = object()


def _delta(line: str) -> str | object | None:
    """Return the content of one SSE line, ``_DONE`` at the end, None for anything else."""
    if not line.startswith("data:"):
        return None  # blank separators, comments (": keep-alive"), event names
    data = line[len("data:") :].strip()
    if data == "[DONE]":
        return _DONE
    try:
        event: Any = json.loads(data)
    except ValueError as exc:
        raise AgentError(
            "The chat model sent an unreadable event", category=ErrorCategory.PERMANENT
        ) from exc
    if "error" in event:
        raise AgentError("The chat model reported an error", category=ErrorCategory.PERMANENT)
    choices = event.get("choices") or []
    if not choices:
        return None
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) else None
