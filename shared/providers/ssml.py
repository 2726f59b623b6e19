"""SSML in and out: builders that escape user text, and a safe check of user-written SSML.

Every builder here escapes the user's text, so ``<``, ``&`` and quotes are spoken, never
parsed as markup (no one can smuggle a ``<break>`` or ``<audio>`` into a request).
``ssml_with_marks`` puts a ``<mark name="wN"/>`` before each word for the providers that
time words through marks (Google, Azure); ``build_speak`` wraps text in voice and prosody;
the dialogue builders give each provider's multi-speaker input (Azure-style ``<voice>``
turns, Google's MultiSpeakerMarkup turns, ElevenLabs' dialogue inputs).
``validate_ssml`` accepts user SSML only if it is well-formed XML rooted at ``<speak>``,
uses allowed elements only, and declares no DOCTYPE or entities (no XXE, no billion
laughs); ``ssml_to_text`` returns what such a document says, for length limits and timing,
and ``ssml_text`` also what its author wrote there (a ``<sub>``'s content for its alias),
the words its timestamps show.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from shared.audio.respelling import Respelling
from shared.audio.timing import Token, tokenize_words
from shared.errors import InvalidRequestError
from shared.providers.base import Pronunciation
from shared.providers.voices import DialogueTurn

SSML_NAMESPACE = "http://www.w3.org/2001/10/synthesis"
ALLOWED_ELEMENTS = frozenset(
    {
        "speak",
        "p",
        "s",
        "paragraph",
        "sentence",
        "break",
        "prosody",
        "emphasis",
        "say-as",
        "sub",
        "phoneme",
        "mark",
        "voice",
        "lang",
    }
)
"""Elements user SSML may use; ``audio`` is left out so no request makes us fetch a URL."""

Dialect = Literal["w3c", "azure"]

MAX_SSML_DEPTH = 32
MAX_BREAK_SECONDS = 10.0
"""The longest single ``<break>``: what Google and Polly accept (Azure stops at 5 s)."""
MIN_PROSODY_RATE = 0.2
"""The slowest ``<prosody rate>``: 20 % of normal, Polly's floor."""

_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
_RATE = re.compile(r"^\s*([+-]?)(\d+(?:\.\d+)?)\s*(%?)\s*$")
# Pauses of ``<break strength>`` and of sentence and paragraph ends, in seconds (roughly
# what the engines insert; only the duration estimate uses them).
_STRENGTHS = {
    "none": 0.0,
    "x-weak": 0.1,
    "weak": 0.25,
    "medium": 0.5,
    "strong": 0.75,
    "x-strong": 1.25,
}
_RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
_BLOCKS = frozenset({"p", "s", "paragraph", "sentence", "break"})
_SPACES = re.compile(r"\s+")


def escape_text(text: str) -> str:
    """Return ``text`` with ``& < > " '`` escaped, safe as SSML content or attribute value."""
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def _speak(body: str, *, language: str | None, namespaced: bool) -> str:
    attributes = ""
    if namespaced:
        attributes += f' version="1.0" xmlns="{SSML_NAMESPACE}"'
    if language:
        attributes += f" xml:lang={quoteattr(language)}"
    return f"<speak{attributes}>{body}</speak>"


def _prosody(body: str, *, rate: float, pitch: float, volume: float, dialect: Dialect) -> str:
    # W3C (Google, Polly): rate as a percentage of normal, volume in decibels. Azure reads
    # "50%" as a change of +50 %, so it gets the rate as a multiplier and volume as a change.
    attributes: list[str] = []
    if rate != 1.0:
        value = f"{rate:.2f}" if dialect == "azure" else f"{rate * 100:.0f}%"
        attributes.append(f'rate="{value}"')
    if pitch != 1.0:
        attributes.append(f'pitch="{12 * math.log2(pitch):+.2f}st"')
    if volume != 1.0:
        if volume <= 0:
            level = "silent"
        elif dialect == "azure":
            level = f"{(volume - 1) * 100:+.0f}%"
        else:
            level = f"{20 * math.log10(volume):+.2f}dB"
        attributes.append(f'volume="{level}"')
    if not attributes:
        return body
    return f"<prosody {' '.join(attributes)}>{body}</prosody>"


