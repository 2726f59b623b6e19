"""Multi-role dialogue (seed 000): turns of several speakers joined into one track.

``native`` mode asks the provider for one multi-speaker synthesis when every turn's voice
is that provider's and it can (``DialogueProvider``: ElevenLabs text-to-dialogue, Google
multi-speaker markup, built with ``shared.providers.ssml``'s escaping builders); otherwise it falls
back to ``segmented`` and the response says why. Segmented mode synthesizes the turns in
parallel, matches their loudness, and joins them with ``pauseMs`` of silence. Every
word's timestamp carries its speaker and turn index. Pronunciation lexicons apply per turn:
the turn's own ``lexiconIds`` first, then the request's; turns go to a native dialogue as
aliases (its inputs are plain text), so a rule said by IPA where the turn's provider takes
phonemes makes the dialogue segmented. The result goes through the same cache,
single-flight, storage and usage as ``POST /synthesize``. Each word's span indexes its own
turn's text, in either mode.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from shared.audio.stitch import match_loudness, stitch
from shared.audio.timestamps import TimedWord, align_words, in_order, offset_timings
from shared.errors import InvalidRequestError
from shared.lexicons.apply import Applied, join_applied
from shared.lexicons.lexicons import LexiconSelection, select_lexicon_sets
from shared.providers.base import AudioSettings, SynthesisResult, TTSProvider
from shared.providers.voices import DialogueTurn
from shared.synthesis.cache import cache_key, cache_owner
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.immediate import synthesize_now
from shared.synthesis.model import (
    DialogueRequest,
    ResolvedVoice,
    SynthesisMode,
    SynthesisResponse,
    audio_settings,
    check_audio_length,
    check_text,
    estimate_audio_seconds,
)
from shared.synthesis.prepare import Prepared, check_callback
from shared.synthesis.pronunciation import form_of, original_words, unapplied_rules
from shared.synthesis.render import Rendered, render_piece
from shared.synthesis.voices import provider_for, resolve_voice

_PARALLEL_TURNS = 4


@runtime_checkable
class DialogueProvider(Protocol):
    """A provider that speaks several voices in one call.

    Word timings' character spans index the turns' texts joined with one newline.
    """

    def dialogue_refusal(self, turns: Sequence[DialogueTurn]) -> str | None:
        """Return why these turns (with provider voice ids) cannot be one call, or None."""

    def synthesize_dialogue(
        self, turns: Sequence[DialogueTurn], settings: AudioSettings
    ) -> SynthesisResult:
        """Return the whole dialogue's audio."""


def synthesize_dialogue(
    deps: SynthesisDeps, user_id: str, body: DialogueRequest, *, account_id: str | None = None
) -> SynthesisResponse:
    """Return the finished dialogue, with ``mode`` used and any ``fallbackReason``.

    Raises InvalidRequestError (too many turns), TextTooLongError, AudioTooLongError, voice
    lookup errors, ProviderNotConfiguredError, and ProviderError when a provider fails.
    """
    limit = deps.settings.synthesis_dialogue_max_turns
    if len(body.turns) > limit:
        raise InvalidRequestError(f"A dialogue has at most {limit} turns")
    spoken = "\n".join(turn.text for turn in body.turns)
    # The turns as sent, not the newlines that join them here.
    sent = sum(turn.sent_length for turn in body.turns)
    check_text(spoken, deps.settings, length=sent, counted="The turns' texts total")
    check_callback(deps, body)
    settings = audio_settings(body)
    pauses = body.pause_ms / 1000 * (len(body.turns) - 1)
    seconds = estimate_audio_seconds(len(spoken), settings.speed, pauses=pauses)
    check_audio_length(seconds, deps.settings, at_once=True)
    voices = [
        resolve_voice(deps.models, deps.providers, user_id, turn.voice, account_id=account_id)
        for turn in body.turns
    ]
    providers = [provider_for(deps.providers, voice) for voice in voices]
    turns = body.turns
    lexicons = select_lexicon_sets(
        deps.store,
        user_id,
        [[*(turn.lexicon_ids or ()), *(body.lexicon_ids or ())] for turn in turns],
    )
    # The provider speaks its own voice ids, not the catalog's "provider:voice" ids.
    native_turns = [
        DialogueTurn(speaker=turn.speaker, voice=voice.voice_id, text=turn.text)
        for turn, voice in zip(turns, voices, strict=True)
    ]
    mode, reason = _mode(body.mode, voices, providers, native_turns)
    if mode is SynthesisMode.NATIVE and _needs_phonemes(providers[0], turns, lexicons):
        mode, reason = (
            SynthesisMode.SEGMENTED,
            "pronunciation rules said by IPA need each turn spoken on its own",
        )
    if mode is SynthesisMode.NATIVE:
        native = providers[0]
        assert isinstance(native, DialogueProvider)  # checked by _mode
        unapplied = [
            selection.pronouncer.unapplied(turn.text, "alias", ssml=False) if selection else ()
            for turn, selection in zip(turns, lexicons, strict=True)
        ]

        def render() -> Rendered:
            return _native(native, native_turns, settings, lexicons)
    else:
        unapplied = [
            unapplied_rules(selection, provider, turn.text, ssml=False)
            for turn, selection, provider in zip(turns, lexicons, providers, strict=True)
        ]

        def render() -> Rendered:
            return _segmented(providers, voices, turns, settings, body.pause_ms, lexicons=lexicons)

    material = json.dumps(
        {
            "turns": [
                [t.speaker, v.provider, v.voice_id, v.label, t.text]
                + ([list(lexicon.references)] if lexicon else [])
                for t, v, lexicon in zip(turns, voices, lexicons, strict=True)
            ],
            "mode": mode.value,
            "pauseMs": body.pause_ms,
            "versions": [v.model.version if v.model else None for v in voices],
        },
        ensure_ascii=False,
    )
    key = cache_key(
        text=material,
        ssml=False,
        voice=ResolvedVoice("dialogue", "dialogue"),
        settings=settings,
        output_format=body.output_format,
        include_timestamps=body.include_timestamps,
        granularity=body.timestamp_granularity,
        owner=_dialogue_owner(deps, user_id, voices),
    )
    prepared = Prepared(
        text=spoken,
        spoken=spoken,
        ssml=False,
        voice=voices[0],
        provider=providers[0],
        settings=settings,
        options=body,
        key=key,
        seconds=seconds,
        renderer=render,
        usage=tuple((voice, len(turn.text)) for voice, turn in zip(voices, turns, strict=True)),
        extra=(("mode", mode.value), ("fallback_reason", reason), ("voice", "dialogue")),
        lexicon_ids=tuple(
            dict.fromkeys(ref for selection in lexicons if selection for ref in selection.ids)
        ),
        unapplied_rules=tuple(dict.fromkeys(name for names in unapplied for name in names)),
        turns=tuple(turn.text for turn in turns),
        leads=tuple(turn.lead for turn in turns),
    )
    return synthesize_now(deps, user_id, prepared)


