"""SSML builders escape user text; user SSML is checked before any provider sees it."""

from __future__ import annotations

import pytest

from shared.audio.timing import tokenize_words, words_from_marks
from shared.errors import InvalidRequestError
from shared.providers.ssml import (
    build_speak,
    dialogue_ssml,
    elevenlabs_dialogue_inputs,
    escape_text,
    google_multispeaker_markup,
    ssml_text,
    ssml_to_text,
    ssml_with_marks,
    validate_ssml,
)
from shared.providers.voices import DialogueTurn

INJECTION = "He said \"<break time='10s'/>\" & left"


def local_names(ssml: str) -> list[str]:
    return [element.tag.rsplit("}", 1)[-1] for element in validate_ssml(ssml).iter()]


def test_escape_text_escapes_every_markup_character():
    assert escape_text("<a href='x'>\"&\"</a>") == (
        "&lt;a href=&apos;x&apos;&gt;&quot;&amp;&quot;&lt;/a&gt;"
    )


@pytest.mark.parametrize(
    "build",
    [
        build_speak,
        lambda text: build_speak(text, rate=1.3, voice="en-US-Jenny", dialect="azure"),
        lambda text: ssml_with_marks(text)[0],
        lambda text: dialogue_ssml(
            [DialogueTurn(speaker="A", voice="v1", text=text)], 300, language="en-US"
        ),
    ],
)
def test_markup_in_user_text_is_spoken_not_parsed(build):
    ssml = build(INJECTION)

    assert "break" not in local_names(ssml)
    assert ssml_to_text(ssml) == INJECTION


def test_marks_precede_each_word_and_map_back_to_the_words():
    text = "Hello, brave new world!"

    ssml, names = ssml_with_marks(text, language="en-US")

    assert names == ["w0", "w1", "w2", "w3"]
    root = validate_ssml(ssml)
    assert [mark.get("name") for mark in root.iter("mark")] == names
    assert ssml_to_text(ssml) == text
    # A provider's mark times (one per name) become word timings over the original text.
    words = words_from_marks(tokenize_words(text), [0.0, 0.4, 0.9, 1.2], 1.8)
    assert [w.text for w in words] == ["Hello", "brave", "new", "world"]


def test_build_speak_turns_multipliers_into_prosody():
    google = build_speak("Hi", rate=1.5, pitch=2.0, volume=0.5, language="en-US")
    azure = build_speak("Hi", rate=1.5, volume=0.5, voice="en-US-Jenny", dialect="azure")

    assert google == (
        '<speak xml:lang="en-US"><prosody rate="150%" pitch="+12.00st" volume="-6.02dB">'
        "Hi</prosody></speak>"
    )
    assert azure == (
        '<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis">'
        '<voice name="en-US-Jenny"><prosody rate="1.50" volume="-50%">Hi</prosody></voice>'
        "</speak>"
    )
    assert build_speak("Hi") == "<speak>Hi</speak>"
    assert 'volume="silent"' in build_speak("Hi", volume=0.0)


def test_valid_user_ssml_passes_and_says_its_text():
    ssml = (
        '<speak xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">'
        "<p><s>Hello <emphasis>there</emphasis>.</s><s>I am <sub alias='World Wide Web'>"
        "WWW</sub> <say-as interpret-as='cardinal'>3</say-as>"
        '<break time="300ms"/>years old.</s></p><!-- a note --></speak>'
    )

    validate_ssml(ssml)

    assert ssml_to_text(ssml) == "Hello there. I am World Wide Web 3 years old."


def test_ssml_text_is_what_the_document_says_and_what_its_author_wrote():
    ssml = (
        "<speak><p>Visit <sub alias='World  Wide Web'>WWW</sub>\n today.</p>"
        "<s>Spell <say-as interpret-as='characters'>ABC</say-as> as "
        "<sub alias='W3C'>World <emphasis>Wide</emphasis> Web Consortium</sub></s></speak>"
    )

    text = ssml_text(validate_ssml(ssml))

    assert text.spoken == ssml_to_text(ssml) == "Visit World Wide Web today. Spell ABC as W3C"
    assert text.written == "Visit WWW today. Spell ABC as World Wide Web Consortium"
    assert [
        (text.spoken[r.said_start : r.said_end], text.written[r.written_start : r.written_end])
        for r in text.respellings
    ] == [("World Wide Web", "WWW"), ("W3C", "World Wide Web Consortium")]


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    "<speak>&lol2;</speak>"
)
XXE = '<!DOCTYPE speak [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><speak>&xxe;</speak>'


@pytest.mark.parametrize(
    ("ssml", "message"),
    [
        (BILLION_LAUGHS, "DOCTYPE or ENTITY"),
        (XXE, "DOCTYPE or ENTITY"),
        ("<speak><!entity x 'y'></speak>", "DOCTYPE or ENTITY"),
        ("<speak>Hello", "not well-formed XML"),
        ("<speak>Tom & Jerry</speak>", "not well-formed XML"),
        ("<voice>Hi</voice>", "root element"),
        ("<speak><audio src='http://169.254.169.254/'/></speak>", "<audio> is not allowed"),
        ("<speak><script>x</script></speak>", "<script> is not allowed"),
    ],
)
def test_unsafe_or_malformed_ssml_is_refused(ssml, message):
    with pytest.raises(InvalidRequestError, match=message) as caught:
        validate_ssml(ssml)

    assert caught.value.code == "VALIDATION_ERROR"


def turns() -> list[DialogueTurn]:
    return [
        DialogueTurn(speaker="Alice", voice="en-US-JennyNeural", text="Hi Bob & <friends>!"),
        DialogueTurn(speaker="Bob", voice="en-US-GuyNeural", text='Hi "Alice".'),
        DialogueTurn(speaker="Alice", voice="en-US-JennyNeural", text="Bye."),
    ]


def test_dialogue_ssml_gives_each_turn_its_voice_and_a_pause_between_turns():
    ssml = dialogue_ssml(turns(), 400, language="en-US")

    root = validate_ssml(ssml)
    voices = [el for el in root.iter() if el.tag.endswith("}voice")]
    assert [v.get("name") for v in voices] == [
        "en-US-JennyNeural",
        "en-US-GuyNeural",
        "en-US-JennyNeural",
    ]
    assert ["".join(v.itertext()) for v in voices] == [t.text for t in turns()]
    breaks = [el.get("time") for el in root.iter() if el.tag.endswith("}break")]
    assert breaks == ["400ms", "400ms"]
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-US"


def test_dialogue_ssml_without_pause_or_turns():
    assert "break" not in dialogue_ssml(turns(), 0, language="en-US")
    with pytest.raises(ValueError, match="at least one turn"):
        dialogue_ssml([], 100, language="en-US")
    with pytest.raises(ValueError, match="negative"):
        dialogue_ssml(turns(), -1, language="en-US")


def test_provider_dialogue_inputs_keep_turn_order_and_plain_text():
    assert google_multispeaker_markup(turns()[:2]) == {
        "turns": [
            {"speaker": "en-US-JennyNeural", "text": "Hi Bob & <friends>!"},
            {"speaker": "en-US-GuyNeural", "text": 'Hi "Alice".'},
        ]
    }
    assert elevenlabs_dialogue_inputs(turns())[1] == {
        "text": 'Hi "Alice".',
        "voice_id": "en-US-GuyNeural",
    }
