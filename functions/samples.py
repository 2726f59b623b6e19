"""The ``samples`` function: voice samples (seed 002) and ``POST /voice-models/train``.

``POST /samples`` takes ``multipart/form-data`` (the audio in ``file``; optional
``name``, ``language``, ``isPublic``) of at most ``samples_max_upload_bytes``; larger files
go through ``POST /samples/upload-url``. Then list, read, change, delete and find the
samples whose voices are nearest. Training answers 202 with the pending model: the
``samples.train`` task and the storage event of its ``metadata.json`` do the rest.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.errors import UnsupportedMediaTypeError
from shared.http import Api, Reply, RequestContext, parse
from shared.samples import CAPABILITY as SAMPLES
from shared.samples import library
from shared.samples.deps import Caller, SampleDeps
from shared.samples.errors import InvalidUploadError, SampleTooLargeError
from shared.samples.model import (
    SampleDeleted,
    SampleListQuery,
    SimilarQuery,
    SimilarSamples,
    TrainRequest,
    UploadUrlRequest,
    UploadUrlResponse,
    VoiceSampleCreate,
    VoiceSamplePage,
    VoiceSamplePublic,
    VoiceSampleUpdate,
    VoiceSampleUploadForm,
)
from shared.voice_models.model import VoiceModelPublic

# Uploads (audio decoding, the task queue) and training (providers) load with the first
# request that uploads or trains, not with the function's cold start.

api = Api("samples")

# Room for the multipart envelope and the text fields around the file.
_ENVELOPE_BYTES = 64 * 1024
_FORM_FIELDS = ("name", "language", "isPublic", "is_public")


def deps_of(ctx: RequestContext) -> SampleDeps:
    """Return the sample services' dependencies for this request."""
    return ctx.container.deps(SAMPLES)


def caller_of(ctx: RequestContext) -> Caller:
    """Return the authenticated caller of this request."""
    return Caller(ctx.user_id, ctx.principal.is_admin, ctx.request_id)


def read_upload(ctx: RequestContext, limit: int) -> tuple[bytes, str | None, VoiceSampleCreate]:
    """Return the uploaded file's bytes, its client-side name and the form's metadata.

    Raises UnsupportedMediaTypeError (not multipart), SampleTooLargeError, or
    InvalidUploadError / InvalidRequestError for a malformed form.
    """
    request = ctx.request
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            "Send the audio as multipart/form-data, in the field 'file'"
        )
    allowed = limit + _ENVELOPE_BYTES
    if request.content_length is not None and request.content_length > allowed:
        raise SampleTooLargeError(
            f"The upload exceeds {limit} bytes; use POST /samples/upload-url for larger files"
        )
    request.max_content_length = allowed
    request.max_form_parts = 20
    try:
        files = request.files.getlist("file")
        form = request.form
    except RequestEntityTooLarge as exc:
        raise SampleTooLargeError(f"The upload exceeds {limit} bytes") from exc
    except (HTTPException, ValueError) as exc:
        raise InvalidUploadError("The multipart body is malformed") from exc
    if len(files) != 1 or (len(request.files) != 1):
        raise InvalidUploadError("Send exactly one file, in the field 'file'")
    data = _read(files[0], limit)
    fields: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) != 1:
            raise InvalidUploadError(f"Give the field {key!r} once")
        fields[key] = values[0]
    unknown = sorted(set(fields) - set(_FORM_FIELDS))
    if unknown:
        raise InvalidUploadError(f"Unknown form fields: {', '.join(unknown)}")
    return data, files[0].filename, parse(VoiceSampleCreate, fields)


def _read(file: FileStorage, limit: int) -> bytes:
    data = file.stream.read(limit + 1)
    if len(data) > limit:
        raise SampleTooLargeError(
            f"The file exceeds {limit} bytes; use POST /samples/upload-url for larger files"
        )
    if not data:
        raise InvalidUploadError("The file is empty")
    return data


