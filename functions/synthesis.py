"""The ``synthesis`` function: text to speech, multi-role dialogues, and async job status.

``POST /synthesize`` answers short texts at once (200) and turns long ones into a job
(202) whose status ``GET /synthesis/jobs/{id}`` shows; ``POST /synthesize/dialogue``
speaks a multi-role dialogue natively or turn by turn.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.http import Api, Reply, RequestContext
from shared.synthesis import CAPABILITY as SYNTHESIS
from shared.synthesis import jobs as synthesis_jobs
from shared.synthesis.dialogue import DialogueRequest, synthesize_dialogue
from shared.synthesis.model import SynthesisResponse, SynthesisStatus, SynthesizeRequest
from shared.synthesis.synthesize import synthesize

api = Api("synthesis")


def _reply(body: SynthesisResponse) -> Reply:
    finished = body.status in (SynthesisStatus.COMPLETED, SynthesisStatus.FAILED)
    headers = {} if finished else {"Location": f"/synthesis/jobs/{body.job_id}"}
    return Reply(body, status=200 if finished else 202, headers=headers)


@api.route("/synthesize", methods=["POST"], body=SynthesizeRequest, response=SynthesisResponse)
def synthesize_text(ctx: RequestContext) -> Reply:
    """Synthesize text or SSML: the file at once for short texts, an async job for long ones."""
    deps = ctx.container.deps(SYNTHESIS)
    body = ctx.body(SynthesizeRequest)
    return _reply(synthesize(deps, ctx.user_id, body, account_id=ctx.principal.account_id))


@api.route(
    "/synthesize/dialogue", methods=["POST"], body=DialogueRequest, response=SynthesisResponse
)
def synthesize_dialogue_turns(ctx: RequestContext) -> Reply:
    """Synthesize a multi-role dialogue, natively when the provider can, else turn by turn."""
    deps = ctx.container.deps(SYNTHESIS)
    body = ctx.body(DialogueRequest)
    account_id = ctx.principal.account_id
    return _reply(synthesize_dialogue(deps, ctx.user_id, body, account_id=account_id))


@api.route("/synthesis/jobs/<job_id>", methods=["GET"], response=SynthesisResponse)
def get_synthesis_job(ctx: RequestContext, job_id: str) -> SynthesisResponse:
    """Return a synthesis job: status, progress 0..1, estimated duration, and its file."""
    deps = ctx.container.deps(SYNTHESIS)
    return synthesis_jobs.job_status(deps, ctx.user_id, job_id)


@functions_framework.http
def synthesis(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
