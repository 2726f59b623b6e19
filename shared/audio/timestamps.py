"""Word timestamps for every word of the input, from whatever timings the provider gave.

Providers time some words (eSpeak word events, ElevenLabs characters, SSML marks, Polly
speech marks, all as ``WordTiming``), not always all of them, and not always with the
same idea of a word. ``align_words`` tokenises the input as ``tokenize_words`` does and
gives each token the provider's time where a timing falls on it (by character span, else
by matching text in order: pieces naming a Chinese or Japanese word a character at a
time, as eSpeak does in SSML, are placed on it in turn; a word named again and again right
after untimed words, as eSpeak names the words of an SSML ``<sub>`` alias, gives its
earlier timings to those);
words left without a time share the span between their timed neighbours in proportion to
their length. Timings that begin inside a word (eSpeak times a Chinese clause, one word
here, character by character) are kept on it (``TimedWord.inner``) for its syllables.
Times are clamped to the audio and made monotonic and non-overlapping (``in_order``), and
``fit_to_speech`` cuts the silence a provider counts in a word (the pause after "Hello,"
or before a ``<break>``) so that each word ends where its sound does. ``offset_timings``
shifts the words of one chunk or dialogue turn into the timeline and text of the whole,
tagging the speaker and turn index.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from shared.audio.pcm import frame_swings
from shared.audio.timing import Token, WordTiming, is_character_syllabic, tokenize_words

_MIN_SECONDS_PER_CHAR = 0.02  # below this, a gap is too short to hold the untimed words
_LOOKAHEAD = 8  # tokens searched forward when matching a timing by its text

Span = tuple[float, float]


class TimedWord(NamedTuple):
    """A word of the input with its time (seconds) and its span in the input (end exclusive,
    in code points: Python string offsets)."""

    text: str
    start: float
    end: float
    char_start: int
    char_end: int
    speaker: str | None = None
    turn_index: int | None = None
    # Where the provider timed the word inside: (index into ``text``, fraction of
    # [start, end]) pairs, both strictly increasing (a Chinese clause is one word here;
    # eSpeak and ElevenLabs time it character by character). Fractions, so moving the
    # word keeps them; ``retimed`` keeps their seconds when its ends change.
    inner: tuple[tuple[int, float], ...] = ()

    def time_at(self, index: int) -> float:
        """Return the time at character ``index`` of ``text`` (0: ``start``, its length:
        ``end``): from the provider's times inside the word, by length between them."""
        length = len(self.text)
        if length == 0 or index <= 0:
            return self.start
        if index >= length:
            return self.end
        before_index, before = 0, 0.0
        after_index, after = length, 1.0
        for point_index, fraction in self.inner:
            if point_index <= index:
                before_index, before = point_index, fraction
            else:
                after_index, after = point_index, fraction
                break
        share = before + (after - before) * (index - before_index) / (after_index - before_index)
        return self.start + (self.end - self.start) * share

    def retimed(self, start: float, end: float) -> TimedWord:
        """Return the word spanning [start, end]; the times inside it keep their seconds
        (those now outside it are dropped)."""
        if not self.inner:
            return self._replace(start=start, end=end)
        span = self.end - self.start
        seconds = [(index, self.start + span * fraction) for index, fraction in self.inner]
        return self._replace(start=start, end=end, inner=_fractions(seconds, start, end))

    def to_row(self) -> list[Any]:
        """Return the word as a JSON row (an async job's stored chunk): its text, times,
        span and the times inside it; ``from_row`` reads it back."""
        return [self.text, self.start, self.end, self.char_start, self.char_end, self.inner]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> TimedWord:
        """Return the word ``to_row`` stored (a row of five, stored before the times
        inside a word were, reads as a word without them)."""
        inner = tuple((int(index), float(share)) for index, share in row[5]) if row[5:] else ()
        return cls(row[0], row[1], row[2], row[3], row[4], inner=inner)

    def to_api(self) -> dict[str, Any]:
        """Return ``{text, start, end, charStart, charEnd}``, plus ``speaker`` and
        ``turnIndex`` in dialogues."""
        body: dict[str, Any] = {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "charStart": self.char_start,
            "charEnd": self.char_end,
        }
        if self.speaker is not None:
            body["speaker"] = self.speaker
        if self.turn_index is not None:
            body["turnIndex"] = self.turn_index
        return body


