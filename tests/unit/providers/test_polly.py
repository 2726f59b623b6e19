"""Amazon Polly: the API's shape through moto, errors and speech marks through Stubber.

moto answers ``DescribeVoices`` with AWS's real voice list but ``SynthesizeSpeech`` with 8
placeholder bytes, so speech-mark parsing is checked with recorded JSON lines instead.
"""

from __future__ import annotations

import io
import json

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from shared.audio.timestamps import align_words
from shared.audio.timing import utf8_byte_to_char_offsets
from shared.providers.base import AudioSettings, ErrorCategory, ProviderError, SynthesisRequest
from shared.providers.polly import PollyProvider, words_from_speech_marks
from shared.providers.voices import Gender
from tests.support.signed_words import SIGNED_TEXT, SIGNED_WORDS

# Recorded from Polly for "Mary had a little lamb." (word marks only).
RECORDED_MARKS = b"""{"time":6,"type":"word","start":0,"end":4,"value":"Mary"}
{"time":373,"type":"word","start":5,"end":8,"value":"had"}
{"time":604,"type":"word","start":9,"end":10,"value":"a"}
{"time":643,"type":"word","start":11,"end":17,"value":"little"}
{"time":882,"type":"word","start":18,"end":22,"value":"lamb"}
"""


@pytest.fixture
def moto_polly():
    with mock_aws():
        yield PollyProvider(
            region="us-east-1", access_key_id="testing", secret_access_key="testing"
        )


def test_describe_voices_via_moto_gives_the_real_list(moto_polly):
    voices = {v.voice_id: v for v in moto_polly.list_voices()}
    assert len(voices) == 98
    joanna = voices["Joanna"]
    assert (joanna.id, joanna.language, joanna.gender) == ("polly:Joanna", "en-US", Gender.FEMALE)
    assert "neural" in joanna.metadata["supportedEngines"]
    assert all(v.gender in (Gender.MALE, Gender.FEMALE) for v in voices.values())
    assert not any(v.supports_multi_speaker for v in voices.values())


def test_synthesize_shape_via_moto(moto_polly):
    result = moto_polly.synthesize(
        SynthesisRequest(
            text="Hello there",
            voice_id="Joanna",
            want_timings=False,
            settings=AudioSettings(sample_rate=16_000, pitch=1.5),
        )
    )
    assert result.pcm == b"\x00" * 8  # moto's placeholder audio
    assert result.sample_rate == 16_000
    assert result.unapplied == ("pitch",), "neural voices take no pitch prosody"


def test_placeholder_marks_from_moto_are_a_malformed_reply(moto_polly):
    with pytest.raises(ProviderError) as caught:
        moto_polly.synthesize(SynthesisRequest(text="Hello there", voice_id="Joanna"))
    assert caught.value.category is ErrorCategory.PERMANENT


def test_recorded_speech_marks_become_words():
    text = "Mary had a little lamb."
    words = words_from_speech_marks(RECORDED_MARKS, text, utf8_byte_to_char_offsets(text), 1.5)
    assert [(w.text, w.char_start, w.char_end) for w in words] == [
        ("Mary", 0, 4),
        ("had", 5, 8),
        ("a", 9, 10),
        ("little", 11, 17),
        ("lamb", 18, 22),
    ]
    assert [w.start_seconds for w in words] == [0.006, 0.373, 0.604, 0.643, 0.882]
    assert words[0].end_seconds == 0.373
    assert words[-1].end_seconds == 1.5


def stub_client(provider: PollyProvider):
    client = provider._polly()
    return client, Stubber(client)


