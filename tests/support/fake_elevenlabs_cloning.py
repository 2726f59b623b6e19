"""A fake ElevenLabs speaking its real voice-cloning wire format, multipart included.

``POST /v1/voices/add`` must be ``multipart/form-data`` with a ``name`` field and at least
one ``files`` part (ElevenLabs answers 422 with ``{"detail": [{"loc", "msg", "type"}]}``
otherwise); it answers ``{"voice_id", "requires_verification": false}`` or, past
``voice_limit`` voices, 400 ``voice_limit_reached``. ``DELETE /v1/voices/{id}`` answers
``{"status": "ok"}`` or 404 ``voice_not_found``. A wrong ``xi-api-key`` is 401. Cloned
voices then speak through ``/v1/text-to-speech/{id}/with-timestamps`` (the synthesis fake of
``tests.support.fake_tts_servers``). ``delay`` makes every clone answer that late.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.support.fake_http import json_response
from tests.support.fake_tts_servers import ELEVENLABS_KEY, elevenlabs_app


@dataclass
class ClonedVoices:
    """What the fake account holds: voices by id with their files; the slot limit."""

    voices: dict[str, dict[str, Any]] = field(default_factory=dict)
    voice_limit: int = 30
    delay: float = 0.0


def cloning_app(state: ClonedVoices) -> Any:
    """Return the WSGI app of the fake (voice cloning plus text-to-speech)."""
    speaking: list[dict[str, Any]] = []
    tts = elevenlabs_app(speaking)

    def app(request: Request) -> Response:
        if request.headers.get("xi-api-key") != ELEVENLABS_KEY:
            return json_response(
                {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, 401
            )
        if request.method == "POST" and request.path == "/v1/voices/add":
            return _add(request, state, speaking)
        if request.method == "DELETE" and request.path.startswith("/v1/voices/"):
            voice_id = request.path.removeprefix("/v1/voices/")
            if state.voices.pop(voice_id, None) is None:
                return json_response(
                    {"detail": {"status": "voice_not_found", "message": "Voice not found"}}, 404
                )
            speaking[:] = [v for v in speaking if v["voice_id"] != voice_id]
            return json_response({"status": "ok"})
        return tts(request)

    return app


def _add(request: Request, state: ClonedVoices, speaking: list[dict[str, Any]]) -> Response:
    if not (request.mimetype or "").startswith("multipart/form-data"):
        return _invalid(["body"], "Expected multipart/form-data")
    name = request.form.get("name")
    files = request.files.getlist("files")
    if not name:
        return _invalid(["body", "name"], "Field required")
    if not files:
        return _invalid(["body", "files"], "Field required")
    if state.delay:
        time.sleep(state.delay)
    if len(state.voices) >= state.voice_limit:
        return json_response(
            {
                "detail": {
                    "status": "voice_limit_reached",
                    "message": "You have reached your maximum amount of custom voices",
                }
            },
            400,
        )
    voice_id = secrets.token_hex(10)
    state.voices[voice_id] = {
        "name": name,
        "description": request.form.get("description"),
        "labels": request.form.get("labels"),
        "files": [(f.filename, f.mimetype, f.read()) for f in files],
    }
    speaking.append({"voice_id": voice_id, "name": name, "labels": {}})
    return json_response({"voice_id": voice_id, "requires_verification": False})


def _invalid(loc: list[str], message: str) -> Response:
    return json_response({"detail": [{"loc": loc, "msg": message, "type": "missing"}]}, 422)