def align_words(text: str, timings: Sequence[WordTiming], duration: float) -> list[TimedWord]:
    """Return one ``TimedWord`` per word of ``text``, in order, inside ``[0, duration]``.

    ``timings`` are the provider's, their character spans indexing ``text``. A word gets
    the earliest start and latest end of the timings that fall on it; words no timing
    falls on are interpolated; without any timing the words share the whole duration.

    Raises:
        ValueError: ``duration`` is negative.
    """
    if duration < 0:
        raise ValueError("duration must not be negative")
    tokens = tokenize_words(text)
    timings = _placed_by_name(tokens, timings)
    spans, inside = _match(tokens, timings)
    _interpolate(tokens, spans, duration)
    words: list[TimedWord] = []
    for index, (token, span) in enumerate(zip(tokens, spans, strict=True)):
        assert span is not None  # every span is filled by _interpolate
        inner = _fractions(inside[index], *span) if index in inside else ()
        words.append(TimedWord(token.text, span[0], span[1], token.start, token.end, inner=inner))
    return in_order(words, duration)


def in_order(words: Sequence[TimedWord], duration: float) -> list[TimedWord]:
    """Return ``words`` clamped to ``[0, duration]``, each starting where the last ended
    at the earliest (monotonic, never overlapping); use it on a timeline joined from
    chunks, whose crossfaded boundaries overlap by a few milliseconds.
    """
    repaired: list[TimedWord] = []
    previous_end = 0.0
    for word in words:
        start = min(max(word.start, previous_end), duration)
        end = min(max(word.end, start), duration)
        unchanged = (start, end) == (word.start, word.end)
        repaired.append(word if unchanged else word.retimed(start, end))
        previous_end = end
    return repaired


def _match(
    tokens: list[Token], timings: Sequence[WordTiming]
) -> tuple[list[Span | None], dict[int, list[tuple[int, float]]]]:
    # Returns each token's span, and per token the starts of the timings that begin inside
    # it and end within it (a provider timing a Chinese clause character by character):
    # (index into the token's text, seconds), in text order.
    spans: list[Span | None] = [None] * len(tokens)
    inside: dict[int, list[tuple[int, float]]] = {}
    starts = [token.start for token in tokens]
    # The timings matched by their text (no character span), per token, in time order.
    named: dict[int, list[Span]] = {}
    cursor = 0
    for timing in sorted(timings, key=lambda t: (t.start_seconds, t.end_seconds)):
        indices = _tokens_of(tokens, starts, timing, cursor)
        end = max(timing.start_seconds, timing.end_seconds)
        first, stop = timing.char_start, timing.char_end
        if indices and (first is None or stop is None):
            named.setdefault(indices[0], []).append((timing.start_seconds, end))
        elif len(indices) == 1 and first is not None and stop is not None:
            token = tokens[indices[0]]
            if token.start < first and stop <= token.end:
                inside.setdefault(indices[0], []).append(
                    (first - token.start, timing.start_seconds)
                )
        # One timing over several tokens ("New-York" timed once) is shared by length.
        parts = _share(tokens, indices, timing.start_seconds, end)
        for index, part in zip(indices, parts, strict=True):
            known = spans[index]
            spans[index] = (
                part if known is None else (min(known[0], part[0]), max(known[1], part[1]))
            )
        if indices:
            cursor = indices[-1]
    _give_back_repeated_names(tokens, spans, named)
    for points in inside.values():
        points.sort()
    return spans, inside


def _give_back_repeated_names(
    tokens: list[Token], spans: list[Span | None], named: dict[int, list[Span]]
) -> None:
    # eSpeak names each word it says for an SSML <sub> alias after the word that follows
    # the element ("Visit World Wide Web today" comes as Visit, today, today, today,
    # today): a word named more than once right after untimed words keeps the last of
    # its timings, and the earlier ones are those words' (one each, or shared by length),
    # from where the timed word before them ends (it times some aliases only in part).
    for index, named_spans in named.items():
        first = index
        while first > 0 and spans[first - 1] is None:
            first -= 1
        members = list(range(first, index))
        if len(named_spans) < 2 or not members:
            continue
        earlier = named_spans[:-1]
        before = spans[first - 1] if first > 0 else None
        left = min(before[1] if before else 0.0, earlier[0][0])
        parts = (
            [(left, earlier[0][1]), *earlier[1:]]
            if len(earlier) == len(members)
            else _share(tokens, members, left, earlier[-1][1])
        )
        for member, part in zip(members, parts, strict=True):
            spans[member] = part
        spans[index] = named_spans[-1]