def build_speak(
    text: str,
    *,
    rate: float = 1.0,
    pitch: float = 1.0,
    volume: float = 1.0,
    language: str | None = None,
    voice: str | None = None,
    dialect: Dialect = "w3c",
    body_is_ssml: bool = False,
) -> str:
    """Return a ``<speak>`` document saying ``text`` (escaped) with the given prosody.

    ``rate``, ``pitch`` and ``volume`` are the platform's multipliers (1.0 = the voice's
    own, left out of the markup): pitch becomes semitones; rate and volume follow
    ``dialect`` ("w3c" for Google and Polly, "azure" also adds the version and namespace
    Azure requires). ``voice`` wraps the body in ``<voice name=...>``. ``body_is_ssml``
    marks ``text`` as markup built by this module, never user text.
    """
    body = text if body_is_ssml else escape_text(text)
    body = _prosody(body, rate=rate, pitch=pitch, volume=volume, dialect=dialect)
    if voice:
        body = f"<voice name={quoteattr(voice)}>{body}</voice>"
    return _speak(body, language=language, namespaced=dialect == "azure")


def mark_name(index: int) -> str:
    """Return the name of the mark placed before word ``index``."""
    return f"w{index}"


def ssml_with_marks(
    text: str, words: Sequence[Token] | None = None, **speak: Any
) -> tuple[str, list[str]]:
    """Return SSML saying ``text`` with a mark before each word, and the mark names in order.

    ``words`` are the tokens to mark (``tokenize_words(text)`` when None); ``speak`` takes
    ``build_speak``'s keyword arguments. Mark ``wN`` precedes word N, so provider mark
    timepoints map straight back with ``shared.audio.timing.words_from_marks``.
    """
    tokens = tokenize_words(text) if words is None else list(words)
    pieces: list[str] = []
    names: list[str] = []
    position = 0
    for index, token in enumerate(tokens):
        names.append(mark_name(index))
        pieces.append(escape_text(text[position : token.start]))
        pieces.append(f'<mark name="{names[-1]}"/>')
        pieces.append(escape_text(text[token.start : token.end]))
        position = token.end
    pieces.append(escape_text(text[position:]))
    return build_speak("".join(pieces), body_is_ssml=True, **speak), names


def pronounced_pieces(
    text: str,
    pronunciations: Sequence[Pronunciation] = (),
    marks: Sequence[Token] = (),
) -> list[tuple[str, int]]:
    """Return SSML body pieces saying plain ``text``, each with the index in ``text`` of
    the character it stands for (joined, they are the body).

    Every character is escaped; each pronunciation's span is wrapped in
    ``<phoneme alphabet="ipa" ph="...">`` (or ``<sub alias="...">`` without IPA), so the
    words inside stay the user's; ``<mark name="wN"/>`` precedes ``marks[N]``, except for
    a word starting inside a pronunciation (no mark may go inside ``<phoneme>``). Opening
    tags and marks stand for the next character, closing tags for the one after the span.
    """
    inside = [(p.start, p.end) for p in pronunciations]
    events: list[tuple[int, int, str]] = []
    for index, token in enumerate(marks):
        if not any(start < token.start < end for start, end in inside):
            events.append((token.start, 1, f'<mark name="{mark_name(index)}"/>'))
    for pronunciation in pronunciations:
        if pronunciation.phoneme is not None:
            opening = f'<phoneme alphabet="ipa" ph={quoteattr(pronunciation.phoneme)}>'
            closing = "</phoneme>"
        else:
            opening, closing = f"<sub alias={quoteattr(pronunciation.alias or '')}>", "</sub>"
        events.append((pronunciation.start, 2, opening))
        events.append((pronunciation.end, 0, closing))
    events.sort()
    pieces: list[tuple[str, int]] = []
    cursor = 0
    for position in range(len(text) + 1):
        while cursor < len(events) and events[cursor][0] == position:
            pieces.append((events[cursor][2], position))
            cursor += 1
        if position < len(text):
            pieces.append((escape_text(text[position]), position))
    return pieces


def validate_ssml(ssml: str) -> ET.Element:
    """Return the parsed root of user-written ``ssml`` once it is safe to send on.

    Raises:
        InvalidRequestError: a DOCTYPE or ENTITY declaration, malformed XML, a root other
            than ``<speak>``, or an element outside ``ALLOWED_ELEMENTS``.
    """
    if _DECLARATION.search(ssml):
        raise InvalidRequestError("SSML must not contain DOCTYPE or ENTITY declarations")
    try:
        root = ET.fromstring(ssml)  # noqa: S314 - declarations refused above, so no entities
    except ET.ParseError as exc:
        line, column = exc.position
        raise InvalidRequestError(
            f"SSML is not well-formed XML (line {line}, column {column + 1})"
        ) from None
    if _local_name(root.tag) != "speak":
        raise InvalidRequestError("SSML must have <speak> as its root element")
    pending = [(root, 1)]
    while pending:
        element, depth = pending.pop()
        if depth > MAX_SSML_DEPTH:
            raise InvalidRequestError(f"SSML nests deeper than {MAX_SSML_DEPTH} elements")
        name = _local_name(element.tag)
        if name not in ALLOWED_ELEMENTS:
            allowed = ", ".join(sorted(ALLOWED_ELEMENTS))
            raise InvalidRequestError(f"SSML element <{name}> is not allowed; use {allowed}")
        if name == "break":
            break_seconds(element)
        elif name == "prosody" and element.get("rate") is not None:
            prosody_rate(element.get("rate", ""))
        pending.extend((child, depth + 1) for child in element)
    return root


