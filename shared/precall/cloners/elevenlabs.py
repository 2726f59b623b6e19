"""ElevenLabs instant voice cloning over its REST API, as the API documents it.

``POST /v1/voices/add`` takes ``multipart/form-data``: ``name`` (required), one ``files``
part per recording, ``description``, ``labels`` (a JSON object as text) and
``remove_background_noise``; it answers ``{"voice_id": ..., "requires_verification": ...}``.
``DELETE /v1/voices/{voice_id}`` removes a voice (``{"status": "ok"}``). The key travels in
``xi-api-key`` only. Errors come as ``{"detail": {"status", "message"}}`` (or, for a
malformed request, ``{"detail": [{"loc", "msg", "type"}]}``): 408, 429 and 5xx, timeouts and
refused connections may pass (retryable); any other 4xx will not. Reasons name the status
and ElevenLabs' own message, never the key.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import quote

import requests

from shared.config import Settings
from shared.errors import ConfigurationError
from shared.precall.cloners import ClonedVoice, CloneFailedError, CloneRequest

logger = logging.getLogger(__name__)

PROVIDER = "elevenlabs"
MAX_REASON_CHARS = 300


class ElevenLabsCloner:
    """Clones voices at ElevenLabs; the API key never leaves the ``xi-api-key`` header."""

    provider = PROVIDER

    def __init__(self, *, api_key: str, base_url: str, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._headers = {"xi-api-key": api_key, "Accept": "application/json"}
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ElevenLabsCloner(base_url={self._base_url!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> ElevenLabsCloner:
        """Return the cloner for the configured ElevenLabs account.

        Raises ConfigurationError: no ``VOICE_ELEVENLABS_API_KEY``.
        """
        if settings.elevenlabs_api_key is None:
            raise ConfigurationError("Pre-call cloning with ElevenLabs needs its API key")
        return cls(
            api_key=settings.elevenlabs_api_key.get_secret_value(),
            base_url=settings.elevenlabs_base_url,
            timeout=settings.provider_timeout_seconds,
        )

    def clone(self, request: CloneRequest) -> ClonedVoice:
        """Return the new ElevenLabs voice made from ``request``'s recording.

        Raises CloneFailedError (retryable for timeouts, 408, 429, 5xx).
        """
        data: dict[str, str] = {"name": request.name, "remove_background_noise": "false"}
        if request.description:
            data["description"] = request.description
        if request.labels:
            data["labels"] = json.dumps(request.labels)
        files = [("files", (request.filename, request.audio, request.content_type))]
        response = self._call("POST", "/v1/voices/add", data=data, files=files)
        try:
            body = response.json()
        except ValueError:
            body = None
        voice_id = body.get("voice_id") if isinstance(body, dict) else None
        if not isinstance(voice_id, str) or not voice_id:
            raise CloneFailedError("ElevenLabs sent no voice_id for the new voice", retryable=False)
        return ClonedVoice(cloned_voice_id=voice_id, provider=PROVIDER, provider_voice_id=voice_id)

    def delete(self, provider_voice_id: str) -> None:
        """Delete the voice; one ElevenLabs no longer has counts as deleted."""
        try:
            self._call("DELETE", f"/v1/voices/{quote(provider_voice_id, safe='')}")
        except _NotFound:
            logger.info("ElevenLabs voice %s was already gone", provider_voice_id)

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:  # one session per thread: a Session is not thread-safe
            session = self._local.session = requests.Session()
            session.headers.update(self._headers)
        try:
            response = session.request(
                method, self._base_url + path, timeout=self._timeout, **kwargs
            )
        except requests.Timeout as exc:
            raise CloneFailedError(
                f"ElevenLabs did not answer within {self._timeout:g} s", retryable=True
            ) from exc
        except requests.RequestException as exc:
            raise CloneFailedError("ElevenLabs is unreachable", retryable=True) from exc
        status = response.status_code
        if status < 400:
            return response
        if status == 404 and method == "DELETE":
            raise _NotFound()
        retryable = status in (408, 429) or status >= 500
        reason = f"ElevenLabs answered {status}{_detail(response)}"
        raise CloneFailedError(reason[:MAX_REASON_CHARS], retryable=retryable)


class _NotFound(Exception):
    pass


def _detail(response: requests.Response) -> str:
    """Return ``: status: message`` from an ElevenLabs error body, or nothing."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    if isinstance(detail, dict):
        parts = [str(detail.get(key)) for key in ("status", "message") if detail.get(key)]
        return f" ({': '.join(parts)})" if parts else ""
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(part) for part in first.get("loc", []))
        return f" ({where}: {first.get('msg', '')})"
    if isinstance(detail, str):
        return f" ({detail})"
    return ""