def _placed_by_name(tokens: list[Token], timings: Sequence[WordTiming]) -> list[WordTiming]:
    # Timings without a span (SSML) are matched to a word by their text; eSpeak names a
    # Chinese or Japanese clause (one word here) character by character, so no piece is a
    # word. Each piece that goes on naming such a word in order gets its span there (and
    # so times the word and its inside, as timings with spans do); the rest stay as they
    # are, a piece that is a whole word nearby being that word.
    if all(timing.char_start is not None for timing in timings):
        return list(timings)  # plain text: every timing has its span
    spellings: dict[int, _Spelling | None] = {}

    def piece_of(index: int, named: int, wanted: str) -> tuple[int, int, int, int] | None:
        # Where ``wanted`` goes on naming token ``index`` after its first ``named`` letters:
        # the token, the span and the letters named then (None: it does not, or the token
        # is no Chinese or Japanese word). A token is spelled once, however many pieces.
        if index not in spellings:
            spellings[index] = _spelling(tokens[index])
        spelling = spellings[index]
        if spelling is None or not spelling.said.startswith(wanted, named):
            return None
        last = named + len(wanted)
        return index, spelling.places[named], spelling.places[last - 1] + 1, last

    placed: list[WordTiming] = []
    cursor = 0
    naming: tuple[int, int] | None = None  # (token, characters of it named so far)
    for timing in sorted(timings, key=lambda t: (t.start_seconds, t.end_seconds)):
        wanted = "" if timing.char_start is not None else _comparable(timing.text)
        piece = piece_of(*naming, wanted) if wanted and naming is not None else None
        if piece is None and wanted:
            window = range(cursor, min(cursor + _LOOKAHEAD, len(tokens)))
            whole = next((i for i in window if _comparable(tokens[i].text) == wanted), None)
            if whole is not None:
                cursor, naming = whole, None
            else:
                found = (piece_of(i, 0, wanted) for i in window)
                piece = next((p for p in found if p is not None), None)
        if piece is None:
            placed.append(timing)
            continue
        index, first, last, named = piece
        placed.append(timing._replace(char_start=first, char_end=last))
        cursor, naming = index, (index, named)
    return placed


class _Spelling(NamedTuple):
    """A Chinese or Japanese word's letters and digits as ``_comparable`` spells them
    (``said``), and where each stands in the text (a letter casefolded to two stands
    twice at its place)."""

    places: tuple[int, ...]
    said: str


def _spelling(token: Token) -> _Spelling | None:
    # None for a word no provider names a character at a time (no Chinese or Japanese).
    if not any(is_character_syllabic(char) for char in token.text):
        return None
    letters = [
        (token.start + offset, folded)
        for offset, char in enumerate(token.text)
        if char.isalnum()
        for folded in char.casefold()
    ]
    return _Spelling(tuple(place for place, _ in letters), "".join(c for _, c in letters))


def _fractions(
    seconds: Sequence[tuple[int, float]], start: float, end: float
) -> tuple[tuple[int, float], ...]:
    # (index, seconds) points as fractions of [start, end], kept only strictly inside it
    # and strictly increasing (a provider's times out of order inside a word are dropped).
    if end <= start:
        return ()
    kept: list[tuple[int, float]] = []
    for index, second in seconds:
        fraction = (second - start) / (end - start)
        if 0.0 < fraction < 1.0 and (not kept or (index > kept[-1][0] and fraction > kept[-1][1])):
            kept.append((index, fraction))
    return tuple(kept)


def _tokens_of(
    tokens: list[Token], starts: list[int], timing: WordTiming, cursor: int
) -> list[int]:
    if timing.char_start is not None and timing.char_end is not None:
        first = max(bisect.bisect_right(starts, timing.char_start) - 1, 0)
        last = bisect.bisect_left(starts, timing.char_end)
        return [
            i
            for i in range(first, last)
            if tokens[i].start < timing.char_end and timing.char_start < tokens[i].end
        ]
    wanted = _comparable(timing.text)
    for index in range(cursor, min(cursor + _LOOKAHEAD, len(tokens))):
        if wanted and _comparable(tokens[index].text) == wanted:
            return [index]
    return []


def _comparable(word: str) -> str:
    return "".join(char for char in word.casefold() if char.isalnum())