def break_seconds(element: ET.Element) -> float:
    """Return the pause a ``<break>`` asks for, in seconds.

    Raises InvalidRequestError: a malformed ``time``, one over ``MAX_BREAK_SECONDS``, or an
    unknown ``strength``.
    """
    time_value = element.get("time")
    if time_value is not None:
        match = _DURATION.match(time_value)
        if match is None:
            raise InvalidRequestError(
                f"<break time={time_value!r}> is not a duration like 500ms or 2s"
            )
        seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
        if seconds > MAX_BREAK_SECONDS:
            raise InvalidRequestError(
                f"<break time={time_value!r}> is longer than {MAX_BREAK_SECONDS:g} s"
            )
        return seconds
    strength = element.get("strength", "medium")
    if strength not in _STRENGTHS:
        raise InvalidRequestError(
            f"<break strength={strength!r}> is not one of {sorted(_STRENGTHS)}"
        )
    return _STRENGTHS[strength]


def prosody_rate(value: str) -> float:
    """Return a ``<prosody rate>`` as a factor of the normal rate (``x-slow`` is 0.5).

    Raises InvalidRequestError for a malformed rate or one slower than ``MIN_PROSODY_RATE``.
    """
    if value in _RATES:
        return _RATES[value]
    match = _RATE.match(value)
    if match is None:
        raise InvalidRequestError(f"<prosody rate={value!r}> is not a rate")
    sign, number, percent = match.groups()
    amount = float(number) / (100 if percent else 1)
    # "+20%" and "-20%" are relative to the normal rate; "80%" and "0.8" are absolute.
    factor = 1 + (amount if sign == "+" else -amount) if sign else amount
    if factor < MIN_PROSODY_RATE:
        raise InvalidRequestError(
            f"<prosody rate={value!r}> is slower than {MIN_PROSODY_RATE:.0%} of normal"
        )
    return factor


def ssml_timing(root: ET.Element) -> tuple[float, float]:
    """Return what a valid SSML document adds to its speech time.

    The first figure is the seconds of pauses it asks for (breaks; sentence and paragraph
    ends count as medium breaks), the second the slowest speaking rate anywhere in it (a
    factor of the normal rate), so an estimate from them never falls short.
    """
    pauses = 0.0
    slowest = 1.0
    for element in root.iter():
        name = _local_name(element.tag)
        if name == "break":
            pauses += break_seconds(element)
        elif name in _BLOCKS:
            pauses += _STRENGTHS["medium"]
        elif name == "prosody" and element.get("rate") is not None:
            slowest = min(slowest, prosody_rate(element.get("rate", "")))
    return pauses, slowest


def _local_name(tag: Any) -> str:
    # Comments and processing instructions have a function as their tag.
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else "#comment"


def ssml_to_text(ssml: str) -> str:
    """Return the words a valid SSML document says: its text, ``<sub>`` aliases for their
    content, a space between sentences and paragraphs, whitespace collapsed.

    Raises:
        InvalidRequestError: ``ssml`` fails ``validate_ssml``.
    """
    return spoken_text(validate_ssml(ssml))


def spoken_text(root: ET.Element) -> str:
    """Return the words the SSML document ``root`` (from ``validate_ssml``) says."""
    return ssml_text(root).spoken


@dataclass(frozen=True)
class SsmlText:
    """What an SSML document says and what its author wrote, whitespace collapsed in both.

    ``spoken`` has each ``<sub>``'s alias where ``written`` has its content (the words an
    app shows); ``respellings`` pairs their spans, in order. Elsewhere the two are alike
    (``<say-as>`` content is written and spoken as it stands: the engine reads it out).
    """

    spoken: str
    written: str
    respellings: tuple[Respelling, ...] = ()


def ssml_text(root: ET.Element) -> SsmlText:
    """Return what the SSML document ``root`` (from ``validate_ssml``) says and what its
    author wrote there."""
    texts = _Texts()
    _collect_text(root, texts, spoken=True)
    return texts.finish()


