"""The ``files`` function: the caller's audio files, their details and downloads.

``GET /files`` lists the caller's files, newest first; ``GET /files/{id}/info`` describes
one (``size`` in bytes, ``expiresAt`` when it is deleted); ``GET /files/audio/{id}``
streams its bytes with HTTP Range support and counts the download. They are owner-only
unless the file is public, and answer 404 (not 403) for another user's private file so ids
cannot be probed. The download route accepts anonymous callers for public files.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework
from werkzeug.http import parse_range_header

from shared.auth import bearer_token
from shared.errors import RangeNotSatisfiableError, echoed
from shared.files import CAPABILITY as FILES
from shared.files.deps import AudioDeps
from shared.files.model import AudioFilePublic
from shared.files.storage import (
    AudioFileListQuery,
    AudioFileUpdate,
    count_download,
    file_info,
    list_files,
    readable_file,
    update_file,
)
from shared.http import Api, RequestContext, page_body
from shared.model import DomainModel

api = Api("files")

# What Apple's media players ask for first (``bytes=0-1``), to learn the size and Range support.
PROBE_BYTES = 2


def _deps(ctx: RequestContext) -> AudioDeps:
    return ctx.container.deps(FILES)


class AudioFilePage(DomainModel):
    """Answer of ``GET /files``."""

    files: list[AudioFilePublic]
    next_cursor: str | None = None


@api.route("/files", methods=["GET"], query=AudioFileListQuery, response=AudioFilePage)
def list_audio_files(ctx: RequestContext) -> dict[str, Any]:
    """List your audio files, newest first (``nextCursor`` continues the list)."""
    files, cursor = list_files(_deps(ctx), ctx.user_id, ctx.query(AudioFileListQuery))
    return page_body("files", [AudioFilePublic.from_entity(f) for f in files], cursor)


@api.route("/files/<file_id>/info", methods=["GET"], response=AudioFilePublic)
def get_file_info(ctx: RequestContext, file_id: str) -> AudioFilePublic:
    """Describe an audio file: checksum, size, duration, rate, format, expiry, downloads."""
    return AudioFilePublic.from_entity(file_info(_deps(ctx), ctx.user_id, file_id))


@api.route("/files/<file_id>", methods=["PATCH"], body=AudioFileUpdate, response=AudioFilePublic)
def update_audio_file(ctx: RequestContext, file_id: str) -> AudioFilePublic:
    """Make one of your files public (anyone may download it) or private again."""
    changed = update_file(_deps(ctx), ctx.user_id, file_id, ctx.body(AudioFileUpdate))
    return AudioFilePublic.from_entity(changed)


@api.route(
    "/files/audio/<file_id>",
    methods=["GET"],
    access="public",
    responses={
        200: {"content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}},
        206: "",
        401: "",
        416: "",
    },
)
def download_audio(ctx: RequestContext, file_id: str) -> flask.Response:
    """Download an audio file (Range supported); the owner's, or anyone's when public."""
    user_id = None
    if ctx.request.headers.get("Authorization"):
        header = ctx.request.headers.get("Authorization")
        ctx.principal_or_none = ctx.container.verifier.verify(bearer_token(header))
        user_id = ctx.principal_or_none.user_id
    deps = _deps(ctx)
    audio_file = readable_file(deps, user_id, file_id)
    size = audio_file.file_size
    header = ctx.request.headers.get("Range")
    requested = parse_range_header(header) if header else None
    if requested is not None and (requested.units != "bytes" or len(requested.ranges) != 1):
        requested = None
    # A Range in another unit, malformed or of several ranges is ignored, as RFC 9110
    # allows (requires, for an unknown unit): the answer is the whole file.
    span = requested.range_for_length(size) if requested is not None else None
    if requested is not None and span is None:
        raise RangeNotSatisfiableError(
            f"Range {echoed(header)} is outside the file's {size} bytes", size=size
        )
    start, stop = span if span is not None else (0, size)
    data = deps.blobs.get(deps.bucket, audio_file.file_path, start=start, end=stop - 1)
    if start == 0 and stop - start > PROBE_BYTES and ctx.request.method != "HEAD":
        # A player fetching later ranges of the same file is not another download, nor is a
        # HEAD (a client checking the size or type), nor Safari's and iOS AVPlayer's probe
        # of the first two bytes (``bytes=0-1``) before they fetch the file.
        count_download(deps, audio_file)
    response = flask.Response(data, status=206 if span is not None else 200)
    response.headers["Content-Type"] = audio_file.content_type
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = f'"{(audio_file.checksum or "").removeprefix("sha256:")}"'
    response.headers["Content-Disposition"] = f'attachment; filename="{audio_file.filename}"'
    response.headers["Cache-Control"] = (
        "public, max-age=3600" if audio_file.is_public else "private, no-store"
    )
    if span is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return response


@functions_framework.http
def files(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