def _interpolate(tokens: list[Token], spans: list[Span | None], duration: float) -> None:
    # Fill each run of untimed tokens from the gap between its timed neighbours; when the
    # gap is too short (providers often end a word where the next timed one begins), the
    # timed neighbour before it shares its own span with the run.
    index = 0
    while index < len(tokens):
        if spans[index] is not None:
            index += 1
            continue
        run_end = index
        while run_end < len(tokens) and spans[run_end] is None:
            run_end += 1
        before = spans[index - 1] if index > 0 else None
        after = spans[run_end] if run_end < len(tokens) else None
        left = before[1] if before else 0.0
        right = after[0] if after else duration
        members = list(range(index, run_end))
        chars = sum(len(tokens[i].text) for i in members)
        if right - left < chars * _MIN_SECONDS_PER_CHAR:
            if before is not None:
                members.insert(0, index - 1)
                left = before[0]
            elif after is not None:
                members.append(run_end)
                right = after[1]
        shared = _share(tokens, members, left, max(left, right))
        for member, part in zip(members, shared, strict=True):
            spans[member] = part
        index = run_end


def _share(tokens: list[Token], members: list[int], left: float, right: float) -> list[Span]:
    # Consecutive parts of [left, right], one per member, in proportion to its length.
    total = sum(len(tokens[i].text) for i in members) or 1
    parts: list[Span] = []
    elapsed = 0
    start = left
    for i in members:
        elapsed += len(tokens[i].text)
        end = right if elapsed >= total else left + (right - left) * elapsed / total
        parts.append((start, end))
        start = end
    return parts


def offset_timings(
    words: Sequence[TimedWord],
    seconds: float,
    char_offset: int = 0,
    *,
    speaker: str | None = None,
    turn_index: int | None = None,
) -> list[TimedWord]:
    """Return ``words`` moved ``seconds`` later and ``char_offset`` characters on.

    Used to place a chunk's or a dialogue turn's words in the whole result; ``speaker``
    and ``turn_index``, when given, tag every word.
    """
    changes: dict[str, Any] = {}
    if speaker is not None:
        changes["speaker"] = speaker
    if turn_index is not None:
        changes["turn_index"] = turn_index
    return [
        word._replace(
            start=word.start + seconds,
            end=word.end + seconds,
            char_start=word.char_start + char_offset,
            char_end=word.char_end + char_offset,
            **changes,
        )
        for word in words
    ]


_FRAME_SECONDS = 0.01
_RELATIVE_FLOOR = 0.02  # a frame swinging under 2 % of the loudest frame's swing is silence
_ABSOLUTE_FLOOR = 64  # and so is any frame swinging less than this (about -54 dBFS)


def fit_to_speech(words: Sequence[TimedWord], pcm: bytes, sample_rate: int) -> list[TimedWord]:
    """Return ``words`` with silence at either end of each word's span cut off.

    Providers end a word where the next begins, so a pause (a comma, an SSML ``<break>``)
    is counted in the word before it; here each word starts at its first and ends at its
    last 10 ms frame of sound. A word whose span holds no sound keeps its times.
    """
    frame = max(1, round(sample_rate * _FRAME_SECONDS))
    # Each frame's peak-to-peak swing: as good as its energy to tell sound from silence,
    # and cheaper (every synthesis pays it).
    swings = frame_swings(pcm, frame)
    count = len(swings)
    if count == 0 or not words:
        return list(words)
    threshold = max(max(swings) * _RELATIVE_FLOOR, _ABSOLUTE_FLOOR)
    loud = [index for index, swing in enumerate(swings) if swing >= threshold]
    seconds = frame / sample_rate
    fitted: list[TimedWord] = []
    for word in words:
        # Only the frames wholly inside the span: the frame a boundary falls in holds the
        # next word's onset as often as this word's end.
        first = math.ceil(word.start / seconds - 1e-9)
        last = min(int(word.end / seconds + 1e-9), count)
        low = bisect.bisect_left(loud, first)
        high = bisect.bisect_left(loud, last)
        if low >= high:
            fitted.append(word)
            continue
        start = max(word.start, loud[low] * seconds)
        end = max(start, min(word.end, (loud[high - 1] + 1) * seconds))
        if (start, end) == (word.start, word.end):
            fitted.append(word)
            continue
        fitted.append(word.retimed(start, end))
    return fitted
