"""A synthesis request validated and keyed: its voice, provider, settings, pronunciation
lexicons (each pinned to the version read) and cache key.

Every route that speaks a ``SynthesizeRequest`` (plain, OpenAI-compatible, streamed) goes
through ``prepare``; rendering goes through ``Prepared.render`` or, a piece at a time,
``Prepared.render_piece``, which say the lexicons' rules the way the provider takes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.errors import ConfigurationError, InvalidRequestError, UnprocessableError
from shared.lazy import lazy_module
from shared.providers.base import AudioSettings, TTSProvider, UnsupportedTextError
from shared.synthesis.cache import cache_key, cache_owner
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.model import (
    AudioOptions,
    ResolvedVoice,
    SynthesisJob,
    SynthesizeRequest,
    audio_settings,
    check_audio_length,
    check_text,
    estimate_audio_seconds,
)
from shared.synthesis.pronunciation import unapplied_rules
from shared.synthesis.render import Rendered, render_piece, render_text, said_nothing
from shared.synthesis.responses import RESPONSE_FIELDS, TEXT_LEADS, TURN_LENGTHS
from shared.synthesis.spans import placed
from shared.synthesis.voices import provider_for, resolve_voice

if TYPE_CHECKING:
    from shared.lexicons import lexicons as lexicon_sets
    from shared.lexicons.lexicons import LexiconSelection
    from shared.providers import ssml as markup
else:
    # Only a request that names lexicons, or sends SSML, loads their code (a cold
    # instance's first plain speech does not).
    lexicon_sets = lazy_module("shared.lexicons.lexicons")
    markup = lazy_module("shared.providers.ssml")


class Prepared(NamedTuple):
    """A validated request: what to say, with which voice and provider, and how."""

    text: str
    spoken: str
    ssml: bool
    voice: ResolvedVoice
    provider: TTSProvider
    settings: AudioSettings
    options: AudioOptions
    key: str
    # About how many seconds of audio it makes, pauses and slow rates included.
    seconds: float = 0.0
    # Dialogues render their own way, bill several voices, and say which mode they used.
    renderer: Callable[[], Rendered] | None = None
    usage: tuple[tuple[ResolvedVoice, int], ...] = ()
    extra: tuple[tuple[str, str | None], ...] = ()
    # The lexicons' rules to say, and what the response reports of them (id@version of
    # each lexicon applied; graphemes whose rule the provider cannot say).
    lexicons: LexiconSelection | None = None
    lexicon_ids: tuple[str, ...] = ()
    unapplied_rules: tuple[str, ...] = ()
    # A dialogue's turns' texts ("\n".join of them is ``text``): its words span their turn's.
    turns: tuple[str, ...] = ()
    # The whitespace sent before the text (each turn's), which parsing stripped: the
    # answer's spans count it (``shared.synthesis.spans.shifted``).
    leads: tuple[int, ...] = (0,)

    @property
    def length(self) -> int:
        """Return the number of characters that count against the limits."""
        return len(self.spoken)

    def render(self, chunk_chars: int) -> Rendered:
        """Return the rendered audio of this request.

        Raises:
            UnsupportedTextError: the voice rendered no audio at all for the text.
        """
        if self.renderer is not None:
            rendered = self.renderer()
        else:
            rendered = render_text(
                self.provider,
                self.voice,
                self.text,
                self.settings,
                ssml=self.ssml,
                chunk_chars=chunk_chars,
                lexicons=self.lexicons,
            )
        if not rendered.pcm:
            raise said_nothing(self.provider)
        return rendered

    def render_piece(self, text: str) -> Rendered:
        """Return one provider call's audio of ``text`` (a sentence of this request's text,
        or the whole SSML) with this request's voice, settings and lexicons."""
        return render_piece(
            self.provider,
            self.voice,
            text,
            self.settings,
            ssml=self.ssml,
            lexicons=self.lexicons,
        )

    def placed(self, timestamps: dict[str, Any] | None) -> dict[str, Any] | None:
        """Return a stored render's ``timestamps`` with every span on this request's own
        text (a cache hit's render may come from a text spaced otherwise).

        Raises:
            UnplacedWordsError: the render's words are not this text's.
        """
        return placed(timestamps, self.text, ssml=self.ssml, turns=self.turns)

    def billed(self) -> tuple[tuple[ResolvedVoice, int], ...]:
        """Return each voice used with the characters it spoke."""
        return self.usage or ((self.voice, self.length),)