def _needs_phonemes(
    provider: TTSProvider,
    turns: Sequence[DialogueTurn],
    lexicons: Sequence[LexiconSelection | None],
) -> bool:
    """Return whether a rule found in a turn would be said by IPA by ``provider`` (which a
    native dialogue's plain-text inputs cannot carry)."""
    if form_of(provider) == "alias":
        return False
    return any(
        match.rule.phoneme is not None
        for turn, selection in zip(turns, lexicons, strict=True)
        if selection is not None
        for match in selection.pronouncer.matches(turn.text)
    )


def _dialogue_owner(deps: SynthesisDeps, user_id: str, voices: list[ResolvedVoice]) -> str | None:
    share = deps.settings.synthesis_cache_shared_catalog_voices
    owners = {cache_owner(user_id, voice, share_catalog_voices=share) for voice in voices}
    return None if owners == {None} else user_id


def _mode(
    wanted: SynthesisMode,
    voices: Sequence[ResolvedVoice],
    providers: Sequence[TTSProvider],
    native_turns: Sequence[DialogueTurn],
) -> tuple[SynthesisMode, str | None]:
    if wanted is SynthesisMode.SEGMENTED:
        return SynthesisMode.SEGMENTED, None
    names = {voice.provider for voice in voices}
    if len(names) > 1:
        return SynthesisMode.SEGMENTED, "the turns' voices belong to different providers"
    provider = providers[0]
    if not provider.capabilities.multi_speaker or not isinstance(provider, DialogueProvider):
        return SynthesisMode.SEGMENTED, f"provider {provider.name} has no multi-speaker synthesis"
    refusal = provider.dialogue_refusal(native_turns)
    if refusal is not None:
        return SynthesisMode.SEGMENTED, refusal
    return SynthesisMode.NATIVE, None


def _segmented(
    providers: Sequence[TTSProvider],
    voices: Sequence[ResolvedVoice],
    turns: Sequence[DialogueTurn],
    settings: AudioSettings,
    pause_ms: int,
    *,
    lexicons: Sequence[LexiconSelection | None],
) -> Rendered:
    with ThreadPoolExecutor(max_workers=_PARALLEL_TURNS) as pool:
        pieces = list(
            pool.map(
                lambda args: render_piece(
                    args[0], args[1], args[2].text, settings, lexicons=args[3]
                ),
                zip(providers, voices, turns, lexicons, strict=True),
            )
        )
    rate = settings.sample_rate
    levelled = match_loudness([piece.pcm for piece in pieces], rate)
    joined = stitch(levelled, rate, pause_ms=pause_ms)
    words: list[TimedWord] = []
    for index, (piece, offset, turn) in enumerate(zip(pieces, joined.offsets, turns, strict=True)):
        words.extend(offset_timings(piece.words, offset, speaker=turn.speaker, turn_index=index))
    unapplied = sorted({name for piece in pieces for name in piece.unapplied})
    seconds = sum(piece.provider_seconds for piece in pieces)
    return Rendered(joined.pcm, rate, in_order(words, joined.duration_seconds), unapplied, seconds)


def _native(
    provider: DialogueProvider,
    turns: Sequence[DialogueTurn],
    settings: AudioSettings,
    lexicons: Sequence[LexiconSelection | None],
) -> Rendered:
    # Aliases in place of the words (the inputs are plain text), timings mapped back.
    applied = [
        selection.pronouncer.apply(turn.text, "alias") if selection else Applied(turn.text)
        for turn, selection in zip(turns, lexicons, strict=True)
    ]
    said = [
        turn.model_copy(update={"text": each.text})
        for turn, each in zip(turns, applied, strict=True)
    ]
    result = provider.synthesize_dialogue(said, settings)
    text = "\n".join(turn.text for turn in turns)
    joined = join_applied([(a, len(t.text)) for a, t in zip(applied, turns, strict=True)], "\n")
    timings = original_words(joined, text, result.words, ssml=False)
    words = align_words(text, timings, result.duration_seconds)
    starts = []
    position = 0
    for turn in turns:
        starts.append(position)
        position += len(turn.text) + 1
    tagged: list[TimedWord] = []
    for word in words:
        # Each word spans its own turn's text, as a segmented dialogue's words do.
        index = max(i for i, start in enumerate(starts) if start <= word.char_start)
        tagged.extend(
            offset_timings(
                [word], 0.0, -starts[index], speaker=turns[index].speaker, turn_index=index
            )
        )
    return Rendered(result.pcm, result.sample_rate, tagged, list(result.unapplied))
