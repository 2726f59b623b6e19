"""Word timestamps on the words as written, when other words were said in their place.

An SSML ``<sub alias="World Wide Web">WWW</sub>`` is said as its alias and written as its
content; an app that highlights the text as written wants "WWW" timed from the start of
"World" to the end of "Web". A ``Respelling`` pairs the span of what was said with the span
of what was written there; ``words_as_written`` turns words timed on the said text into
the words of the written one: the words said for a respelling time the words written
there together (one word written for three said takes all their time; several written
for one said share its time in proportion to their length), and every other word keeps
its time at its place in the written text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.audio.timestamps import TimedWord, align_words
from shared.audio.timing import WordTiming


@dataclass(frozen=True)
class Respelling:
    """Words said in place of others: ``said_start``..``said_end`` in the said text stand
    for ``written_start``..``written_end`` in the written text (ends exclusive). Around
    the respellings, the two texts are alike."""

    said_start: int
    said_end: int
    written_start: int
    written_end: int


def words_as_written(
    words: Sequence[TimedWord],
    written: str,
    respellings: Sequence[Respelling],
    duration: float,
) -> list[TimedWord]:
    """Return one ``TimedWord`` per word of ``written``, timed from ``words``.

    ``words`` are timed on the said text, their character spans indexing it;
    ``respellings`` (in order) say where it differs from ``written``. A written word no
    said word falls on (an empty alias) is interpolated as ``align_words`` does.

    Raises:
        ValueError: ``duration`` is negative.
    """
    if not respellings:
        return list(words)
    timings = [
        WordTiming(
            word.text,
            word.start,
            word.end,
            _to_written(word.char_start, respellings, end=False),
            _to_written(word.char_end - 1, respellings, end=True) + 1,
        )
        for word in words
    ]
    return align_words(written, timings, duration)


def _to_written(position: int, respellings: Sequence[Respelling], *, end: bool) -> int:
    # A position inside a respelling stands for the whole of what was written there: its
    # first character, or (``end``) its last.
    shift = 0
    for respelling in respellings:
        if position < respelling.said_start:
            break
        if position < respelling.said_end:
            return respelling.written_end - 1 if end else respelling.written_start
        shift = respelling.written_end - respelling.said_end
    return position + shift
