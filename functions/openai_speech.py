"""The ``openai-speech`` function: OpenAI's speech API shape, so OpenAI SDK clients work.

``POST /v1/audio/speech`` takes ``model`` (accepted, not used: the voice decides the
engine), ``input``, ``voice`` (any voice name the platform accepts: an OpenAI voice name
such as ``alloy``, a catalog voice, a language tag or a voice model id), ``response_format``
(mp3, opus, flac, wav, pcm; aac is refused with 415 listing the supported ones) and
``speed``, and answers the audio bytes themselves; ``X-Voice`` names the voice that spoke
(OpenAI's names speak with the neural default voice where one speaks the language). One
field beyond OpenAI's, ``lexicon_ids`` (the SDKs send it with ``extra_body``), names
pronunciation lexicons as ``POST /synthesize``'s ``lexiconIds`` does. The API key is the
platform's bearer token. ``GET /v1/audio/voices`` lists the OpenAI voice names and the
voice each speaks with. Errors come in OpenAI's shape (``{"error": {message, type, param,
code}}``), so the SDKs show their message. Texts of any length up to the limit are
answered at once (no async job). ``stream_format`` streams the answer as OpenAI's does:
``"audio"`` is the audio chunked as it is produced (sentence by sentence), ``"sse"``
server-sent events ``speech.audio.delta`` (base64 audio) then ``speech.audio.done``
(``functions._streaming`` says how an error after the first byte shows). By default
nothing is stored for the user (``openai_speech_storage``): these calls never fill the
user's storage quota.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import flask
import functions_framework
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from functions._streaming import EVENT_STREAM, audio_response, sse_response
from shared.audio.formats import OutputFormat
from shared.errors import InvalidRequestError
from shared.http import Api, RequestContext
from shared.lexicons.references import LexiconIds
from shared.providers.base import MAX_SPEED, MIN_SPEED
from shared.synthesis import CAPABILITY as SYNTHESIS
from shared.synthesis.model import SynthesizeRequest, check_audio_length, output_format_of
from shared.synthesis.voices import openai_voices

api = Api("openai-speech", error_shape="openai")

PCM_RATE = 24_000  # OpenAI's raw PCM is 24 kHz 16-bit little-endian mono


class SpeechRequest(BaseModel):
    """Body of ``POST /v1/audio/speech`` (OpenAI's fields; unknown ones are ignored)."""

    # defer_build: the validator is built on first use, not by each cold start importing this.
    model_config = ConfigDict(extra="ignore", defer_build=True)

    model: Annotated[str, Field(min_length=1, max_length=100)] = "tts-1"
    input: str
    voice: Annotated[str, Field(min_length=1, max_length=255)]
    response_format: OutputFormat = OutputFormat.MP3
    speed: Annotated[float, Field(ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)] = 1.0
    # Absent: the whole audio in one answer; "audio": chunked as produced; "sse": events.
    stream_format: Literal["audio", "sse"] | None = None
    # Beyond OpenAI's fields: the caller's pronunciation lexicons (id or id@version).
    lexicon_ids: Annotated[
        LexiconIds | None, Field(validation_alias=AliasChoices("lexicon_ids", "lexiconIds"))
    ] = None

    @field_validator("response_format", mode="before")
    @classmethod
    def _format_by_openai_name(cls, value: Any) -> Any:
        return output_format_of(value)


class SpeechVoice(BaseModel):
    """One voice name of ``GET /v1/audio/voices`` and the voice it speaks with."""

    model_config = ConfigDict(defer_build=True)

    id: str
    name: str
    voice: str


class SpeechVoices(BaseModel):
    """Answer of ``GET /v1/audio/voices``."""

    model_config = ConfigDict(defer_build=True)

    voices: list[SpeechVoice]


# In an OpenAPI 3.1 document an event stream's schema describes each event, its fields as
# the server-sent events standard parses them (OpenAPI 3.2 names this `itemSchema`).
SERVER_SENT_EVENT = {
    "type": "object",
    "description": "One server-sent event: `data` is a JSON object, `speech.audio.delta` "
    "(`{type, audio}`, the audio base64) for each chunk, then `speech.audio.done` "
    "(`{type, usage}`); a failure after the first event ends the stream with an `error` "
    "event whose data is OpenAI's error body",
    "required": ["data"],
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}

AUDIO_ANSWER = {
    "content": {
        media: {"schema": {"type": "string", "format": "binary"}}
        for media in ("audio/mpeg", "audio/ogg", "audio/flac", "audio/wav", "audio/L16")
    }
    | {EVENT_STREAM: {"schema": SERVER_SENT_EVENT}},
    "description": "The audio; with stream_format, chunked as it is produced, or (sse) "
    "speech.audio.delta events then speech.audio.done",
}


# The platform's field names that OpenAI's body names otherwise.
_OPENAI_FIELDS = {"text": "input", "outputFormat": "response_format", "lexiconIds": "lexicon_ids"}


def _synthesis_request(body: SpeechRequest, fmt: OutputFormat) -> SynthesizeRequest:
    """Return the platform's request for ``body``.

    Raises InvalidRequestError (naming OpenAI's fields) for what the platform refuses that
    OpenAI's looser body lets through, such as a NUL character in ``input`` or ``voice``.
    """
    try:
        return SynthesizeRequest(
            text=body.input,
            voice=body.voice,
            output_format=fmt,
            sample_rate=PCM_RATE if fmt is OutputFormat.PCM else None,
            speed=body.speed,
            include_timestamps=False,
            lexicon_ids=body.lexicon_ids,
        )
    except ValidationError as exc:
        details = []
        for error in exc.errors(include_url=False, include_input=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            details.append(
                {
                    "field": _OPENAI_FIELDS.get(name, name) or None,
                    "message": error["msg"],
                    "type": error["type"],
                }
            )
        raise InvalidRequestError("Invalid request parameters", details=details) from None


@api.route(
    "/v1/audio/speech",
    methods=["POST"],
    body=SpeechRequest,
    responses={200: AUDIO_ANSWER, 409: "The voice model is not ready", 422: "", 502: ""},
)
def create_speech(ctx: RequestContext) -> flask.Response:
    """Return the audio of ``input`` (OpenAI-compatible)."""
    # The speech path loads with the first speech, not with the function (its voice list).
    from shared.files.storage import stored_audio  # noqa: PLC0415 - see above
    from shared.synthesis.immediate import synthesize_now  # noqa: PLC0415 - see above
    from shared.synthesis.prepare import prepare  # noqa: PLC0415 - see above
    from shared.synthesis.streaming import open_stream  # noqa: PLC0415 - see above
    from shared.synthesis.unstored import speak_unstored  # noqa: PLC0415 - see above

    body = ctx.body(SpeechRequest)
    fmt = body.response_format
    request = _synthesis_request(body, fmt)
    deps = ctx.container.deps(SYNTHESIS)
    prepared = prepare(deps, ctx.user_id, request, account_id=ctx.principal.account_id)
    check_audio_length(prepared.seconds, deps.settings, at_once=True)
    if body.stream_format is not None:
        store = deps.settings.openai_speech_storage == "files"
        stream = open_stream(deps, ctx.user_id, prepared, store=store)
        answer = audio_response if body.stream_format == "audio" else sse_response
        streamed = answer(stream)
        streamed.headers["X-Voice"] = prepared.voice.label
        return streamed
    if deps.settings.openai_speech_storage == "none":
        spoken = speak_unstored(deps, ctx.user_id, prepared)
        response = flask.Response(spoken.data, content_type=spoken.content_type)
        response.headers["X-Cache-Hit"] = "true" if spoken.cache_hit else "false"
    else:
        result = synthesize_now(deps, ctx.user_id, prepared)
        audio_file, data = stored_audio(deps.audio, result.audio_file_id or "")
        response = flask.Response(data, content_type=audio_file.content_type)
        response.headers["X-Audio-File-Id"] = result.audio_file_id or ""
        response.headers["X-Cache-Hit"] = "true" if result.cache_hit else "false"
    response.headers["X-Voice"] = prepared.voice.label
    return response


@api.route("/v1/audio/voices", methods=["GET"], response=SpeechVoices)
def list_speech_voices(ctx: RequestContext) -> dict[str, Any]:
    """List the OpenAI voice names this endpoint accepts and the voices they map to."""
    deps = ctx.container.deps(SYNTHESIS)
    # A mapping to a voice that is gone is listed as configured.
    return {
        "voices": [
            {"id": name, "name": name, "voice": found.label if found else mapped}
            for name, mapped, found in openai_voices(deps.models, deps.providers)
        ]
    }


@functions_framework.http
def openai_speech(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
