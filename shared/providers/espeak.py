"""eSpeak NG, the embedded provider: offline, every language and variant, word events.

The engine comes from the ``espeakng-loader`` wheel (``libespeak-ng`` plus its data) and is
driven through ctypes in synchronous mode: ``espeak_Synth`` calls our callback with audio
chunks (22 050 Hz int16) and events, of which WORD events carry the word's character
position and its sample offset. The engine is one global state per process (the current
voice, parameters, callback), so every call holds ``_ENGINE_LOCK``; calls are blocking and
fast (real-time factor about 0.002) — async callers use ``asyncio.to_thread``.

Voices: each language eSpeak lists is a voice (``espeak:en-US``), and each variant in
``voices/!v`` combined with a language is another (``espeak:en-US+f3``); a variant's gender
and age come from its own file, and are left empty when the file does not say.

The audio is not bit-for-bit repeatable. The engine keeps state from one utterance to the
next that neither ``espeak_Cancel`` nor a second ``espeak_Initialize`` resets: the same
sentence rendered twice in a row in one process differs by a few dozen samples, so two
processes with different histories render it differently. Variants with breath noise
(``f3``'s file sets ``breath``) differ between processes in their samples, not their
length. A repeated request gets the same audio from the synthesis cache, not from the
engine.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from shared.audio.pcm import resample
from shared.audio.timing import WordTiming
from shared.config import DEFAULT_ESPEAK_VARIANT_LANGUAGES
from shared.providers.base import (
    ErrorCategory,
    ProviderCapabilities,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    provider_error,
)
from shared.providers.config import split_names
from shared.providers.labels import age_group_from_years, gender_from, language_or_none
from shared.providers.voices import AgeGroup, Gender, VoiceProfile

logger = logging.getLogger(__name__)

NAME = "espeak"
NATIVE_RATE = 22_050
DEFAULT_WPM = 175
MIN_WPM, MAX_WPM = 80, 450
MAX_INPUT_CHARS = 100_000

# espeak_AUDIO_OUTPUT, espeak_POSITION_TYPE, flags, parameters and event types (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 0x1
_SSML = 0x10
_ENDPAUSE = 0x1000
_PHONEMES = 0x100  # espeakPHONEMES: [[...]] is phoneme input
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH = 1, 2, 3
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_SENTENCE, _EVENT_END = 0, 1, 2, 5
_EVENT_MSG_TERMINATED = 6
_EE_OK = 0
_TRACE_PHONEMES = 1  # espeak_SetPhonemeTrace: the translated phonemes, as -x prints them

_ENGINE_LOCK = threading.Lock()
_engine: _Engine | None = None


class _Voice(ctypes.Structure):
    _fields_: ClassVar[list[tuple[str, Any]]] = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _EventId(ctypes.Union):
    _fields_: ClassVar[list[tuple[str, Any]]] = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    _fields_: ClassVar[list[tuple[str, Any]]] = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class EspeakLanguage(NamedTuple):
    """A language voice: eSpeak's file identifier, display name and language codes."""

    identifier: str
    name: str
    languages: tuple[str, ...]
    gender: int
    age: int

    @property
    def voice_id(self) -> str:
        """Return the catalog voice id: the identifier's file name (``gmw/en-US`` -> en-US)."""
        return self.identifier.rsplit("/", 1)[-1]


class EspeakVariant(NamedTuple):
    """A variant file of ``voices/!v``: its file name and what the file declares."""

    file_name: str
    name: str
    gender: Gender | None
    age: int | None


class _Event_(NamedTuple):
    kind: int
    text_position: int
    length: int
    sample: int


