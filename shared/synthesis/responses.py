"""The API body of a synthesis: the job and, once finished, its file and timestamps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.synthesis.model import ResolvedVoice, SynthesisJob, SynthesisResponse

if TYPE_CHECKING:
    from shared.files.model import AudioFile
    from shared.synthesis.deps import SynthesisDeps

RESPONSE_FIELDS = "responseFields"
"""The job config's fields of its answer that the job's own fields do not say."""
TURN_LENGTHS = "turnLengths"
"""The job config's lengths of a dialogue's turns, whose texts joined by line breaks are
the job's text: its words span their own turn's text."""
TEXT_LEADS = "textLeads"
"""The job config's whitespace sent before its text (each turn's), which parsing stripped
from the job's text: the spans of its words count it."""


def response_for(
    deps: SynthesisDeps,
    job: SynthesisJob,
    voice: ResolvedVoice,
    *,
    audio_file: AudioFile | None = None,
    timestamps: dict[str, Any] | None = None,
    download_url: bool = True,
) -> SynthesisResponse:
    """Return the API body of ``job`` and, when finished, its file (with a signed
    ``downloadUrl`` unless ``download_url`` is False).

    Everything but the file's details and timestamps comes from the job itself, so the
    answer of the request that made it, ``GET /synthesis/jobs/{id}``, the job's line in
    the list and its callback say the same.
    """
    body = SynthesisResponse(
        job_id=job.id,
        status=job.status,
        voice=job.voice_model_id or voice.label,
        provider=voice.provider,
        format=job.output_format,
        cache_hit=job.cache_hit,
        billed_characters=job.billed_characters,
        cost=job.cost,
        unapplied=list(job.unapplied),
        progress=job.progress,
        estimated_duration=job.estimated_duration,
        error=job.error_message,
        created_at=job.created_at,
        completed_at=job.completed_at,
        lexicons=list(job.config.get("lexicons") or []),
        unapplied_rules=list(job.config.get("unappliedRules") or []),
    )
    if audio_file is not None:
        # Object storage loads with the first finished job shown, not with a list of jobs.
        from shared.files.storage import download_url as signed_url  # noqa: PLC0415

        body.audio_file_id = audio_file.id
        if download_url:
            body.download_url, body.download_url_expires_at = signed_url(deps.audio, audio_file)
        body.duration = audio_file.duration
        body.sample_rate = audio_file.sample_rate
        body.size = audio_file.file_size
        body.checksum = audio_file.checksum
        body.expires_at = audio_file.expires_at
        body.timestamps = timestamps
    # A dialogue shows itself as one (its voice "dialogue", its mode and any fallback).
    shown = job.config.get(RESPONSE_FIELDS)
    return body.model_copy(update=shown) if shown else body
