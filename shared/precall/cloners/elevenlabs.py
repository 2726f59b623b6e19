"""Pre-call clones at ElevenLabs: instant voice cloning through the ElevenLabs provider.

One client speaks to ElevenLabs for every purpose: ``shared.providers.elevenlabs``
(``add_voice`` is ``POST /v1/voices/add``, multipart; ``delete_voice`` is
``DELETE /v1/voices/{id}``), the same one training's ElevenLabs trainer clones with and
synthesis speaks the clone with. This module only turns its outcomes into the cloner's
terms: a voice id, or ``CloneFailedError`` with the provider's reason (the HTTP status and
ElevenLabs' own ``status: message``, a timeout with its limit; never the key) and whether
a later attempt may succeed (timeouts, refused connections, 408, 429 and 5xx may; any other
4xx and a malformed answer will not). Deleting a voice ElevenLabs no longer has counts as
deleted.

The provider is the registry's when ``elevenlabs`` is among ``VOICE_PROVIDERS`` (synthesis
with the clones needs it there); otherwise one is built from the same settings, so voices
made before the cloner or the providers changed can still be given back.
"""

from __future__ import annotations

import logging

from shared.config import Settings
from shared.errors import ConfigurationError
from shared.precall.cloners import ClonedVoice, CloneFailedError, CloneRequest
from shared.providers.base import ProviderError
from shared.providers.elevenlabs import NAME, ElevenLabsProvider
from shared.providers.registry import ProviderRegistry

logger = logging.getLogger(__name__)

PROVIDER = NAME
MAX_REASON_CHARS = 300


class ElevenLabsCloner:
    """Clones voices at ElevenLabs through the ElevenLabs provider."""

    provider = PROVIDER

    def __init__(self, elevenlabs: ElevenLabsProvider) -> None:
        self._elevenlabs = elevenlabs

    def __repr__(self) -> str:
        return f"ElevenLabsCloner({self._elevenlabs!r})"

    @classmethod
    def from_settings(cls, settings: Settings, providers: ProviderRegistry) -> ElevenLabsCloner:
        """Return the cloner for the configured ElevenLabs account.

        Raises ConfigurationError: no ``VOICE_ELEVENLABS_API_KEY``.
        """
        if PROVIDER in providers:
            found = providers.get(PROVIDER)
            if isinstance(found, ElevenLabsProvider):
                return cls(found)
        if settings.elevenlabs_api_key is None:
            raise ConfigurationError(
                "Pre-call cloning with ElevenLabs needs its API key (VOICE_ELEVENLABS_API_KEY)"
            )
        return cls(
            ElevenLabsProvider(
                api_key=settings.elevenlabs_api_key.get_secret_value(),
                base_url=settings.elevenlabs_base_url,
                model_id=settings.elevenlabs_model,
                timeout=settings.provider_timeout_seconds,
            )
        )

    def clone(self, request: CloneRequest) -> ClonedVoice:
        """Return the new ElevenLabs voice made from ``request``'s recording.

        Raises CloneFailedError (retryable for timeouts, 408, 429, 5xx).
        """
        try:
            voice_id = self._elevenlabs.add_voice(
                request.name,
                [(request.filename, request.audio, request.content_type)],
                description=request.description,
                labels=request.labels,
            )
        except ProviderError as exc:
            raise _failed(exc) from exc
        # No language: ElevenLabs' multilingual model hears it in the text it is given.
        return ClonedVoice(cloned_voice_id=voice_id, provider=PROVIDER, provider_voice_id=voice_id)

    def delete(self, provider_voice_id: str) -> None:
        """Delete the voice; one ElevenLabs no longer has counts as deleted.

        Raises CloneFailedError for any other failure (the expiry job tries again).
        """
        try:
            deleted = self._elevenlabs.delete_voice(provider_voice_id)
        except ProviderError as exc:
            raise _failed(exc) from exc
        if not deleted:
            logger.info("ElevenLabs voice %s was already gone", provider_voice_id)

    def warm(self, language: str) -> None:
        """Do nothing: ElevenLabs clones need nothing prepared."""
        del language


def _failed(error: ProviderError) -> CloneFailedError:
    return CloneFailedError(error.message[:MAX_REASON_CHARS], retryable=error.retryable)