class _Engine:
    """The loaded library; only ever used with ``_ENGINE_LOCK`` held."""

    def __init__(self) -> None:
        # The wheel ships no type hints; loaded on first use, never at import.
        import espeakng_loader  # type: ignore[import-untyped]  # noqa: PLC0415

        self.data_path = Path(espeakng_loader.get_data_path())
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._declare()
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path.parent).encode(), 0
        )
        if rate <= 0:
            raise RuntimeError("eSpeak NG failed to initialise")
        self.sample_rate = int(rate)
        self._chunks: list[bytes] = []
        self._events: list[_Event_] = []
        # ctypes frees a callback object that nothing references: keep it on the engine.
        self._callback = _SynthCallback(self._on_audio)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _declare(self) -> None:
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_SetPhonemeTrace.argtypes = [ctypes.c_int, ctypes.c_void_p]
        lib.espeak_SetPhonemeTrace.restype = None

    def _on_audio(self, wav: Any, count: int, events: Any) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type in (_EVENT_WORD, _EVENT_SENTENCE, _EVENT_END, _EVENT_MSG_TERMINATED):
                self._events.append(
                    _Event_(event.type, event.text_position, event.length, event.sample)
                )
            index += 1
        return 0

    def languages(self) -> list[EspeakLanguage]:
        voices = self.lib.espeak_ListVoices(None)
        found: list[EspeakLanguage] = []
        index = 0
        while voices[index]:
            voice = voices[index].contents
            found.append(
                EspeakLanguage(
                    identifier=(voice.identifier or b"").decode(),
                    name=(voice.name or b"").decode(),
                    languages=tuple(_language_list(voice.languages)),
                    gender=int(voice.gender),
                    age=int(voice.age),
                )
            )
            index += 1
        return found

    def synthesize(
        self,
        text: str,
        voice: str,
        *,
        ssml: bool,
        rate: int,
        pitch: int,
        volume: int,
        phonemes: bool = False,
    ) -> tuple[bytes, list[_Event_]]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise provider_error(NAME, ErrorCategory.PERMANENT, f"Unknown eSpeak voice {voice!r}")
        self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        self.lib.espeak_SetParameter(_PARAM_VOLUME, volume, 0)
        data = text.encode("utf-8")
        flags = _CHARS_UTF8 | _ENDPAUSE | (_SSML if ssml else 0) | (_PHONEMES if phonemes else 0)
        self._chunks, self._events = [], []
        try:
            status = self.lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None
            )
            if status != _EE_OK:
                raise provider_error(NAME, ErrorCategory.TRANSIENT, "eSpeak NG failed to speak")
            return b"".join(self._chunks), list(self._events)
        finally:
            self._chunks, self._events = [], []

    def trace(self, text: str, voice: str, *, ssml: bool, phonemes: bool) -> str:
        """Return the phonemes eSpeak speaks for ``text`` (its phoneme trace)."""
        libc = _libc()
        stream = libc.tmpfile()
        if not stream:
            raise provider_error(NAME, ErrorCategory.TRANSIENT, "No temporary file for eSpeak")
        try:
            self.lib.espeak_SetPhonemeTrace(_TRACE_PHONEMES, stream)
            try:
                self.synthesize(
                    text,
                    voice,
                    ssml=ssml,
                    rate=DEFAULT_WPM,
                    pitch=50,
                    volume=100,
                    phonemes=phonemes,
                )
            finally:
                self.lib.espeak_SetPhonemeTrace(0, None)
            libc.fflush(stream)
            size = libc.ftell(stream)
            libc.rewind(stream)
            buffer = ctypes.create_string_buffer(max(size, 1))
            read = libc.fread(buffer, 1, size, stream)
            return buffer.raw[:read].decode("utf-8", errors="replace")
        finally:
            libc.fclose(stream)

    def phonemes(self, texts: list[str], voice: str) -> list[str]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise provider_error(NAME, ErrorCategory.PERMANENT, f"Unknown eSpeak voice {voice!r}")
        found: list[str] = []
        for text in texts:
            buffer = ctypes.create_string_buffer(text.encode("utf-8"))
            cursor = ctypes.c_char_p(ctypes.addressof(buffer))
            pieces: list[str] = []
            # Each call returns one clause's phonemes (ASCII mnemonics), moving the cursor on.
            while cursor.value:
                result = self.lib.espeak_TextToPhonemes(ctypes.byref(cursor), _CHARS_UTF8, 0)
                if result:
                    pieces.append(result.decode("utf-8", errors="replace"))
            found.append(" ".join(pieces))
        return found


def _libc() -> Any:
    libc = ctypes.CDLL(None)  # the C library the process already has loaded
    libc.tmpfile.argtypes = []
    libc.tmpfile.restype = ctypes.c_void_p
    for name in ("fflush", "rewind", "fclose"):
        getattr(libc, name).argtypes = [ctypes.c_void_p]
    libc.ftell.argtypes = [ctypes.c_void_p]
    libc.ftell.restype = ctypes.c_long
    libc.fread.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
    libc.fread.restype = ctypes.c_size_t
    return libc


def _language_list(pointer: int | None) -> Iterator[str]:
    # Pairs of (priority byte, NUL-terminated language) ending with a zero priority byte.
    if not pointer:
        return
    while True:
        priority = ctypes.c_ubyte.from_address(pointer).value
        if priority == 0:
            return
        code = ctypes.string_at(pointer + 1)
        yield code.decode()
        pointer += len(code) + 2


def _engine_locked() -> _Engine:
    global _engine  # noqa: PLW0603 - the engine is process-global by eSpeak's design
    if _engine is None:
        _engine = _Engine()
    return _engine


def _language_files(data_path: Path) -> dict[str, str]:
    """Return each language voice's file id by its catalog voice id, from the data folder.

    eSpeak's own list (``espeak_ListVoices``) names the same files, read one by one: the
    files of ``lang`` and ``voices`` but the variants (``!v``) and MBROLA's voices (``mb``).
    """
    found: dict[str, str] = {}
    for top in ("lang", "voices"):
        root = data_path / top
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = [name for name in subfolders if name not in ("!v", "mb")]
            for name in files:
                found[name] = Path(folder, name).relative_to(root).as_posix()
    return found