class _Collapsed:
    """Text whose whitespace is collapsed as it grows, as ``_SPACES.sub(" ", t).strip()``."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0
        self._after_space = True  # the start counts as one: leading spaces are dropped

    def add(self, text: str) -> None:
        piece = _SPACES.sub(" ", text)
        if self._after_space:
            piece = piece.removeprefix(" ")
        if piece:
            self.pieces.append(piece)
            self.length += len(piece)
            self._after_space = piece.endswith(" ")

    def finish(self) -> str:
        return "".join(self.pieces).removesuffix(" ")


class _Texts:
    """The spoken and the written text of a document, built together."""

    def __init__(self) -> None:
        self.spoken = _Collapsed()
        self.written = _Collapsed()
        self.respellings: list[Respelling] = []

    def add(self, text: str, *, spoken: bool) -> None:
        self.written.add(text)
        if spoken:
            self.spoken.add(text)

    def finish(self) -> SsmlText:
        spoken, written = self.spoken.finish(), self.written.finish()
        # A trailing space each text dropped may have ended the last respelling.
        respellings = tuple(
            Respelling(
                min(r.said_start, len(spoken)),
                min(r.said_end, len(spoken)),
                min(r.written_start, len(written)),
                min(r.written_end, len(written)),
            )
            for r in self.respellings
        )
        return SsmlText(spoken, written, respellings)


def _collect_text(element: ET.Element, texts: _Texts, *, spoken: bool) -> None:
    # ``spoken``: the element's words are said as written (not inside a ``<sub>``).
    name = _local_name(element.tag)
    if name in _BLOCKS:
        texts.add(" ", spoken=spoken)
    alias = element.get("alias") if name == "sub" else None
    if alias is not None and spoken:
        said_start, written_start = texts.spoken.length, texts.written.length
        texts.spoken.add(alias)
        _collect_content(element, texts, spoken=False)
        texts.respellings.append(
            Respelling(said_start, texts.spoken.length, written_start, texts.written.length)
        )
    else:
        _collect_content(element, texts, spoken=spoken)
    if name in _BLOCKS:
        texts.add(" ", spoken=spoken)
    texts.add(element.tail or "", spoken=spoken)


def _collect_content(element: ET.Element, texts: _Texts, *, spoken: bool) -> None:
    texts.add(element.text or "", spoken=spoken)
    for child in element:
        _collect_text(child, texts, spoken=spoken)


def dialogue_ssml(turns: Sequence[DialogueTurn], pause_ms: int, *, language: str) -> str:
    """Return one Azure-style document: a ``<voice>`` per turn, ``pause_ms`` between turns.

    Raises:
        ValueError: no turns, or a negative pause.
    """
    if not turns:
        raise ValueError("a dialogue needs at least one turn")
    if pause_ms < 0:
        raise ValueError("the pause between turns must not be negative")
    body: list[str] = []
    for index, turn in enumerate(turns):
        pause = f'<break time="{pause_ms}ms"/>' if pause_ms and index < len(turns) - 1 else ""
        body.append(f"<voice name={quoteattr(turn.voice)}>{escape_text(turn.text)}{pause}</voice>")
    return _speak("".join(body), language=language, namespaced=True)


def google_multispeaker_markup(
    turns: Sequence[DialogueTurn], speakers: Sequence[str] | None = None
) -> dict[str, list[dict[str, str]]]:
    """Return Google's ``MultiSpeakerMarkup``: ``{"turns": [{"speaker", "text"}]}``.

    With ``speakers`` (the voice's speaker letters, ``"R"``, ``"S"``, ...) each distinct
    ``turn.speaker`` gets the next letter in order of appearance; without, the turn's voice
    is taken as the letter. The text is plain (not SSML), so it is not escaped.
    """
    if speakers is None:
        return {"turns": [{"speaker": turn.voice, "text": turn.text} for turn in turns]}
    letters: dict[str, str] = {}
    for turn in turns:
        if turn.speaker not in letters:
            if len(letters) == len(speakers):
                raise InvalidRequestError(f"At most {len(speakers)} speakers in one dialogue")
            letters[turn.speaker] = speakers[len(letters)]
    return {"turns": [{"speaker": letters[turn.speaker], "text": turn.text} for turn in turns]}


def elevenlabs_dialogue_inputs(turns: Sequence[DialogueTurn]) -> list[dict[str, str]]:
    """Return ElevenLabs' text-to-dialogue ``inputs``: ``[{"text", "voice_id"}]`` in order."""
    return [{"text": turn.text, "voice_id": turn.voice} for turn in turns]
