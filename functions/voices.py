"""The ``voices`` function: the provider voice catalog and its providers.

Users list and read voices and providers. Syncing the catalog is the ``sync_voices``
function's (``functions/sync_voices.py``).
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.catalog import listing as catalog
from shared.http import Api, RequestContext, page_body
from shared.providers.voices import VoiceProfile

api = Api("voices")


@api.route("/voices", methods=["GET"], query=catalog.VoiceListQuery)
def list_voices(ctx: RequestContext) -> dict[str, Any]:
    """List catalog voices: filtered, searched, sorted; deprecated ones only when asked for."""
    voices, cursor = catalog.list_voices(
        store=ctx.container.store, query=ctx.query(catalog.VoiceListQuery)
    )
    return page_body("voices", voices, cursor)


@api.route("/voices/providers", methods=["GET"])
def list_providers(ctx: RequestContext) -> dict[str, Any]:
    """List the enabled providers: capabilities, voice count, last sync and job status."""
    summaries = catalog.provider_summaries(
        store=ctx.container.store, providers=ctx.container.providers
    )
    return {"providers": summaries}


@api.route("/voices/<voice_id>", methods=["GET"], response=VoiceProfile)
def get_voice(ctx: RequestContext, voice_id: str) -> VoiceProfile:
    """Return one voice by its ``provider:voice_id`` (deprecated ones too)."""
    return catalog.get_voice(store=ctx.container.store, voice_id=voice_id)


@functions_framework.http
def voices(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
