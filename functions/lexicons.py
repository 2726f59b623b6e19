"""The ``lexicons`` function: a user's pronunciation lexicons (every route owner-only).

``POST /lexicons`` (JSON rules or a W3C PLS document), ``GET /lexicons`` (paginated),
``GET/PATCH/DELETE /lexicons/{id}``, and ``GET /lexicons/{id}/versions/{version}`` for a
pinned version. Synthesis requests name lexicons in ``lexiconIds`` (``id`` or
``id@version``).
"""

from __future__ import annotations

from typing import Annotated

import flask
import functions_framework
from pydantic import Field

from shared.errors import echoed
from shared.http import Api, Reply, RequestContext
from shared.lexicons import CAPABILITY as LEXICONS
from shared.lexicons import lexicons as service
from shared.lexicons.model import LexiconCreate, LexiconPage, LexiconPublic, LexiconUpdate
from shared.model import RequestModel

api = Api("lexicons")


class LexiconListQuery(RequestModel):
    """Query of ``GET /lexicons``."""

    limit: Annotated[int, Field(ge=1, le=100)] = 50
    cursor: Annotated[str, Field(max_length=2000)] | None = None


@api.route("/lexicons", methods=["POST"], body=LexiconCreate, response=LexiconPublic, status=201)
def create_lexicon(ctx: RequestContext) -> Reply:
    """Create a lexicon from JSON rules or a PLS document (version 1)."""
    created = service.create_lexicon(
        ctx.container.deps(LEXICONS), ctx.user_id, ctx.body(LexiconCreate)
    )
    return Reply(LexiconPublic.from_entity(created), status=201)


@api.route("/lexicons", methods=["GET"], query=LexiconListQuery, response=LexiconPage)
def list_lexicons(ctx: RequestContext) -> LexiconPage:
    """List the caller's lexicons, most recently changed first."""
    query = ctx.query(LexiconListQuery)
    found, cursor = service.list_lexicons(
        ctx.container.deps(LEXICONS), ctx.user_id, limit=query.limit, cursor=query.cursor
    )
    return LexiconPage(lexicons=[LexiconPublic.from_entity(x) for x in found], next_cursor=cursor)


@api.route("/lexicons/<lexicon_id>", methods=["GET"], response=LexiconPublic)
def get_lexicon(ctx: RequestContext, lexicon_id: str) -> LexiconPublic:
    """Return the latest version of one of the caller's lexicons."""
    found = service.get_lexicon(ctx.container.deps(LEXICONS), ctx.user_id, lexicon_id)
    return LexiconPublic.from_entity(found)


@api.route("/lexicons/<lexicon_id>/versions/<version>", methods=["GET"], response=LexiconPublic)
def get_lexicon_version(ctx: RequestContext, lexicon_id: str, version: str) -> LexiconPublic:
    """Return one version of the caller's lexicon."""
    store = ctx.container.deps(LEXICONS)
    if not (version.isascii() and version.isdigit() and len(version) < 7 and int(version) > 0):
        # Versions count from 1: anything else names none (the message shows what was asked).
        shown = f"{echoed(lexicon_id)}@{echoed(version, 20)}"
        raise service.LexiconNotFoundError(f"Lexicon not found: {shown}")
    found = service.get_lexicon(store, ctx.user_id, lexicon_id, int(version))
    return LexiconPublic.from_entity(found)


@api.route("/lexicons/<lexicon_id>", methods=["PATCH"], body=LexiconUpdate, response=LexiconPublic)
def update_lexicon(ctx: RequestContext, lexicon_id: str) -> LexiconPublic:
    """Change a lexicon's name, language or rules: a new version."""
    updated = service.update_lexicon(
        ctx.container.deps(LEXICONS), ctx.user_id, lexicon_id, ctx.body(LexiconUpdate)
    )
    return LexiconPublic.from_entity(updated)


@api.route("/lexicons/<lexicon_id>", methods=["DELETE"], status=204)
def delete_lexicon(ctx: RequestContext, lexicon_id: str) -> Reply:
    """Delete a lexicon and all its versions."""
    service.delete_lexicon(ctx.container.deps(LEXICONS), ctx.user_id, lexicon_id)
    return Reply(status=204)


@functions_framework.http
def lexicons(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
