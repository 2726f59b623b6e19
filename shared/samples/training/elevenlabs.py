"""ElevenLabs instant voice cloning: a provider-side trainer.

The samples' recordings go to ElevenLabs (``POST /v1/voices/add``), which answers with a
voice id of the user's account; the model is that voice. Its quality is measured as for
any trainer, by synthesizing the test sentences with it through the ElevenLabs provider
(``shared.samples.training.evaluation``). The new voice id is remembered (``clone.json``
under the model's folder) before anything else can fail, so a retried task does not clone
the voice twice.
"""

from __future__ import annotations

import json

from shared.audio.speaker_encoder import SpeakerEncoder
from shared.providers.base import ProviderError
from shared.providers.elevenlabs import ElevenLabsProvider
from shared.samples.model import SampleFormat
from shared.samples.training.artifacts import MODEL_FILE, PREVIEW_FILE, TrainedVoice
from shared.samples.training.evaluation import evaluate
from shared.samples.training.trainer import TrainingFailedError, TrainingInput, TrainingOutcome

TRAINER = "elevenlabs-instant"
CLONE_FILE = "clone.json"
EXTENSIONS = {SampleFormat.WAV: "wav", SampleFormat.MP3: "mp3", SampleFormat.FLAC: "flac"}


class ElevenLabsCloningTrainer:
    """Clones the samples' voice at ElevenLabs."""

    name = TRAINER

    def __init__(self, provider: ElevenLabsProvider, encoder: SpeakerEncoder) -> None:
        self._provider = provider
        self._encoder = encoder

    def train(self, job: TrainingInput) -> TrainingOutcome:
        """Return the cloned voice and its measured quality.

        Raises TrainingFailedError when ElevenLabs refuses the request for good (a bad key,
        unusable recordings), and ProviderError when it may succeed later.
        """
        voice_id = self._voice_id(job)
        voice = TrainedVoice(voice_id=voice_id, language=job.language)
        try:
            evaluation = evaluate(
                self._provider, voice, job.mean_embedding(), self._encoder, engine="elevenlabs"
            )
        except ProviderError as exc:
            if exc.retryable:
                raise
            raise TrainingFailedError(f"ElevenLabs cannot speak with the new voice: {exc}") from exc
        model = {"engine": "elevenlabs", "trainer": TRAINER, **voice.to_api()}
        return TrainingOutcome(
            provider="elevenlabs",
            trainer=TRAINER,
            voice=voice,
            components=evaluation.components,
            metrics={**evaluation.metrics, "samples": len(job.samples)},
            sample_rate=44_100,
            files={
                MODEL_FILE: (json.dumps(model, indent=2).encode(), "application/json"),
                PREVIEW_FILE: (evaluation.preview_wav, "audio/wav"),
            },
        )

    def _voice_id(self, job: TrainingInput) -> str:
        remembered = job.recall(CLONE_FILE)
        if remembered is not None:
            voice_id = json.loads(remembered).get("voiceId")
            if isinstance(voice_id, str) and voice_id:
                return voice_id
        files = []
        for item in job.samples:
            sample = item.sample
            extension = EXTENSIONS.get(sample.format or SampleFormat.WAV, "ogg")
            files.append(
                (
                    f"{sample.id}.{extension}",
                    job.read_audio(sample),
                    sample.content_type or "application/octet-stream",
                )
            )
        name = job.model.name or f"Voice {job.model.id[:8]}"
        try:
            voice_id = self._provider.add_voice(
                name,
                files,
                description=f"Cloned from {len(files)} samples (voice model {job.model.id})",
                labels={"language": job.language},
            )
        except ProviderError as exc:
            if exc.retryable:
                raise
            raise TrainingFailedError(f"ElevenLabs refused to clone the voice: {exc}") from exc
        job.remember(CLONE_FILE, json.dumps({"voiceId": voice_id}).encode())
        return voice_id
