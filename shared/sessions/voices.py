"""The voice a session speaks with: the one its config names, else the user's active model.

``VoiceModelResolver`` is the ``VoiceResolver`` the service runs with. It uses the
synthesis capability's own voice resolution (``resolve_voice`` and ``provider_for``), so a
session speaks exactly as ``POST /synthesize`` would for the same user:

- ``provider:voice`` in the config: that voice of the catalog (the pipeline already checked
  the provider is the session's TTS provider); one the catalog does not have is refused
  with ``VOICE_NOT_FOUND`` at start, as ``POST /synthesize`` refuses it, not at the first
  reply (a provider whose voices were never synced here: its voice id, as given);
- ``clone:{clonedVoiceId}``: a pre-call clone of the account that is the session's user,
  through the clone cache as synthesis resolves it (an expired clone is refused);
- another name: a voice model the user owns or was granted with that id, else a voice of
  the default TTS provider (``"en-US"`` is eSpeak's American English);
- nothing: the user's active voice model, when they have one that is trained and whose
  engine a provider of this deployment runs; otherwise the service's default voice (a
  session never fails to start because a model is still training: it is logged instead).
  A config naming ``pipeline.ttsProvider`` and no voice speaks with that provider's
  default voice instead when the model's is another's (``default_of``; the decision is
  ``LiveSession._resolve_voice``'s).

The store is read on a worker thread; the voice-model dependencies are built on first use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.errors import (
    ProviderNotConfiguredError,
    VoiceModelNotFoundError,
    VoiceModelNotReadyError,
    VoiceRequiredError,
)
from shared.providers import ProviderRegistry
from shared.sessions.tts import VoiceChoice, no_default_voice

if TYPE_CHECKING:
    from shared.voice_models.deps import VoiceModelDeps

logger = logging.getLogger(__name__)


class VoiceModelResolver:
    """Resolves session voices through the synthesis capability; see the module docstring."""

    def __init__(
        self,
        voice_models: Callable[[], VoiceModelDeps],
        providers: ProviderRegistry,
        *,
        default_provider: str,
        default_voice: str,
    ) -> None:
        self._voice_models = voice_models
        self._providers = providers
        self._default = VoiceChoice(default_provider, default_voice)

    async def resolve(self, user_id: str, requested: str | None) -> VoiceChoice:
        """Return the voice for ``user_id``'s session.

        Raises:
            VoiceNotFoundError: the catalog has no such ``provider:voice``.
            VoiceModelNotReadyError: the named voice model has not finished training.
            ProviderNotConfiguredError: the named voice model's engine runs nowhere here.
        """
        return await asyncio.to_thread(self._resolve_blocking, user_id, requested)

    async def default_of(self, provider: str, language: str) -> VoiceChoice:
        """Return ``provider``'s default voice for ``language`` (the catalog's choice, as for
        a language tag in ``POST /synthesize``).

        Raises:
            InvalidRequestError: the catalog has none (and the provider is not the default's).
        """
        return await asyncio.to_thread(self._default_blocking, provider, language)

    def _default_blocking(self, provider: str, language: str) -> VoiceChoice:
        from shared.synthesis.voices import catalog_of, default_voice_for_language  # noqa: PLC0415

        found = default_voice_for_language(
            language,
            catalog=catalog_of(self._voice_models()),
            providers=self._providers,
            only_provider=provider,
        )
        if found is not None:
            return VoiceChoice(found.provider, found.voice_id)
        if provider == self._default.provider:
            return self._default
        raise no_default_voice(provider, language)

    def _resolve_blocking(self, user_id: str, requested: str | None) -> VoiceChoice:
        # Imported on first use: the synthesis capability is not needed to start the service.
        from shared.synthesis.voices import provider_for, resolve_voice  # noqa: PLC0415

        deps = self._voice_models()
        if requested:
            try:
                resolved = resolve_voice(
                    deps, self._providers, user_id, requested, unsynced_as_given=True
                )
            except VoiceModelNotFoundError:
                return VoiceChoice(self._default.provider, requested)
            provider_for(self._providers, resolved)
            return VoiceChoice(resolved.provider, resolved.voice_id)
        try:
            resolved = resolve_voice(deps, self._providers, user_id, None)
            provider_for(self._providers, resolved)
        except VoiceRequiredError:
            return self._default
        except (VoiceModelNotReadyError, ProviderNotConfiguredError) as exc:
            logger.warning(
                "The user's active voice model cannot speak; using the default voice",
                extra={"fields": {"userId": user_id, "reason": exc.message}},
            )
            return self._default
        return VoiceChoice(resolved.provider, resolved.voice_id)