def prepare(
    deps: SynthesisDeps, user_id: str, body: SynthesizeRequest, *, account_id: str | None = None
) -> Prepared:
    """Return the validated request (``account_id``: the caller's, for clone voices).

    Raises InvalidRequestError, TextTooLongError, voice and model lookup errors,
    ProviderNotConfiguredError, or UnsupportedTextError (SSML to a provider without it).
    """
    if (body.text is None) == (body.ssml is None):
        raise InvalidRequestError("Give exactly one of text or ssml")
    ssml = body.ssml is not None
    text = body.ssml if body.ssml is not None else body.text or ""
    pauses, slowest, spoken = 0.0, 1.0, text
    if ssml:
        root = markup.validate_ssml(text)
        pauses, slowest = markup.ssml_timing(root)
        spoken = markup.spoken_text(root)
    # Plain text counts as sent (the client can count that); SSML counts what it speaks.
    check_text(spoken, deps.settings, length=None if ssml else body.sent_length)
    check_callback(deps, body)
    voice = resolve_voice(deps.models, deps.providers, user_id, body.voice, account_id=account_id)
    settings = audio_settings(body, voice.defaults)
    seconds = estimate_audio_seconds(
        len(spoken), settings.speed, pauses=pauses, slowest_rate=slowest
    )
    check_audio_length(seconds, deps.settings, at_once=False)
    provider = provider_for(deps.providers, voice)
    if ssml and not provider.capabilities.ssml:
        # The client's choice of voice, not a provider failure: a 400 saying what to change.
        raise UnsupportedTextError(
            f"Voice {voice.label} (provider {provider.name}) does not take SSML; send text, "
            "or name a voice whose provider takes SSML (GET /voices/providers)",
            provider=provider.name,
        )
    lexicons = (
        None
        if body.lexicon_ids is None
        else lexicon_sets.select_lexicons(deps.store, user_id, body.lexicon_ids)
    )
    lexicon_ids = tuple(lexicons.references) if lexicons else ()
    key = cache_key(
        text=text,
        ssml=ssml,
        voice=voice,
        settings=settings,
        output_format=body.output_format,
        include_timestamps=body.include_timestamps,
        granularity=body.timestamp_granularity,
        owner=cache_owner(
            user_id, voice, share_catalog_voices=deps.settings.synthesis_cache_shared_catalog_voices
        ),
        lexicons=lexicon_ids,
    )
    return Prepared(
        text,
        spoken,
        ssml,
        voice,
        provider,
        settings,
        body,
        key,
        seconds,
        lexicons=lexicons,
        lexicon_ids=lexicon_ids,
        unapplied_rules=unapplied_rules(lexicons, provider, text, ssml=ssml),
        leads=(body.lead,),
    )


def check_callback(deps: SynthesisDeps, options: AudioOptions) -> None:
    """Raise InvalidRequestError for a callbackUrl the platform may not call, and
    UnprocessableError when this deployment has no key to sign callbacks with."""
    if options.callback_url is None:
        return
    # Only a request that asks for a callback loads the callbacks' code (cold starts).
    from shared.synthesis.callbacks import check_callback_url, signing_secret  # noqa: PLC0415

    check_callback_url(options.callback_url, deps.settings)
    try:
        signing_secret(deps.settings)
    except ConfigurationError:
        raise UnprocessableError("Callbacks are not configured in this deployment") from None


def new_job(user_id: str, prepared: Prepared, **fields: Any) -> SynthesisJob:
    """Return a pending job for ``prepared``; its config says how to synthesize it again."""
    voice = prepared.voice
    options = prepared.options
    return SynthesisJob(
        user_id=user_id,
        voice_model_id=voice.model.id if voice.model else None,
        voice_id=None if voice.model else f"{voice.provider}:{voice.voice_id}",
        text_content=prepared.text,
        text_hash=prepared.key,
        output_format=options.output_format,
        sample_rate=prepared.settings.sample_rate,
        config={
            "provider": voice.provider,
            "providerVoiceId": voice.voice_id,
            "language": voice.language,
            "ssml": prepared.ssml,
            "settings": prepared.settings.model_dump(),
            "includeTimestamps": options.include_timestamps,
            "timestampGranularity": options.timestamp_granularity.value,
            "callbackUrl": options.callback_url,
            # The exact versions a job's chunks apply, whatever changes meanwhile.
            **({"lexicons": list(prepared.lexicon_ids)} if prepared.lexicon_ids else {}),
            **(
                {"unappliedRules": list(prepared.unapplied_rules)}
                if prepared.unapplied_rules
                else {}
            ),
            **({RESPONSE_FIELDS: dict(prepared.extra)} if prepared.extra else {}),
            # Where each turn is in the text, so the job's words are shown on their turns,
            # and the whitespace sent before it (or the text), which their spans count.
            **({TURN_LENGTHS: [len(turn) for turn in prepared.turns]} if prepared.turns else {}),
            **({TEXT_LEADS: list(prepared.leads)} if any(prepared.leads) else {}),
        },
        **fields,
    )