@api.route(
    "/samples",
    methods=["POST"],
    body=VoiceSampleUploadForm,
    body_media_type="multipart/form-data",
    response=VoiceSamplePublic,
    status=201,
    responses={
        400: "A malformed form, damaged audio, or less than the minimum duration",
        413: "A file or a duration over the limits (larger files: POST /samples/upload-url)",
        415: "Not multipart/form-data, or not wav, mp3, flac or ogg audio",
    },
)
def upload(ctx: RequestContext) -> Reply:
    """Upload a voice sample (multipart: file, name, language, isPublic); processing starts."""
    deps = deps_of(ctx)
    data, filename, metadata = read_upload(ctx, deps.settings.samples_max_upload_bytes)
    from shared.samples.uploads import upload_sample  # noqa: PLC0415 - see the imports

    sample = upload_sample(deps, caller_of(ctx), data, metadata, filename=filename)
    return Reply(VoiceSamplePublic.from_entity(sample), status=201)


@api.route(
    "/samples/upload-url",
    methods=["POST"],
    body=UploadUrlRequest,
    response=UploadUrlResponse,
    status=201,
)
def upload_url(ctx: RequestContext) -> Reply:
    """Get a signed URL to PUT a large sample to; processing starts when it lands."""
    request = ctx.body(UploadUrlRequest)
    from shared.samples.uploads import create_upload_url  # noqa: PLC0415 - see the imports

    return Reply(create_upload_url(deps_of(ctx), caller_of(ctx), request), status=201)


@api.route("/samples", methods=["GET"], query=SampleListQuery, response=VoiceSamplePage)
def list_samples(ctx: RequestContext) -> VoiceSamplePage:
    """List the caller's samples (or, with scope=public, everyone's public ones)."""
    return library.list_samples(deps_of(ctx), caller_of(ctx), ctx.query(SampleListQuery))


@api.route("/samples/<sample_id>", methods=["GET"], response=VoiceSamplePublic)
def get_sample(ctx: RequestContext, sample_id: str) -> VoiceSamplePublic:
    """Return one of the caller's samples, or a public one."""
    sample = library.readable_sample(deps_of(ctx), caller_of(ctx), sample_id)
    return VoiceSamplePublic.from_entity(sample)


@api.route(
    "/samples/<sample_id>", methods=["PATCH"], body=VoiceSampleUpdate, response=VoiceSamplePublic
)
def update_sample(ctx: RequestContext, sample_id: str) -> VoiceSamplePublic:
    """Change a sample's name, language or public flag."""
    request = ctx.body(VoiceSampleUpdate)
    sample = library.update_sample(deps_of(ctx), caller_of(ctx), sample_id, request)
    return VoiceSamplePublic.from_entity(sample)


@api.route("/samples/<sample_id>", methods=["DELETE"], response=SampleDeleted)
def delete_sample(ctx: RequestContext, sample_id: str) -> SampleDeleted:
    """Delete a sample: its audio, its embedding and the storage it used."""
    return library.delete_sample(deps_of(ctx), caller_of(ctx), sample_id)


@api.route(
    "/samples/<sample_id>/similar",
    methods=["GET"],
    query=SimilarQuery,
    response=SimilarSamples,
    responses={409: "The sample is not processed yet"},
)
def similar_samples(ctx: RequestContext, sample_id: str) -> SimilarSamples:
    """The samples whose voices are nearest this one's (scope=own or public)."""
    query = ctx.query(SimilarQuery)
    return library.similar_samples(deps_of(ctx), caller_of(ctx), sample_id, query)


@api.route(
    "/voice-models/train",
    methods=["POST"],
    body=TrainRequest,
    response=VoiceModelPublic,
    status=202,
    responses={
        409: "A sample is not processed yet",
        422: "No trainer for this provider here, or its provider is not configured",
    },
)
def train_voice_model(ctx: RequestContext) -> Reply:
    """Train a voice model from ready samples; answers 202 with the pending model."""
    from shared.samples.training.start import start_training  # noqa: PLC0415 - see the imports

    model = start_training(deps_of(ctx), caller_of(ctx), ctx.body(TrainRequest))
    return Reply(VoiceModelPublic.from_entity(model), status=202)


@functions_framework.http
def samples(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
