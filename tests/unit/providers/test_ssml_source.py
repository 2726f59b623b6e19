"""Where the words written in an SSML document are in its source (``SsmlSource``)."""

from __future__ import annotations

import pytest

from shared.audio.timing import tokenize_words
from shared.providers.ssml import ssml_text, validate_ssml
from shared.providers.ssml_source import SsmlSource


def sources_of_words(ssml: str) -> list[str]:
    written = ssml_text(validate_ssml(ssml)).written
    source = SsmlSource(ssml, written)
    spans = [source.span(token.start, token.end) for token in tokenize_words(written)]
    return [ssml[start:end] for start, end in spans]


def test_each_written_word_spans_where_it_is_written():
    ssml = (
        '<?xml version="1.0"?>\r\n<speak>Say\r\n<sub alias="World Wide Web">WWW</sub> to'
        " AT&amp;T, caf&#233; &#x1F600;<!-- a note -->ok <![CDATA[x<y]]> su<emphasis>per"
        '</emphasis>man <break time="1s"/>again.</speak>'
    )
    assert sources_of_words(ssml) == [
        "Say",
        "WWW",  # the content, not the alias
        "to",
        "AT&amp;T",  # a reference is one character of the word, spanned whole
        "caf&#233;",
        "&#x1F600;<!-- a note -->ok",  # a comment inside a word is inside its span
        "x<y",  # CDATA's text as written
        "su<emphasis>per</emphasis>man",
        "again",
    ]


def test_a_written_text_of_another_document_is_refused():
    with pytest.raises(ValueError, match="not the text of this document"):
        SsmlSource("<speak>Hello</speak>", "Hallo")