def read_variant(path: Path) -> EspeakVariant:
    """Return what a variant file declares (``name``, ``gender <g> [age]``)."""
    name = path.name
    gender: Gender | None = None
    age: int | None = None
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = raw.split("//", 1)[0].split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "name" and len(parts) > 1:
            name = " ".join(parts[1:])
        elif parts[0] == "gender" and len(parts) > 1:
            gender = gender_from(parts[1])
            if len(parts) > 2 and parts[2].isdigit():
                age = int(parts[2]) or None
    return EspeakVariant(path.name, name, gender, age)


class EspeakProvider(TTSProvider):
    """eSpeak NG through ctypes; thread-safe (calls are serialised on one engine)."""

    name: ClassVar[str] = NAME

    def __init__(self, *, variant_languages: list[str] | None = None) -> None:
        self._variant_languages = (
            split_names(DEFAULT_ESPEAK_VARIANT_LANGUAGES)
            if variant_languages is None
            else variant_languages
        )
        self._identifiers: dict[str, str] | None = None  # language voice id -> file id
        self._variant_files: frozenset[str] | None = None
        self._installed: tuple[EspeakLanguage, ...] | None = None

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=True,
            timing="word",
            multi_speaker=False,
            streaming=False,
            cloning=False,
            native_formats=("pcm",),
            max_input_chars=MAX_INPUT_CHARS,
            native_controls=frozenset({"speed", "pitch", "volume"}),
            sample_rates=(NATIVE_RATE,),
            # No languages: listing them reads every voice file (2.5-3.4 ms of a cold
            # instance's first speech, bench.cold_start_costs); the catalog's sync lists
            # them, as for every provider.
            pronunciation="espeak",
        )

    def _languages(self) -> tuple[EspeakLanguage, ...]:
        # The installed languages never change while the process runs; listing them reads
        # every voice file, so it is done once, and never for a speech (``_espeak_name``).
        if self._installed is None:
            with _ENGINE_LOCK:
                self._installed = tuple(_engine_locked().languages())
        return self._installed

    def variant_names(self) -> list[str]:
        """Return the file names of eSpeak's voice variants (``f3``, ``klatt``, ...)."""
        return [variant.file_name for variant in self._variants()]

    def _variant_paths(self) -> list[Path]:
        with _ENGINE_LOCK:
            folder = _engine_locked().data_path / "voices" / "!v"
        return [path for path in folder.iterdir() if path.is_file()]

    def _variants(self) -> list[EspeakVariant]:
        return sorted(
            (read_variant(path) for path in self._variant_paths()),
            key=lambda v: v.file_name.lower(),
        )

    def list_voices(self) -> list[VoiceProfile]:
        """Return every language, and every variant for the configured languages."""
        voices: list[VoiceProfile] = []
        variants = self._variants()
        for language in self._languages():
            tag = language_or_none(language.languages[0] if language.languages else None)
            base = {
                "provider": NAME,
                "language": tag or "und",
                "supports_multi_speaker": False,
            }
            metadata = {
                "espeakIdentifier": language.identifier,
                "espeakLanguages": list(language.languages),
            }
            voices.append(
                VoiceProfile.model_validate(
                    {
                        **base,
                        "voice_id": language.voice_id,
                        "display_name": language.name,
                        # The language voice speaks with eSpeak's default (male) variant.
                        "gender": {1: Gender.MALE, 2: Gender.FEMALE}.get(language.gender),
                        "age_group": age_group_from_years(language.age),
                        "description": f"eSpeak NG {language.name}",
                        "tags": ("offline",),
                        "metadata": metadata,
                    }
                )
            )
            if not self._wants_variants(language):
                continue
            for variant in variants:
                voice_id = f"{language.voice_id}+{variant.file_name}"
                age_group: AgeGroup | None = age_group_from_years(variant.age)
                voices.append(
                    VoiceProfile.model_validate(
                        {
                            **base,
                            "voice_id": voice_id,
                            "display_name": f"{language.name} ({variant.name})",
                            "gender": variant.gender,
                            "age_group": age_group,
                            "description": f"eSpeak NG {language.name}, variant {variant.name}",
                            "tags": ("offline", "variant"),
                            "metadata": {
                                **metadata,
                                "espeakVariant": variant.file_name,
                                "variantAge": variant.age,
                            },
                        }
                    )
                )
        return voices

    def _wants_variants(self, language: EspeakLanguage) -> bool:
        wanted = self._variant_languages
        if "*" in wanted:
            return True
        # The voice's own id and primary language only: "fr" names French (France), not
        # every voice that also answers to "fr" (fr-BE, fr-CH).
        codes = {language.voice_id.lower(), *(code.lower() for code in language.languages[:1])}
        return any(code in codes for code in wanted)

    def default_voice(self, language: str) -> str | None:
        """Return the language voice for ``language``: its own tag, else a voice whose
        languages list it (``zh`` -> cmn), else one of the same primary language."""
        wanted = language.strip().replace("_", "-").lower()
        primary = wanted.split("-", 1)[0]
        languages = self._languages()
        for matches in (
            lambda lang: lang.voice_id.lower() == wanted,
            lambda lang: wanted in lang.languages,
            lambda lang: lang.voice_id.lower() == primary,
            lambda lang: primary in lang.languages,
        ):
            found = next((lang.voice_id for lang in languages if matches(lang)), None)
            if found:
                return found
        return None

    def _espeak_name(self, voice_id: str) -> str:
        """Return the name eSpeak loads for a catalog voice id (``gmw/en-US+f3``)."""
        if self._identifiers is None or self._variant_files is None:
            with _ENGINE_LOCK:
                data_path = _engine_locked().data_path
            self._identifiers = _language_files(data_path)
            # The names alone: a cold instance's first speech reads no variant file.
            self._variant_files = frozenset(path.name for path in self._variant_paths())
        base, plus, variant = voice_id.partition("+")
        identifier = self._identifiers.get(base)
        # Any variant speaks any language, listed in the catalog or not.
        if identifier is None or (plus and variant not in self._variant_files):
            raise provider_error(
                NAME, ErrorCategory.PERMANENT, f"Unknown eSpeak voice {voice_id!r}"
            )
        return f"{identifier}+{variant}" if plus else identifier

    def phonemes(self, words: list[str], voice_id: str) -> list[str | None]:
        """Return eSpeak's phonemes (ASCII mnemonics) of each word in voice ``voice_id``.

        Raises:
            ProviderError: ``voice_id`` is not an eSpeak voice (permanent).
        """
        espeak_voice = self._espeak_name(voice_id)
        with _ENGINE_LOCK:
            engine = _engine_locked()
            return [found or None for found in engine.phonemes(words, espeak_voice)]

    def spoken_phonemes(self, request: SynthesisRequest) -> str:
        """Return the phonemes eSpeak speaks for ``request`` (its mnemonics, words apart,
        one line per clause, as ``espeak-ng -x`` prints them): what a pronunciation rule
        made it say. The voice's settings do not change them.

        Raises:
            ProviderError: an unknown voice (permanent).
        """
        self.check_input(request)
        espeak_voice = self._espeak_name(request.voice_id)
        with _ENGINE_LOCK:
            return _engine_locked().trace(
                request.text, espeak_voice, ssml=request.ssml, phonemes=request.phonemes
            )

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return eSpeak's audio with word timings (char spans index ``request.text``)."""
        self.check_input(request)
        settings = request.settings
        espeak_voice = self._espeak_name(request.voice_id)
        rate = min(MAX_WPM, max(MIN_WPM, round(DEFAULT_WPM * settings.speed)))
        pitch = min(100, max(0, round(50 + 50 * math.log2(settings.pitch))))
        volume = min(200, max(0, round(100 * settings.volume)))
        with _ENGINE_LOCK:
            engine = _engine_locked()
            pcm, events = engine.synthesize(
                request.text,
                espeak_voice,
                ssml=request.ssml,
                rate=rate,
                pitch=pitch,
                volume=volume,
                phonemes=request.phonemes,
            )
            native_rate = engine.sample_rate
        words = (
            _words(request.text, events, native_rate, len(pcm) // 2) if request.want_timings else []
        )
        return SynthesisResult(
            pcm=resample(pcm, native_rate, settings.sample_rate),
            sample_rate=settings.sample_rate,
            words=tuple(words),
            provider=NAME,
            voice_id=request.voice_id,
        )


def _words(text: str, events: list[_Event_], rate: int, total_samples: int) -> list[WordTiming]:
    # A word ends where the next event (word, sentence or end) after its start begins.
    ends: list[int] = [total_samples] * len(events)
    later: list[int] = []
    for index in range(len(events) - 1, -1, -1):
        sample = events[index].sample
        while later and later[-1] <= sample:
            later.pop()
        ends[index] = later[-1] if later else total_samples
        later.append(sample)
    words: list[WordTiming] = []
    for index, event in enumerate(events):
        if event.kind != _EVENT_WORD:
            continue
        end_sample = ends[index]
        start = max(event.text_position - 1, 0)
        end = min(start + max(event.length, 0), len(text))
        word = text[start:end] if end > start else ""
        if not word.strip():
            continue
        words.append(WordTiming(word, event.sample / rate, end_sample / rate, start, end))
    return words
