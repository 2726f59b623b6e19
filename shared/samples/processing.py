"""The ``samples.process`` task: analyse a sample's audio and store what was learned.

``process_sample`` moves an ``uploaded`` sample to ``processing``, reads its object,
analyses it (``shared.samples.analysis``) and then, in one transaction, marks it ``ready``
with its facts, quality and prosody and stores its speaker embedding in
``voice_embeddings``. Audio it cannot use fails the sample with the reason the user
sees. Delivery is at least once, so it is idempotent: a sample already ``ready`` or
``failed``, deleted meanwhile or still awaiting its upload is left as it is; one found
``processing`` (an attempt that died) is processed again. Transient errors (storage,
store) propagate so the queue retries; on the last attempt the sample fails instead of
staying ``processing`` forever.
"""

from __future__ import annotations

import logging

from shared.errors import (
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PlatformError,
    UnsupportedMediaTypeError,
)
from shared.samples.analysis import Analysis, analyse_audio
from shared.samples.deps import SampleDeps
from shared.samples.model import SampleStatus, VoiceSample
from shared.samples.repository import (
    VOICE_EMBEDDINGS,
    VOICE_SAMPLES,
    SampleRepository,
    embedding_document,
)
from shared.store.base import Transaction

logger = logging.getLogger(__name__)

GAVE_UP = "Processing failed; upload the sample again"


def process_sample(deps: SampleDeps, sample_id: str, *, last_attempt: bool = False) -> None:
    """Analyse the sample and store the results (see the module docstring).

    Raises what a retry may cure (ServiceUnavailableError and other unexpected errors);
    on ``last_attempt`` the sample is failed first.
    """
    sample = _start(deps, sample_id)
    if sample is None:
        return
    try:
        data = deps.blobs.get(deps.bucket, sample.file_path)
        analysis = analyse_audio(data, deps.settings, deps.encoder())
        # Inside the try: a result the sample cannot store must not leave it processing.
        _finish(deps, sample_id, analysis)
    except NotFoundError:
        _fail(deps, sample_id, "The uploaded audio is missing; upload the sample again")
        return
    except PlatformError as exc:
        if _is_the_audios_fault(exc):
            _fail(deps, sample_id, exc.message)
            return
        if last_attempt:
            _fail(deps, sample_id, GAVE_UP)
        raise
    except Exception:
        if last_attempt:
            _fail(deps, sample_id, GAVE_UP)
        raise


def _is_the_audios_fault(error: PlatformError) -> bool:
    # 4xx errors of the analysis (format, damage, duration, no speech) say what is wrong
    # with the audio; configuration and availability errors are the platform's.
    return isinstance(error, InvalidRequestError | PayloadTooLargeError | UnsupportedMediaTypeError)


def _start(deps: SampleDeps, sample_id: str) -> VoiceSample | None:
    """Move the sample to PROCESSING; return it, or None when there is nothing to do."""

    def start(tx: Transaction) -> VoiceSample | None:
        sample = SampleRepository.tx_get(tx, sample_id)
        if sample is None:
            return None
        if sample.status is SampleStatus.PROCESSING:
            return sample  # an earlier attempt died here: do the work again
        if sample.status is not SampleStatus.UPLOADED:
            return None
        processing = sample.start_processing()
        tx.set(VOICE_SAMPLES, sample_id, processing.to_document())
        return processing

    sample = deps.store.run_transaction(start)
    if sample is None:
        logger.info("Sample %s needs no processing", sample_id)
    return sample


def _finish(deps: SampleDeps, sample_id: str, analysis: Analysis) -> None:
    def finish(tx: Transaction) -> None:
        sample = SampleRepository.tx_get(tx, sample_id)
        if sample is None or sample.status is not SampleStatus.PROCESSING:
            return  # deleted (or settled) meanwhile: store no embedding for it
        ready = sample.mark_ready(
            quality_score=analysis.quality.score,
            voice_embedding_id=sample_id,
            **analysis.facts(),
        )
        tx.set(VOICE_SAMPLES, sample_id, ready.to_document())
        tx.set(VOICE_EMBEDDINGS, sample_id, embedding_document(ready, analysis.embedding))

    deps.store.run_transaction(finish)


def _fail(deps: SampleDeps, sample_id: str, reason: str) -> None:
    def fail(tx: Transaction) -> None:
        sample = SampleRepository.tx_get(tx, sample_id)
        if sample is None or sample.status is not SampleStatus.PROCESSING:
            return
        tx.set(VOICE_SAMPLES, sample_id, sample.mark_failed(reason).to_document())

    logger.info("Sample %s failed: %s", sample_id, reason)
    deps.store.run_transaction(fail)