def stream(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def stub_speech(stubber, *, voice: str, language: str, ssml: str, marks: bytes) -> None:
    """Stub one standard-engine synthesis of ``ssml`` by ``voice``: its voice list, a
    second of 16 kHz PCM, then ``marks`` (speech marks, JSON lines)."""
    stubber.add_response(
        "describe_voices",
        {
            "Voices": [
                {
                    "Id": voice,
                    "LanguageCode": language,
                    "Gender": "Female",
                    "SupportedEngines": ["standard"],
                }
            ]
        },
    )
    stubber.add_response(
        "synthesize_speech",
        {"AudioStream": stream(b"\x01\x00" * 16_000), "ContentType": "audio/pcm"},
        {
            "Text": ssml,
            "TextType": "ssml",
            "VoiceId": voice,
            "Engine": "standard",
            "OutputFormat": "pcm",
            "SampleRate": "16000",
        },
    )
    stubber.add_response(
        "synthesize_speech",
        {"AudioStream": stream(marks), "ContentType": "application/x-json-stream"},
    )


def test_synthesis_maps_marks_back_through_the_ssml_wrapper():
    provider = PollyProvider(region="us-east-1", access_key_id="a", secret_access_key="b")
    _client, stubber = stub_client(provider)
    text = "Café & crème"
    # Polly's byte offsets index the SSML it received: find each word there.
    head = '<speak><prosody rate="100%">'
    ssml_words = [("Café", head), ("crème", head + "Café &amp; ")]
    marks = "\n".join(
        json.dumps(
            {
                "time": 100 * i,
                "type": "word",
                "start": len(prefix.encode()),
                "end": len(prefix.encode()) + len(w.encode()),
                "value": w,
            }
        )
        for i, (w, prefix) in enumerate(ssml_words)
    ).encode()
    stub_speech(
        stubber,
        voice="Lea",
        language="fr-FR",
        ssml=f"{head}Café &amp; crème</prosody></speak>",
        marks=marks,
    )
    with stubber:
        result = provider.synthesize(
            SynthesisRequest(text=text, voice_id="Lea", settings=AudioSettings(sample_rate=16_000))
        )
    assert [(w.text, w.char_start, w.char_end) for w in result.words] == [
        ("Café", 0, 4),
        ("crème", 7, 12),
    ]
    assert result.duration_seconds == pytest.approx(1.0)
    assert result.words[-1].end_seconds == pytest.approx(1.0)


def test_speech_marks_on_signed_words_time_the_whole_written_word():
    provider = PollyProvider(region="us-east-1", access_key_id="a", secret_access_key="b")
    _client, stubber = stub_client(provider)
    text = SIGNED_TEXT
    head = '<speak><prosody rate="100%">'
    # Polly marks "$5" and "50%" whole; here it marks "C" and "++" apart, as eSpeak does.
    spans = [(0, 2), (3, 8), (9, 11), (13, 17), (18, 20), (21, 24), (25, 28), (29, 30)]
    spans += [(30, 32), (33, 38)]
    marks = "\n".join(
        json.dumps(
            {
                "time": 100 * i,
                "type": "word",
                "start": len(head) + start,
                "end": len(head) + end,
                "value": text[start:end],
            }
        )
        for i, (start, end) in enumerate(spans)
    ).encode()
    stub_speech(
        stubber,
        voice="Joanna",
        language="en-US",
        ssml=f"{head}{text}</prosody></speak>",
        marks=marks,
    )
    with stubber:
        result = provider.synthesize(
            SynthesisRequest(
                text=text, voice_id="Joanna", settings=AudioSettings(sample_rate=16_000)
            )
        )

    words = align_words(text, result.words, result.duration_seconds)

    assert [(w.text, w.char_start, w.char_end) for w in words] == SIGNED_WORDS
    assert (words[2].start, words[2].end) == pytest.approx((0.2, 0.3))
    assert (words[7].start, words[7].end) == pytest.approx((0.7, 0.9))


@pytest.mark.parametrize(
    ("code", "status", "category"),
    [
        ("UnrecognizedClientException", 400, ErrorCategory.AUTH),
        ("AccessDeniedException", 403, ErrorCategory.AUTH),
        ("ThrottlingException", 400, ErrorCategory.RATE_LIMITED),
        ("TooManyRequestsException", 429, ErrorCategory.RATE_LIMITED),
        ("ServiceFailureException", 500, ErrorCategory.TRANSIENT),
        ("InvalidNextTokenException", 400, ErrorCategory.PERMANENT),
    ],
)
def test_client_errors_map_to_categories(code, status, category):
    provider = PollyProvider(region="us-east-1", access_key_id="a", secret_access_key="b")
    _, stubber = stub_client(provider)
    stubber.add_client_error(
        "describe_voices",
        service_error_code=code,
        http_status_code=status,
        response_meta={"HTTPHeaders": {"retry-after": "4"}},
    )
    with stubber, pytest.raises(ProviderError) as caught:
        provider.list_voices()
    assert caught.value.category is category
    assert caught.value.retry_after == (4 if category.retryable else None)


def test_unreachable_endpoint_is_transient():
    from tests.support.processes import free_port

    provider = PollyProvider(
        region="us-east-1",
        endpoint=f"http://127.0.0.1:{free_port()}",
        access_key_id="a",
        secret_access_key="b",
        timeout=1,
    )
    with pytest.raises(ProviderError) as caught:
        provider.list_voices()
    assert caught.value.category is ErrorCategory.TRANSIENT


def test_pagination_follows_next_token():
    provider = PollyProvider(region="us-east-1", access_key_id="a", secret_access_key="b")
    _, stubber = stub_client(provider)
    stubber.add_response(
        "describe_voices",
        {
            "Voices": [{"Id": "Joanna", "LanguageCode": "en-US", "Gender": "Female"}],
            "NextToken": "page2",
        },
    )
    stubber.add_response(
        "describe_voices",
        {"Voices": [{"Id": "Hans", "LanguageCode": "de-DE", "Gender": "Male"}]},
        {"IncludeAdditionalLanguageCodes": True, "NextToken": "page2"},
    )
    with stubber:
        assert [v.voice_id for v in provider.list_voices()] == ["Joanna", "Hans"]


def test_credentials_never_in_repr():
    provider = PollyProvider(
        region="us-east-1", access_key_id="AKIDSECRET", secret_access_key="s3cr3t"
    )
    assert "AKIDSECRET" not in repr(provider)
    assert "s3cr3t" not in repr(provider)


def test_text_beyond_pollys_3000_billed_characters_is_refused_before_sending():
    # Polly's TextLengthExceededException: at most 3,000 billed characters (6,000 in all).
    provider = PollyProvider(region="us-east-1", access_key_id="a", secret_access_key="b")
    _, stubber = stub_client(provider)
    assert provider.capabilities.max_input_chars == 3_000, "callers cut text to fit"
    with stubber, pytest.raises(ProviderError) as caught:
        provider.synthesize(SynthesisRequest(text="word " * 700, voice_id="Joanna"))
    assert caught.value.category is ErrorCategory.PERMANENT
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("ssml", "refused"),
    [
        # 2,900 billed characters in 4,000 or so in all: Polly takes it.
        (
            "<speak>"
            + ('<s><prosody rate="90%">' + "x" * 100 + "</prosody></s>") * 29
            + "</speak>",
            False,
        ),
        ("<speak>" + "x" * 3_001 + "</speak>", True),  # billed beyond 3,000
        ("<speak>" + "<s>xx</s>" * 700 + "</speak>", True),  # 1,400 billed, 6,315 in all
    ],
)
def test_ssml_is_measured_as_polly_bills_it(ssml, refused):
    provider = PollyProvider(region="us-east-1", access_key_id="a", secret_access_key="b")
    request = SynthesisRequest(text=ssml, voice_id="Joanna", ssml=True)
    if refused:
        with pytest.raises(ProviderError) as caught:
            provider.check_input(request)
        assert caught.value.category is ErrorCategory.PERMANENT
    else:
        provider.check_input(request)
