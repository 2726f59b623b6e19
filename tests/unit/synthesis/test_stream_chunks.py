"""How a streamed text is cut: a short first chunk, then sentence chunks up to the limit."""

from __future__ import annotations

from shared.synthesis.stream_render import stream_chunks

TEXT = (
    "The first sentence of this text goes on, well past the first chunk's limit. "
    "Then a short one. And another. A third short one follows."
)


def test_the_first_chunk_is_the_first_sentence_cut_short_the_rest_merged():
    chunks = stream_chunks(TEXT, 60, 40)
    assert [c.text for c in chunks] == [
        "The first sentence of this text goes on,",  # cut at the clause mark
        "well past the first chunk's limit. Then a short one.",  # merged up to 60
        "And another. A third short one follows.",
    ]
    for chunk in chunks:
        assert TEXT[chunk.start : chunk.end] == chunk.text
    assert " ".join(c.text for c in chunks) == TEXT.strip()


def test_a_short_first_sentence_goes_alone():
    chunks = stream_chunks("Hi there. How are you today? Fine.", 200, 60)
    assert [c.text for c in chunks] == ["Hi there.", "How are you today? Fine."]
