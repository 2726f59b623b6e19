"""Which provider and provider voice a synthesis speaks with: one naming for every route.

``/synthesize``, ``/synthesize/stream``, ``/synthesize/dialogue``, ``/v1/audio/speech`` and
a voice model's ``metadata.voiceId`` accept the same voice names (``ACCEPTED_FORMS``),
resolved in this order by ``resolve_voice``:

1. ``provider:voiceId``: a catalog voice, in any case (``espeak:en-us`` is
   ``espeak:en-US``);
2. an OpenAI voice name (``alloy``, ``nova``, ...): the catalog voice or voice model
   ``openai_speech_voices`` maps it to;
3. a language tag (``en-US``, ``fr``, ``EN-gb``): that language's default voice, chosen by
   ``default_voice_for_language``, the one place a default voice is picked;
4. ``clone:{clonedVoiceId}``: a pre-call clone of the caller's account, through the clone
   cache (an expired clone is refused), with the pitch and speed its cloner fitted as
   defaults a request's own values override;
5. anything else is a voice model id: one the user owns or was granted.

No name at all means the user's active voice model.

A voice model resolves to audio thus (``voice_of_model``): its engine is a provider of
the registry (``MODEL_PROVIDERS``; an engine none runs here is 422); its voice is
``metadata.voiceId`` in any of the forms above, which must be a voice of that provider, or,
without one, the provider's default voice for ``metadata.language``; its ``sampleRate``
is the rate the audio is rendered at, and ``metadata.speed`` / ``pitch`` / ``volume`` the
model's own settings, each used unless the request sets it. A voice-match model (trained
from samples) names the eSpeak voice its trainer fitted, catalog-listed or not, with the
pitch and speed fitted to the samples (``shared.samples.matched_voice``). The engines here
speak their catalog voices and load no model files, so a model naming neither a voice nor
a language has nothing this deployment can speak with its ``modelPath``: it is refused
(``VoiceModelUnusableError``, 422) rather than spoken with some default voice.

A provider that is not enabled in this deployment, or enabled without its credentials, is
``ProviderNotConfiguredError`` (HTTP 422), never a 500.

Catalog reads (a voice by id, a language's candidate voices) go through
``shared.catalog.lookups``: on Firestore this instance reuses them for
``catalog_lookup_cache_seconds`` rather than paying a round trip on every request.

Voice-model code (the entity, its repository, sharing, the voice-match metadata) is
imported by the first name that needs a model, not with this module: a request naming a
catalog voice, an OpenAI voice mapped to one or a language loads none of it (a cold start
that speaks with a catalog voice does not pay for it).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from shared.catalog.lookups import CatalogLookups, catalog_lookups
from shared.catalog.repository import (
    VoiceFilters,
    VoiceNotFoundError,
    VoiceRepository,
    is_variant,
)
from shared.errors import (
    ConfigurationError,
    PlatformError,
    ProviderNotConfiguredError,
    VoiceModelNotFoundError,
    VoiceModelNotReadyError,
    VoiceModelUnusableError,
    VoiceRequiredError,
    echoed,
)
from shared.model import equivalent_languages, normalize_language_tag
from shared.precall.voices import clone_voice, is_clone_voice
from shared.providers.base import (
    MAX_PITCH,
    MAX_SPEED,
    MAX_VOLUME,
    MIN_PITCH,
    MIN_SPEED,
    MIN_VOLUME,
    UnknownProviderError,
)
from shared.providers.base import TTSProvider as Provider
from shared.providers.registry import ProviderRegistry
from shared.providers.voices import VoiceProfile
from shared.synthesis.model import ResolvedVoice

if TYPE_CHECKING:
    from shared.voice_models.deps import VoiceModelDeps
    from shared.voice_models.model import VoiceModel

MODEL_PROVIDERS: dict[str, str | None] = {
    "espeak": "espeak",
    "google-cloud-tts": "gcp",
    "openai-tts": "openai",
    "elevenlabs": "elevenlabs",
    "xtts-v2": None,  # no XTTS server is part of this platform
}
"""The registry provider that synthesizes each voice-model engine (``TTSProvider`` of
``shared.voice_models.model``, by value), None: none here."""

ACCEPTED_FORMS = (
    "a catalog voice as provider:voiceId (GET /voices), an OpenAI voice name such as alloy "
    "(GET /v1/audio/voices), a language tag such as en-US for that language's default "
    "voice, or the id of a voice model you own or that was shared with you"
)
"""The voice names every route accepts, as error messages list them."""

LIKELY_REGIONS: dict[str, str] = {
    "en": "en-US",
    "es": "es-ES",
    "fr": "fr-FR",
    "de": "de-DE",
    "pt": "pt-BR",
    "it": "it-IT",
    "nl": "nl-NL",
    "ja": "ja-JP",
    "ko": "ko-KR",
    "zh": "zh-CN",
    "ar": "ar-SA",
    "hi": "hi-IN",
    "ru": "ru-RU",
}
"""The region a bare language most likely means (CLDR's likely subtags), for defaults."""

_DEFAULT_CANDIDATES = 500
_MODEL_SETTINGS = ("speed", "pitch", "volume")
_SETTING_BOUNDS = {
    "speed": (MIN_SPEED, MAX_SPEED),
    "pitch": (MIN_PITCH, MAX_PITCH),
    "volume": (MIN_VOLUME, MAX_VOLUME),
}


def resolve_voice(
    deps: VoiceModelDeps,
    providers: ProviderRegistry,
    user_id: str,
    voice: str | None,
    *,
    account_id: str | None = None,
    unsynced_as_given: bool = False,
) -> ResolvedVoice:
    """Return the provider voice ``voice`` names (see the module's order), None: active model.

    ``account_id`` is the caller's account (clones belong to one; default the user's own).
    ``unsynced_as_given``: a ``provider:voiceId`` of a provider none of whose voices were
    ever synced here is that voice id, as given (voice sessions, whose service may run
    before the catalog's first sync), rather than VoiceNotFoundError.
    Raises VoiceNotFoundError or VoiceModelNotFoundError (nothing by that name, the message
    listing the accepted forms), VoiceRequiredError (no voice and no active model),
    VoiceModelNotReadyError, VoiceModelUnusableError, ProviderNotConfiguredError,
    CloneNotFoundError or CloneExpiredError.
    """
    if voice is None:
        from shared.voice_models.repository import VoiceModelRepository  # noqa: PLC0415 - see the module docstring

        model = VoiceModelRepository(deps.store).active_for_user(user_id)
        if model is None:
            raise VoiceRequiredError(
                f"Name a voice or activate a voice model first. A voice is {ACCEPTED_FORMS}."
            )
        return voice_of_model(model, deps, providers)
    name = voice.strip()
    if is_clone_voice(name):
        clone = clone_voice(deps.store, account_id or user_id, name)
        prosody = {"pitch": clone.pitch, "speed": clone.speed}
        return ResolvedVoice(clone.provider, clone.voice_id, clone.language, defaults=prosody)
    try:
        found = named_voice(name, deps, providers)
    except VoiceNotFoundError:
        found = _unsynced(name, deps) if unsynced_as_given else None
        if found is None:
            raise
    if found is not None and not providers.builds(found.provider):
        # Chosen while its provider only looked ready (Piper's voice is loaded on first use,
        # not to choose one): its failure to load is remembered, so choosing again skips it.
        found = named_voice(name, deps, providers)
    if found is not None:
        return found
    from shared.voice_models.sharing import model_for_synthesis  # noqa: PLC0415 - see the module docstring

    try:
        model = model_for_synthesis(deps, user_id, name)
    except VoiceModelNotFoundError:
        raise VoiceModelNotFoundError(
            f"No voice or voice model {echoed(name)!r} here for you. A voice is {ACCEPTED_FORMS}."
        ) from None
    return voice_of_model(model, deps, providers)


def named_voice(
    name: str,
    deps: VoiceModelDeps,
    providers: ProviderRegistry,
    *,
    provider: str | None = None,
    defaults: DefaultVoices | None = None,
) -> ResolvedVoice | None:
    """Return the voice a catalog id, OpenAI voice name or language tag names, else None.

    ``provider`` limits a language's default to that provider's voices; ``defaults``
    remembers the defaults already looked up.
    Raises VoiceNotFoundError for a ``provider:voiceId`` the catalog does not have.
    """
    if ":" in name:
        profile = catalog_of(deps).voice(name)
        if profile is None:
            raise VoiceNotFoundError(
                f"Voice not found: {echoed(name)}. A voice is {ACCEPTED_FORMS}."
            )
        return _of_profile(profile)
    defaults = defaults or DefaultVoices(catalog_of(deps), providers)
    mapped = _openai_voice(deps, name)
    if mapped is not None:
        if ":" in mapped:
            return _neural_instead(named_voice(mapped, deps, providers), providers, defaults)
        return None if provider is not None else _mapped_model(deps, mapped, providers)
    language = _language_tag(name)
    if language is None:
        return None
    return defaults.of(language, only_provider=provider)


def openai_voices(
    deps: VoiceModelDeps, providers: ProviderRegistry
) -> list[tuple[str, str, ResolvedVoice | None]]:
    """Return each configured OpenAI voice name, its mapping and the voice it speaks with
    (None: the mapping names a voice or model that is gone). Each language's default voice
    is looked up once, however many names fall back to it."""
    defaults = DefaultVoices(catalog_of(deps), providers)
    found: list[tuple[str, str, ResolvedVoice | None]] = []
    for name, mapped in deps.settings.openai_speech_voices.items():
        try:
            voice = named_voice(name, deps, providers, defaults=defaults)
        except PlatformError:
            voice = None
        found.append((name, mapped, voice))
    return found


def catalog_of(deps: VoiceModelDeps) -> CatalogLookups:
    """Return the catalog reads of voice resolution on ``deps``' store (``shared.catalog.lookups``:
    remembered by this instance, for ``catalog_lookup_cache_seconds`` on Firestore)."""
    return catalog_lookups(deps.store, ttl_seconds=deps.settings.catalog_lookup_cache_seconds)


class DefaultVoices:
    """Each language's default voice (``default_voice_for_language``), looked up once.

    For the lookups of one request: a catalog sync between two of them is not seen.
    """

    def __init__(self, catalog: CatalogLookups, providers: ProviderRegistry) -> None:
        self._catalog = catalog
        self._providers = providers
        self._chosen: dict[tuple[str, str | None], ResolvedVoice | None] = {}

    def of(self, language: str, *, only_provider: str | None = None) -> ResolvedVoice | None:
        """Return ``language``'s default voice (of ``only_provider`` when given), or None."""
        key = (language.casefold(), only_provider)
        if key not in self._chosen:
            self._chosen[key] = default_voice_for_language(
                language,
                catalog=self._catalog,
                providers=self._providers,
                only_provider=only_provider,
            )
        return self._chosen[key]


def default_voice_for_language(
    language: str,
    *,
    catalog: CatalogLookups,
    providers: ProviderRegistry,
    only_provider: str | None = None,
) -> ResolvedVoice | None:
    """Return the default voice of ``language`` (a BCP 47 tag), or None when none speaks it.

    The one place a language's default voice is chosen: the first provider (only
    ``only_provider`` when given) with a catalog voice for it, or for its base language when
    none has the whole tag (``de-DE`` speaks German). Providers are tried in
    ``ProviderRegistry.default_order``: ``VOICE_DEFAULT_VOICE_PROVIDERS`` first (Piper's
    neural voice before eSpeak NG for English; Piper skipped when it does not load), then
    the other enabled providers. Among that provider's voices: a voice tagged exactly
    ``language`` before one of another region of it (for a bare language, its likely region
    first: ``en`` is ``en-US``), a base voice before a variant, the voice whose id is the
    tag itself first, then by id.
    """
    names = [only_provider] if only_provider else providers.default_order()
    for provider in names:
        found = tag_voice(catalog, provider, language) or ranked_default(
            catalog, provider, language
        )
        if found is not None:
            return _of_profile(found)
    return None


def tag_voice(catalog: CatalogLookups, provider: str, language: str) -> VoiceProfile | None:
    """Return ``provider``'s base voice whose id is ``language`` and that speaks exactly it.

    When there is one it is what ``ranked_default`` picks (it ranks first on every count),
    found by one read (of that exact id: a provider without one pays one read) instead of
    a query.
    """
    voice = catalog.voice(f"{provider}:{language}", exact=True)  # its voice id is the tag
    if (
        voice is None
        or voice.is_deprecated
        or voice.language != language  # as the query compares it
        or is_variant(voice)
    ):
        return None
    return voice


def ranked_default(catalog: CatalogLookups, provider: str, language: str) -> VoiceProfile | None:
    """Return ``provider``'s default voice for ``language`` by the ranking of
    ``default_voice_for_language``, among its voices of the tag (else of its base language).

    Base voices are looked at first: a variant speaks its base voice's language and ranks
    after it, so when a base voice speaks the language only variants of voices missing
    from the catalog could rank ahead (eSpeak lists every base voice). Otherwise, and for a
    catalog synced before voices stored ``is_base``, every voice of the language is ranked.
    """
    wanted = language.casefold()
    likely = LIKELY_REGIONS.get(wanted, "").casefold()
    # The language under its own code first, then under its others (zh: cmn, then yue).
    codes = [t.casefold().split("-")[0] for t in (language, *equivalent_languages(language))]

    def rank(voice: VoiceProfile) -> tuple[int, bool, bool, bool, bool, str]:
        tag = voice.language.casefold()
        code = tag.split("-")[0]
        return (
            codes.index(code) if code in codes else len(codes),
            tag != wanted,
            tag != likely,
            is_variant(voice),
            voice.voice_id.casefold() != tag,
            voice.id,
        )

    base = language.split("-", maxsplit=1)[0]
    for tag, base_only in itertools.product(dict.fromkeys((language, base)), (True, False)):
        filters = VoiceFilters(provider=provider, language=tag, base_only=base_only)
        voices = catalog.voices(filters, limit=_DEFAULT_CANDIDATES)
        if voices:
            return min(voices, key=rank)
    return None


def voice_of_model(
    model: VoiceModel, deps: VoiceModelDeps, providers: ProviderRegistry
) -> ResolvedVoice:
    """Return the provider voice and settings a voice model speaks with (module docstring).

    Raises VoiceModelNotReadyError (not completed), ProviderNotConfiguredError (an engine
    no provider here runs) or VoiceModelUnusableError (its voice is not one of its
    provider's, or it names neither a voice nor a language).
    """
    from shared.samples.matched_voice import matched_voice  # noqa: PLC0415 - see the module docstring
    from shared.voice_models.model import VoiceModelStatus  # noqa: PLC0415 - see the module docstring

    if model.status is not VoiceModelStatus.COMPLETED:
        raise VoiceModelNotReadyError(f"Voice model {model.id} is {model.status.value}")
    provider = MODEL_PROVIDERS.get(model.provider)
    if provider is None:
        raise ProviderNotConfiguredError(
            f"Voice model {model.id} needs provider {model.provider.value}, "
            "which is not configured in this deployment"
        )
    metadata = model.metadata
    matched = matched_voice(metadata)
    if matched is not None:
        defaults = {**_model_defaults(model), "pitch": matched.pitch, "speed": matched.speed}
        return ResolvedVoice(provider, matched.voice_id, matched.language, model, defaults)
    voice_name = metadata.get("voiceId") or metadata.get("voice_id")
    language = metadata.get("language")
    found: ResolvedVoice | None = None
    if isinstance(voice_name, str) and voice_name.strip():
        found = _model_voice(model, provider, voice_name.strip(), deps, providers)
    elif isinstance(language, str) and _language_tag(language):
        tag = _language_tag(language) or language
        found = default_voice_for_language(
            tag, catalog=catalog_of(deps), providers=providers, only_provider=provider
        )
        if found is None:
            raise VoiceModelUnusableError(
                f"Voice model {model.id}: provider {provider} has no voice for language {tag}"
            )
    if found is None:
        raise VoiceModelUnusableError(
            f"Voice model {model.id} has nothing this deployment can speak: provider "
            f"{provider} speaks its catalog voices and loads no model files (modelPath). Set "
            f"metadata.voiceId to one of its voices (GET /voices?provider={provider}) or "
            "metadata.language"
        )
    return ResolvedVoice(
        provider=found.provider,
        voice_id=found.voice_id,
        language=str(language) if isinstance(language, str) and language else found.language,
        model=model,
        defaults=_model_defaults(model),
    )


def _model_voice(
    model: VoiceModel,
    provider: str,
    name: str,
    deps: VoiceModelDeps,
    providers: ProviderRegistry,
) -> ResolvedVoice:
    own = None if ":" in name else catalog_of(deps).voice(f"{provider}:{name}")
    if own is not None:
        return _of_profile(own)
    try:
        found = named_voice(name, deps, providers, provider=provider)
    except VoiceNotFoundError:
        found = None
    if found is not None and found.provider == provider:
        return found
    if found is None and ":" not in name:
        unsynced = _unsynced(f"{provider}:{name}", deps)
        if unsynced is not None:
            return unsynced
    raise VoiceModelUnusableError(
        f"Voice model {model.id} names voice {name!r}, which is not a voice of its provider "
        f"{provider} (GET /voices?provider={provider})"
    )


def _unsynced(name: str, deps: VoiceModelDeps) -> ResolvedVoice | None:
    """Return ``provider:voiceId`` as given when none of the provider's voices were ever
    synced here (the catalog cannot say it is not one of them), else None."""
    provider, _, voice_id = name.partition(":")
    if not voice_id or VoiceRepository(deps.store).count(provider) != 0:
        return None
    return ResolvedVoice(provider, voice_id)


def _model_defaults(model: VoiceModel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"sample_rate": model.sample_rate}
    for name in _MODEL_SETTINGS:
        value = model.metadata.get(name)
        low, high = _SETTING_BOUNDS[name]
        if isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high:
            defaults[name] = float(value)
    return defaults


def _of_profile(profile: VoiceProfile) -> ResolvedVoice:
    return ResolvedVoice(profile.provider, profile.voice_id, profile.language)


def _openai_voice(deps: VoiceModelDeps, name: str) -> str | None:
    wanted = name.casefold()
    mapping = deps.settings.openai_speech_voices
    return next((target for key, target in mapping.items() if key.casefold() == wanted), None)


def _neural_instead(
    voice: ResolvedVoice | None, providers: ProviderRegistry, defaults: DefaultVoices
) -> ResolvedVoice | None:
    """Return the default voice of ``voice``'s language when it is a default provider's.

    An OpenAI voice name maps to an eSpeak voice (``openai_speech_voices``); when a provider
    ahead of eSpeak in ``VOICE_DEFAULT_VOICE_PROVIDERS`` speaks that language (Piper, for
    English), the name speaks with it instead. A mapping to another provider's voice (an
    operator's ``gcp:...``) is kept as configured.
    """
    if voice is None or not voice.language or not providers.prefers_default(voice.provider):
        return voice
    preferred = defaults.of(voice.language)
    if preferred is None or not providers.prefers_default(preferred.provider):
        return voice
    order = providers.default_order()
    if voice.provider not in order:
        return preferred
    ahead = order.index(preferred.provider) < order.index(voice.provider)
    return preferred if ahead else voice


def _mapped_model(
    deps: VoiceModelDeps, model_id: str, providers: ProviderRegistry
) -> ResolvedVoice | None:
    from shared.voice_models.repository import VoiceModelRepository  # noqa: PLC0415 - see the module docstring

    model = VoiceModelRepository(deps.store).get(model_id)
    if model is None or model.is_deleted:
        return None
    return voice_of_model(model, deps, providers)


def _language_tag(name: str) -> str | None:
    try:
        return normalize_language_tag(name)
    except ValueError:
        return None


def provider_for(registry: ProviderRegistry, voice: ResolvedVoice) -> Provider:
    """Return the enabled provider of ``voice``; raise ProviderNotConfiguredError."""
    try:
        return registry.get(voice.provider)
    except (UnknownProviderError, ConfigurationError) as exc:
        raise ProviderNotConfiguredError(
            f"Voice {voice.label} needs provider {voice.provider}, "
            "which is not configured in this deployment"
        ) from exc
