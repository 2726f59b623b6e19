"""What other capabilities may use of voice samples to clone a voice: pre-call cloning's port.

Pre-call cloning (``shared.precall``) reaches the samples capability through this module
only (the import-linter contracts in ``pyproject.toml`` name the edge), for three things:

- ``sample_for_cloning``: a stored sample of one of the given owners, with the facts its
  processing measured (format, size, duration, language, and the ``VoiceTarget``: its
  speaker embedding, median pitch and articulation rate) and its audio on demand. A
  sample of anyone else is ``SampleNotFoundError``, exactly as a missing one (ids cannot
  be probed); a sample still awaiting its upload, still processing, or whose processing
  failed is ``SampleNotReadyError`` saying which, and why for a failure.
- ``recording_target``: the ``VoiceTarget`` of a recording that is not a stored sample (a
  pre-call ``gs://`` or ``s3://`` sample), measured exactly as processing measures a
  sample (the same encoder, prosody measurement and stored rounding).
- ``build_voice_matcher``: the voice match the embedded trainer uses
  (``shared.samples.training.voice_match``), over the same voice table cached in the models
  bucket and in memory, so a pre-call clone speaks with the voice and fitted prosody a
  voice-match model trained from the same sample would.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.audio.decoding import decode
from shared.audio.prosody import measure_prosody
from shared.audio.speaker_encoder import NoSpeechError, default_encoder
from shared.errors import ConfigurationError, NotFoundError, echoed
from shared.samples.analysis import prosody_of
from shared.samples.errors import SampleNotFoundError, SampleNotReadyError
from shared.samples.model import CONTENT_TYPES, SampleFormat, SampleStatus, VoiceSample
from shared.samples.repository import SampleRepository
from shared.samples.training.trainer import TrainingFailedError, VoiceTarget
from shared.samples.training.voice_match import TRAINER, VoiceMatch, VoiceMatcher

if TYPE_CHECKING:
    from shared.blobs.base import ObjectStorage
    from shared.config import Settings
    from shared.providers.registry import ProviderRegistry
    from shared.store.base import DocumentStore

__all__ = [
    "TRAINER",
    "ClonableSample",
    "NoSpeechError",
    "SampleNotFoundError",
    "SampleNotReadyError",
    "TrainingFailedError",
    "VoiceMatch",
    "VoiceMatcher",
    "VoiceTarget",
    "build_voice_matcher",
    "recording_target",
    "sample_for_cloning",
]


@dataclass(frozen=True)
class ClonableSample:
    """A ready sample: what processing measured of it (quality 0-10), and its audio."""

    id: str
    owner_id: str
    language: str
    format: SampleFormat
    content_type: str
    size_bytes: int
    duration_seconds: float
    quality_score: float
    target: VoiceTarget
    _blobs: ObjectStorage
    _bucket: str
    _path: str

    def audio(self) -> bytes:
        """Return the sample's audio file.

        Raises SampleNotFoundError when its object is gone (deleted meanwhile).
        """
        try:
            return self._blobs.get(self._bucket, self._path)
        except NotFoundError as exc:
            raise SampleNotFoundError(f"The audio of voice sample {self.id} is gone") from exc


def sample_for_cloning(
    store: DocumentStore,
    blobs: ObjectStorage,
    settings: Settings,
    sample_id: str,
    *,
    owners: Collection[str],
) -> ClonableSample:
    """Return the sample ``sample_id`` if one of ``owners`` owns it and it is ready.

    Raises SampleNotFoundError (no such sample, or not theirs) or SampleNotReadyError
    (awaiting its upload, processing, or failed: the message says which).
    """
    repository = SampleRepository(store)
    sample = repository.get(sample_id)
    if sample is None or sample.user_id not in owners:
        raise SampleNotFoundError(f"Voice sample not found or access denied: {echoed(sample_id)}")
    _check_ready(sample)
    embedding = repository.embedding(sample_id)
    if embedding is None or sample.format is None or sample.duration is None:
        raise SampleNotReadyError(f"Voice sample {sample_id} has no speaker embedding yet")
    return ClonableSample(
        id=sample.id,
        owner_id=sample.user_id,
        language=sample.language,
        format=sample.format,
        content_type=CONTENT_TYPES[sample.format],
        size_bytes=sample.size_bytes,
        duration_seconds=sample.duration,
        quality_score=sample.quality_score or 0.0,
        target=VoiceTarget.of([embedding], [sample.prosody], sample.language),
        _blobs=blobs,
        _bucket=settings.samples_bucket,
        _path=sample.file_path,
    )


def _check_ready(sample: VoiceSample) -> None:
    if sample.status is SampleStatus.READY:
        return
    if sample.status is SampleStatus.FAILED:
        reason = sample.failure_reason or "no reason recorded"
        raise SampleNotReadyError(
            f"Voice sample {sample.id} failed processing ({reason}); upload it again"
        )
    if sample.status is SampleStatus.AWAITING_UPLOAD:
        raise SampleNotReadyError(
            f"Voice sample {sample.id} is still awaiting its upload; "
            "use it once it is uploaded and processed"
        )
    raise SampleNotReadyError(
        f"Voice sample {sample.id} is still being processed ({sample.status.value}); "
        "try again in a few seconds"
    )


def recording_target(data: bytes, settings: Settings, language: str) -> VoiceTarget:
    """Return the voice-match target of a recording, measured as processing measures one.

    Raises UnsupportedAudioFormatError or CorruptAudioError (not audio), NoSpeechError
    (no speech the encoder can find), SpeakerEncoderUnavailableError (no weights).
    """
    audio = decode(data)
    encoder = default_encoder(settings.speaker_encoder_weights)
    embedding = encoder.embed(audio.samples, audio.sample_rate)
    prosody = prosody_of(measure_prosody(audio.samples, audio.sample_rate))
    return VoiceTarget.of([embedding], [prosody], language)


def build_voice_matcher(
    settings: Settings, providers: ProviderRegistry, blobs: ObjectStorage
) -> VoiceMatcher:
    """Return the voice match over eSpeak, the speaker encoder and the models bucket.

    Raises ConfigurationError: eSpeak is not enabled, or the encoder's weights are missing.
    """
    from shared.providers.espeak import EspeakProvider  # noqa: PLC0415 - ctypes: on first use

    try:
        espeak = providers.get("espeak")
    except NotFoundError as exc:
        raise ConfigurationError("The voice match needs eSpeak NG (VOICE_PROVIDERS)") from exc
    if not isinstance(espeak, EspeakProvider):
        raise ConfigurationError("The voice match needs eSpeak NG (VOICE_PROVIDERS)")
    encoder = default_encoder(settings.speaker_encoder_weights)
    return VoiceMatcher(espeak, encoder, blobs=blobs, bucket=settings.models_bucket)
