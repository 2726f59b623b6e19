"""The ``synthesis`` function: text to speech, multi-role dialogues, and the caller's jobs.

``POST /synthesize`` answers short texts at once (200) and turns long ones into a job
(202, ``Location`` naming it) whose status ``GET /synthesis/jobs/{id}`` shows, and whose
``callbackUrl`` (when given) is called when it finishes; ``POST /synthesize/dialogue``
speaks a multi-role dialogue natively or turn by turn. Both answer JSON, or the audio
itself when the ``Accept`` header prefers the format's audio type (``audio/*``): one round
trip, with the job and file ids in ``X-Job-Id`` and ``X-Audio-File-Id``.
``POST /synthesize/stream`` takes the same body and answers the audio as it is produced,
sentence by sentence in text order (chunked pcm, wav with a streaming header, mp3 or
ogg_opus), or, with ``Accept: application/x-ndjson`` or ``?timestamps=true``, JSON lines
of base64 audio and the timings of each chunk, then a ``done`` line with the totals
(``functions._streaming`` says how errors end a stream); the finished audio is stored and
cached as ``POST /synthesize`` stores it.
``GET /synthesis/jobs`` pages through the caller's jobs, newest first. Both synthesis
routes take ``lexiconIds`` (the dialogue per turn too): the caller's pronunciation lexicons,
``id`` or ``id@version``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flask
import functions_framework

from functions._streaming import NDJSON, audio_response, ndjson_response
from shared.audio.formats import CONTENT_TYPES, OutputFormat
from shared.errors import NotAcceptableError
from shared.http import Api, Reply, RequestContext, page_body
from shared.model import DomainModel, RequestModel
from shared.synthesis import CAPABILITY as SYNTHESIS
from shared.synthesis import jobs as synthesis_jobs
from shared.synthesis.model import (
    DialogueRequest,
    SynthesisResponse,
    SynthesisStatus,
    SynthesizeRequest,
)

if TYPE_CHECKING:
    from shared.synthesis.deps import SynthesisDeps

# The routes that speak import the speech path (voices, providers, rendering, the cache's
# single flight) when they are called: the function's other routes, and its cold start,
# read jobs only.

api = Api("synthesis")

JSON = "application/json"
AUDIO_OR_JOB: dict[int, Any] = {
    200: {
        "description": "The finished synthesis; the audio itself when Accept prefers it",
        "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    202: {
        "description": "A long text: the pending job (poll Location, or wait for callbackUrl)",
        "headers": {
            "Location": {"description": "The job's status URL", "schema": {"type": "string"}}
        },
    },
    406: "",
    409: "The voice model is not ready",
    410: "The clone has expired",
    422: "",
    502: "",
}


STREAM_ANSWER: dict[int, Any] = {
    200: {
        "description": (
            "The audio as it is produced (chunked; wav's header gives its sizes as "
            "0xFFFFFFFF), or JSON lines {audio (base64), words, syllables} (shaped as "
            "SynthesisResponse.timestamps', timed on the whole utterance's clock and "
            "spanning its whole text) then "
            "{done: true, requestId, jobId, audioFileId, cacheHit, duration, ...}; an error "
            "after the first byte ends the audio without its last chunk, or is a last line "
            "holding the error body"
        ),
        "content": {
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
            NDJSON: {"schema": {"type": "string"}},
        },
    },
    406: "",
    409: "The voice model is not ready",
    410: "The clone has expired",
    415: "The format cannot be streamed (flac)",
    422: "",
    502: "",
}


class StreamQuery(RequestModel):
    """Query of ``POST /synthesize/stream``: ``timestamps=true`` asks for JSON lines."""

    timestamps: bool = False


class SynthesisJobPage(DomainModel):
    """Answer of ``GET /synthesis/jobs``."""

    jobs: list[SynthesisResponse]
    next_cursor: str | None = None


def _audio_reply(deps: SynthesisDeps, body: SynthesisResponse) -> Any:
    finished = body.status in (SynthesisStatus.COMPLETED, SynthesisStatus.FAILED)
    if not finished:
        return Reply(body, status=202, headers={"Location": f"/synthesis/jobs/{body.job_id}"})
    if body.status is SynthesisStatus.COMPLETED and body.audio_file_id:
        from shared.files.storage import stored_audio  # noqa: PLC0415 - see the imports

        audio_file, data = stored_audio(deps.audio, body.audio_file_id)
        response = flask.Response(data, content_type=audio_file.content_type)
        response.headers["X-Job-Id"] = body.job_id
        response.headers["X-Audio-File-Id"] = body.audio_file_id
        response.headers["X-Cache-Hit"] = "true" if body.cache_hit else "false"
        return response
    return Reply(body)


def _wants_audio(ctx: RequestContext, fmt: OutputFormat) -> bool:
    """Return whether the Accept header prefers the format's audio to JSON.

    Raises NotAcceptableError when it accepts neither.
    """
    accept = ctx.request.accept_mimetypes
    if not ctx.request.headers.get("Accept"):
        return False
    audio = CONTENT_TYPES[fmt]
    best = accept.best_match([JSON, audio])
    if best is None:
        raise NotAcceptableError(
            f"This request answers {JSON} or {audio} (its outputFormat {fmt.value}); "
            f"the Accept header names neither"
        )
    return best == audio


def _wants_lines(ctx: RequestContext, fmt: OutputFormat) -> bool:
    """Return whether the Accept header prefers JSON lines to the format's audio.

    Raises NotAcceptableError when it accepts neither (before any work is done).
    """
    if not ctx.request.headers.get("Accept"):
        return False
    audio = CONTENT_TYPES[fmt]
    best = ctx.request.accept_mimetypes.best_match([audio, NDJSON])
    if best is None:
        raise NotAcceptableError(
            f"This stream answers {audio} (its outputFormat {fmt.value}) or {NDJSON}; "
            f"the Accept header names neither"
        )
    return best == NDJSON


@api.route(
    "/synthesize",
    methods=["POST"],
    body=SynthesizeRequest,
    response=SynthesisResponse,
    responses=AUDIO_OR_JOB,
    requires_body=True,
)
def synthesize_text(ctx: RequestContext) -> Any:
    """Synthesize text or SSML: the file at once for short texts, an async job for long ones."""
    from shared.synthesis.synthesize import synthesize  # noqa: PLC0415 - see the imports

    deps = ctx.container.deps(SYNTHESIS)
    request = ctx.body(SynthesizeRequest)
    audio = _wants_audio(ctx, request.output_format)
    body = synthesize(deps, ctx.user_id, request, account_id=ctx.principal.account_id)
    return _audio_reply(deps, body) if audio else _json_reply(body)


@api.route(
    "/synthesize/dialogue",
    methods=["POST"],
    body=DialogueRequest,
    response=SynthesisResponse,
    responses={key: AUDIO_OR_JOB[key] for key in (200, 406, 409, 410, 422, 502)},
    requires_body=True,
)
def synthesize_dialogue_turns(ctx: RequestContext) -> Any:
    """Synthesize a multi-role dialogue, natively when the provider can, else turn by turn."""
    from shared.synthesis.dialogue import synthesize_dialogue  # noqa: PLC0415 - see the imports

    deps = ctx.container.deps(SYNTHESIS)
    request = ctx.body(DialogueRequest)
    audio = _wants_audio(ctx, request.output_format)
    body = synthesize_dialogue(deps, ctx.user_id, request, account_id=ctx.principal.account_id)
    return _audio_reply(deps, body) if audio else _json_reply(body)


@api.route(
    "/synthesize/stream",
    methods=["POST"],
    body=SynthesizeRequest,
    query=StreamQuery,
    responses=STREAM_ANSWER,
    requires_body=True,
)
def stream_synthesis(ctx: RequestContext) -> Any:
    """Stream the audio of text or SSML as it is produced, or JSON lines with timings."""
    from shared.synthesis.prepare import prepare  # noqa: PLC0415 - see the imports
    from shared.synthesis.streaming import open_stream  # noqa: PLC0415 - see the imports

    deps = ctx.container.deps(SYNTHESIS)
    request = ctx.body(SynthesizeRequest)
    lines = ctx.query(StreamQuery).timestamps or _wants_lines(ctx, request.output_format)
    prepared = prepare(deps, ctx.user_id, request, account_id=ctx.principal.account_id)
    stream = open_stream(deps, ctx.user_id, prepared)
    if lines:
        return ndjson_response(stream, deps, ctx.request_id, timings=request.include_timestamps)
    return audio_response(stream)


def _json_reply(body: SynthesisResponse) -> Reply:
    finished = body.status in (SynthesisStatus.COMPLETED, SynthesisStatus.FAILED)
    headers = {} if finished else {"Location": f"/synthesis/jobs/{body.job_id}"}
    return Reply(body, status=200 if finished else 202, headers=headers)


@api.route(
    "/synthesis/jobs",
    methods=["GET"],
    query=synthesis_jobs.SynthesisJobListQuery,
    response=SynthesisJobPage,
)
def list_synthesis_jobs(ctx: RequestContext) -> dict[str, Any]:
    """List your synthesis jobs, newest first, optionally by status (``nextCursor`` goes on)."""
    deps = ctx.container.deps(SYNTHESIS)
    query = ctx.query(synthesis_jobs.SynthesisJobListQuery)
    jobs, cursor = synthesis_jobs.list_jobs(deps, ctx.user_id, query)
    return page_body("jobs", jobs, cursor)


@api.route("/synthesis/jobs/<job_id>", methods=["GET"], response=SynthesisResponse)
def get_synthesis_job(ctx: RequestContext, job_id: str) -> SynthesisResponse:
    """Return a synthesis job: status, progress 0..1, estimated duration, and its file."""
    deps = ctx.container.deps(SYNTHESIS)
    return synthesis_jobs.job_status(deps, ctx.user_id, job_id)


@functions_framework.http
def synthesis(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
