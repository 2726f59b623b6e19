"""The embedded cloner: the samples capability's voice match, honestly not a clone.

eSpeak NG cannot sound like a person. Offline, the best this cloner does is what the
embedded trainer does (``shared.samples.training.voice_match``, reached through
``shared.samples.cloning``, the one module of the samples capability pre-call cloning
uses): among every eSpeak variant of the voice's language, take the five whose speaker
embeddings are nearest the caller's, fit each one's pitch and speed to the caller's
median pitch and articulation rate, and keep the one that then sounds nearest. A clone
therefore speaks with exactly the voice and prosody a voice-match model trained from the
same sample would.

- **The target.** A sample of the samples capability (``sampleId``) brings the speaker
  embedding and prosody its processing stored; a URL sample's are measured here, the same
  way (decode, resemblyzer embedding, prosody with the stored rounding; ~0.3 s for 7 s).
- **The voice table** (every variant reading a reference text, measured) is built once
  per language, engine and encoder and kept in the models bucket and in memory: the
  first clone ever of a language builds it (30-60 s on two busy cores: say so, or warm it
  with ``VoiceMatcher.store_table``); the first clone in a fresh process reads it from
  the bucket (tens of milliseconds); later ones find it in memory.
- **The match** renders five candidates three times each and embeds them: ~2 s.

The clone is that eSpeak voice: ``provider="espeak"``, ``providerVoiceId`` e.g.
``en-US+f3``, its language, pitch and speed, and a fresh ``clonedVoiceId`` (``vm-...``).
Nothing is made at a provider, so ``delete`` has nothing to give back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ConfigurationError, PlatformError
from shared.model import new_id
from shared.precall.cloners import ClonedVoice, CloneFailedError, CloneRequest
from shared.providers.base import ProviderError
from shared.samples.cloning import (
    NoSpeechError,
    TrainingFailedError,
    VoiceMatcher,
    VoiceTarget,
    build_voice_matcher,
    recording_target,
)

if TYPE_CHECKING:
    from shared.blobs.base import ObjectStorage
    from shared.config import Settings
    from shared.providers.registry import ProviderRegistry

PROVIDER = "espeak"
CLONE_ID_PREFIX = "vm-"


class VoiceMatchCloner:
    """Matches an eSpeak voice to the sample (see the module docstring)."""

    provider = PROVIDER

    def __init__(self, matcher: VoiceMatcher, settings: Settings) -> None:
        self._matcher = matcher
        self._settings = settings

    @classmethod
    def from_settings(
        cls, settings: Settings, providers: ProviderRegistry, blobs: ObjectStorage
    ) -> VoiceMatchCloner:
        """Return the cloner over eSpeak, the speaker encoder and the models bucket.

        Raises ConfigurationError: eSpeak is not enabled or the encoder's weights are missing.
        """
        return cls(build_voice_matcher(settings, providers, blobs), settings)

    def clone(self, request: CloneRequest) -> ClonedVoice:
        """Return the matched eSpeak voice with its fitted pitch and speed.

        Raises CloneFailedError: the recording is not audio or holds no speech, eSpeak has
        no voice of its language (permanent), or eSpeak failed (retryable when transient).
        """
        target = request.target or self._measure(request)
        try:
            match = self._matcher.match(target)
        except TrainingFailedError as exc:
            raise CloneFailedError(exc.reason, retryable=False) from exc
        except ProviderError as exc:
            reason = f"eSpeak NG failed while matching the voice: {exc.message}"
            raise CloneFailedError(reason, retryable=exc.retryable) from exc
        except ConfigurationError as exc:
            raise CloneFailedError(exc.message, retryable=False) from exc
        voice = match.voice
        return ClonedVoice(
            cloned_voice_id=f"{CLONE_ID_PREFIX}{new_id()}",
            provider=PROVIDER,
            provider_voice_id=voice.voice_id,
            language=voice.language,
            pitch=voice.pitch,
            speed=voice.speed,
        )

    def delete(self, provider_voice_id: str) -> None:
        """Do nothing: an eSpeak voice is not made per clone."""
        del provider_voice_id

    def warm(self, language: str) -> None:
        """Make sure the voice table of ``language`` is in the models bucket (and memory).

        Raises CloneFailedError: eSpeak has no voice for it, or failed.
        """
        try:
            self._matcher.store_table(self._matcher.base_voice(language))
        except TrainingFailedError as exc:
            raise CloneFailedError(exc.reason, retryable=False) from exc
        except ProviderError as exc:
            raise CloneFailedError(exc.message, retryable=exc.retryable) from exc

    def _measure(self, request: CloneRequest) -> VoiceTarget:
        try:
            return recording_target(request.audio, self._settings, request.language)
        except NoSpeechError as exc:
            raise CloneFailedError("No speech found in the sample", retryable=False) from exc
        except ConfigurationError as exc:  # the speaker encoder's weights are missing
            raise CloneFailedError(exc.message, retryable=False) from exc
        except PlatformError as exc:
            reason = f"The sample cannot be decoded: {exc.message}"
            raise CloneFailedError(reason, retryable=False) from exc
