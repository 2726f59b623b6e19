"""The ``openai-speech`` function: OpenAI's speech API shape, so OpenAI SDK clients work.

``POST /v1/audio/speech`` takes ``model`` (accepted, not used: the voice decides the
engine), ``input``, ``voice`` (an OpenAI voice name mapped by ``openai_speech_voices``, a
catalog voice id, or a voice model id), ``response_format`` (mp3, opus, flac, wav, pcm;
aac is refused with 400) and ``speed``, and answers the audio bytes themselves. The API
key is the platform's bearer token. ``GET /v1/audio/voices`` lists the voice names.
Requests go through the same cache, storage and usage as ``POST /synthesize``; texts of
any length up to the limit are answered at once (no async job).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, Field

from shared.audio.formats import CONTENT_TYPES, OutputFormat
from shared.errors import InvalidRequestError
from shared.http import Api, RequestContext
from shared.providers.base import MAX_SPEED, MIN_SPEED
from shared.synthesis import CAPABILITY as SYNTHESIS
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.immediate import synthesize_now
from shared.synthesis.model import SynthesizeRequest, check_audio_length
from shared.synthesis.prepare import prepare

api = Api("openai-speech")

FORMATS: dict[str, OutputFormat] = {
    "mp3": OutputFormat.MP3,
    "opus": OutputFormat.OGG_OPUS,
    "flac": OutputFormat.FLAC,
    "wav": OutputFormat.WAV,
    "pcm": OutputFormat.PCM,
}
PCM_RATE = 24_000  # OpenAI's raw PCM is 24 kHz 16-bit little-endian mono


class SpeechRequest(BaseModel):
    """Body of ``POST /v1/audio/speech`` (OpenAI's fields; unknown ones are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: Annotated[str, Field(min_length=1, max_length=100)] = "tts-1"
    input: str
    voice: Annotated[str, Field(min_length=1, max_length=255)]
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Annotated[float, Field(ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)] = 1.0


class SpeechVoice(BaseModel):
    """One voice name of ``GET /v1/audio/voices`` and the voice it speaks with."""

    id: str
    name: str
    voice: str


class SpeechVoices(BaseModel):
    """Answer of ``GET /v1/audio/voices``."""

    voices: list[SpeechVoice]


@api.route("/v1/audio/speech", methods=["POST"], body=SpeechRequest)
def create_speech(ctx: RequestContext) -> flask.Response:
    """Return the audio of ``input`` (OpenAI-compatible); aac is not supported (400)."""
    body = ctx.body(SpeechRequest)
    fmt = FORMATS.get(body.response_format)
    if fmt is None:
        raise InvalidRequestError(
            f"response_format {body.response_format} is not supported; "
            f"use one of {', '.join(FORMATS)}"
        )
    settings = ctx.container.settings
    request = SynthesizeRequest(
        text=body.input,
        voice=settings.openai_speech_voices.get(body.voice, body.voice),
        output_format=fmt,
        sample_rate=PCM_RATE if fmt is OutputFormat.PCM else None,
        speed=body.speed,
        include_timestamps=False,
    )
    deps = ctx.container.deps(SYNTHESIS)
    prepared = prepare(deps, ctx.user_id, request, account_id=ctx.principal.account_id)
    check_audio_length(prepared.seconds, deps.settings, at_once=True)
    result = synthesize_now(deps, ctx.user_id, prepared)
    file_id = result.audio_file_id
    data = deps.blobs.get(settings.audio_bucket, _path_of(deps, file_id))
    response = flask.Response(data, mimetype=CONTENT_TYPES[fmt])
    response.headers["X-Audio-File-Id"] = file_id or ""
    response.headers["X-Cache-Hit"] = "true" if result.cache_hit else "false"
    return response


def _path_of(deps: SynthesisDeps, file_id: str | None) -> str:
    from shared.files.repository import AudioFileRepository  # noqa: PLC0415

    audio_file = AudioFileRepository(deps.store).get(file_id or "")
    if audio_file is None:
        raise InvalidRequestError("The synthesized file is gone")
    return audio_file.file_path


@api.route("/v1/audio/voices", methods=["GET"], response=SpeechVoices)
def list_speech_voices(ctx: RequestContext) -> dict[str, Any]:
    """List the OpenAI voice names this endpoint accepts and the voices they map to."""
    voices = ctx.container.settings.openai_speech_voices
    return {
        "voices": [{"id": name, "name": name, "voice": voice} for name, voice in voices.items()]
    }


@functions_framework.http
def openai_speech(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
