"""Which written word each phoneme speaks, and so when each word is heard.

A phonemizer reads text its own way: "$42.50" becomes six phoneme words ("dollar forty two
point five zero"), "Dr." becomes "doctor", "of the" becomes one phoneme word ("ʌvðə"), and
a sentence's phonemes say nothing about the characters they came from. To map them back,
each whitespace-separated chunk of the text is phonemized on its own; the chunks' phonemes,
each labelled with its chunk, are aligned (``difflib``) with the phonemes of the whole
text, and every matched phoneme takes the label it met. Stress and length marks, spaces and
punctuation take no part in the match (they differ between a word said alone and in a
sentence). Then, per phoneme word of the sentence: a word with one label belongs to that
chunk; a word joining several chunks is split where the labels change; a word no label
reached ("a" is /ɐ/ in a sentence but its letter name alone) goes to the chunks between
its neighbours that nothing else spoke, else to the chunk before it.

``label_phonemes`` does the labelling; ``sentence_word_timings`` turns the labels and the
samples each phoneme lasted (Piper's alignments) into ``WordTiming`` values for the words.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.audio.timing import WordTiming, tokenize_words

WORD_BREAK = " "
# Marks that modify the phoneme around them, and clause punctuation the phonemizer keeps.
_NOT_COMPARED = frozenset("ˈˌːˑ" + WORD_BREAK + ".,!?;:-—…\"'()")
PAUSES = frozenset(".,!?;:—…")

_CHUNK = re.compile(r"\S+")

Phonemize = Callable[[str], Sequence[str]]
"""Returns the phonemes of a piece of text (one list, sentences joined)."""


@dataclass(frozen=True)
class Chunk:
    """A whitespace-separated piece of the text and the written word inside it, if any."""

    start: int
    end: int
    word_start: int | None
    word_end: int | None


def chunks_of(text: str) -> list[Chunk]:
    """Return the whitespace-separated chunks of ``text`` with the word each holds.

    The word is the chunk as ``tokenize_words`` cuts it (signs written on it kept, as in
    "$42.50", the punctuation around it left out); a chunk of punctuation or signs only
    ("--", "&") holds none.
    """
    tokens = {token.start: token for token in tokenize_words(text)}
    chunks: list[Chunk] = []
    for match in _CHUNK.finditer(text):
        found = next(
            (tokens[i] for i in range(match.start(), match.end()) if i in tokens),
            None,
        )
        chunks.append(
            Chunk(
                match.start(),
                match.end(),
                found.start if found else None,
                found.end if found else None,
            )
        )
    return chunks


def label_phonemes(
    text: str,
    chunks: Sequence[Chunk],
    sentences: Sequence[Sequence[str]],
    phonemize: Phonemize,
) -> list[list[int | None]]:
    """Return, for each phoneme of each sentence, the index of the chunk it speaks.

    ``sentences`` are the phonemizer's phonemes of ``text`` (one list per sentence, word
    breaks as ``" "``); ``phonemize`` reads one chunk alone. Word breaks and pauses get None.
    """
    labelled: list[str] = []
    labels: list[int] = []
    for index, chunk in enumerate(chunks):
        for phoneme in phonemize(text[chunk.start : chunk.end]):
            if phoneme not in _NOT_COMPARED:
                labelled.append(phoneme)
                labels.append(index)
    positions = [
        (s, p)
        for s, sentence in enumerate(sentences)
        for p, phoneme in enumerate(sentence)
        if phoneme not in _NOT_COMPARED
    ]
    spoken = [sentences[s][p] for s, p in positions]
    result: list[list[int | None]] = [[None] * len(sentence) for sentence in sentences]
    matcher = difflib.SequenceMatcher(None, labelled, spoken, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            s, p = positions[b + k]
            result[s][p] = labels[a + k]
    _label_words(result, sentences, len(chunks))
    return result


def _words_of(sentence: Sequence[str]) -> list[list[int]]:
    # Phoneme indices of each word: runs between word breaks, pauses excluded.
    words: list[list[int]] = []
    current: list[int] = []
    for index, phoneme in enumerate(sentence):
        if phoneme == WORD_BREAK:
            if current:
                words.append(current)
            current = []
        elif phoneme not in PAUSES:
            current.append(index)
    if current:
        words.append(current)
    return words


def _label_words(
    result: list[list[int | None]], sentences: Sequence[Sequence[str]], chunk_count: int
) -> None:
    words = [(s, word) for s, sentence in enumerate(sentences) for word in _words_of(sentence)]
    orphans: list[int] = []
    for position, (s, word) in enumerate(words):
        labels = result[s]
        known = [labels[i] for i in word if labels[i] is not None]
        if not known:
            orphans.append(position)
            continue
        # Marks and unmatched phonemes take the label of what follows them (stress precedes
        # its syllable), the word's last ones the label before them.
        following: int | None = None
        for i in reversed(word):
            if labels[i] is None:
                labels[i] = following
            else:
                following = labels[i]
        previous: int | None = None
        for i in word:
            if labels[i] is None:
                labels[i] = previous
            else:
                previous = labels[i]
    _place_orphans(result, words, orphans, chunk_count)
    for s, sentence in enumerate(sentences):
        for index, phoneme in enumerate(sentence):
            if phoneme == WORD_BREAK or phoneme in PAUSES:
                result[s][index] = None


def _place_orphans(
    result: list[list[int | None]],
    words: list[tuple[int, list[int]]],
    orphans: list[int],
    chunk_count: int,
) -> None:
    spoken = {label for labels in result for label in labels if label is not None}

    def label_of(position: int) -> int | None:
        s, word = words[position]
        return next((result[s][i] for i in word if result[s][i] is not None), None)

    index = 0
    while index < len(orphans):
        run = [orphans[index]]
        while index + len(run) < len(orphans) and orphans[index + len(run)] == run[-1] + 1:
            run.append(orphans[index + len(run)])
        before = label_of(run[0] - 1) if run[0] > 0 else None
        after = label_of(run[-1] + 1) if run[-1] + 1 < len(words) else None
        low = -1 if before is None else before
        high = chunk_count if after is None else after
        silent = [c for c in range(low + 1, high) if c not in spoken]
        for k, position in enumerate(run):
            if silent:
                label: int | None = silent[min(k * len(silent) // len(run), len(silent) - 1)]
            else:
                label = before if before is not None else after
            s, word = words[position]
            for i in word:
                result[s][i] = label
        index += len(run)


def sentence_word_timings(
    text: str,
    chunks: Sequence[Chunk],
    labels: Sequence[int | None],
    *,
    samples: Sequence[int],
    lead_samples: int,
    samples_per_second: float,
    timed: set[int],
) -> list[WordTiming]:
    """Return the timings of the written words one sentence speaks, in order.

    ``labels`` are the sentence's phoneme labels (from ``label_phonemes``), ``samples[p]``
    how many samples phoneme ``p`` lasted, and ``lead_samples`` the sentence's opening
    silence; seconds count from the start of the sentence's audio. A word runs from the
    start of its first phoneme to the end of its last. Chunks in ``timed`` (spoken by an
    earlier sentence) are skipped, and the chunks timed here are added to it. Character
    spans index ``text``.
    """
    spans: dict[int, tuple[int, int]] = {}
    position = lead_samples
    for label, count in zip(labels, samples, strict=True):
        end = position + count
        if label is not None and label not in timed:
            first = spans.get(label, (position, end))[0]
            spans[label] = (first, end)
        position = end
    words: list[WordTiming] = []
    for index in sorted(spans):
        timed.add(index)
        chunk = chunks[index]
        if chunk.word_start is None or chunk.word_end is None:
            continue
        first, last = spans[index]
        words.append(
            WordTiming(
                text[chunk.word_start : chunk.word_end],
                first / samples_per_second,
                last / samples_per_second,
                chunk.word_start,
                chunk.word_end,
            )
        )
    return words
