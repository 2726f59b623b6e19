"""POST /synthesize over HTTP: the real function, real dev tokens, the real eSpeak engine.

Provider calls are counted by ``CountingEspeak`` (a subclass of the real provider), so
cache hits and single-flight are proven by what the engine was asked to do.
"""

from __future__ import annotations

import itertools
import threading
import urllib.parse
from typing import Any

import pytest

from shared.audio.encode import decode_duration
from shared.bootstrap import get_container
from shared.catalog.repository import VoiceRepository
from shared.providers.base import (
    ErrorCategory,
    SynthesisRequest,
    SynthesisResult,
    provider_error,
)
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from shared.providers.voices import VoiceProfile
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis_fixtures import CountingEspeak

SENTENCE = "The quick brown fox jumps over the lazy dog near the riverbank today."

# The shared fixtures, registered in this module.
ann = fx.ann
bob = fx.bob
espeak = fx.espeak
synthesis_client = fx.synthesis_client


def say(client: Any, headers: dict[str, str], expect: int = 200, **fields: Any) -> dict[str, Any]:
    body = {"text": SENTENCE, "voice": "espeak:en-US", **fields}
    response = client.post("/synthesize", json=body, headers=headers)
    assert response.status_code == expect, response.get_json()
    return dict(response.get_json())


def fetch(url: str) -> bytes:
    """Return the bytes behind a signed download URL of the embedded object storage."""
    parts = urllib.parse.urlsplit(url)
    bucket, _, name = parts.path.removeprefix("/_blobs/").partition("/")
    return get_container().blobs.get(bucket, urllib.parse.unquote(name))


def test_short_text_returns_file_with_word_and_syllable_timestamps(synthesis_client, ann):
    body = say(synthesis_client, ann)
    assert body["status"] == "completed"
    assert body["cacheHit"] is False
    assert body["format"] == "wav"
    assert body["sampleRate"] == 22_050
    assert body["checksum"].startswith("sha256:")
    assert body["size"] > 1000
    assert body["jobId"]
    assert body["audioFileId"]
    data = fetch(body["downloadUrl"])
    assert len(data) == body["size"]
    duration = body["duration"]
    assert decode_duration(data, "wav") == pytest.approx(duration, abs=0.01)
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == SENTENCE.rstrip(".").split()
    previous_end = 0.0
    for word in words:
        assert previous_end <= word["start"] <= word["end"] <= duration
        previous_end = word["end"]
    assert words[-1]["end"] > duration * 0.8
    syllables = body["timestamps"]["syllables"]
    assert len(syllables) > len(words)
    assert {s["wordIndex"] for s in syllables} == set(range(len(words)))
    previous_end = 0.0
    for syllable in syllables:
        word = words[syllable["wordIndex"]]
        assert word["start"] <= syllable["start"] <= syllable["end"] <= word["end"]
        assert syllable["start"] >= previous_end - 1e-9
        previous_end = syllable["end"]
    # eSpeak's phonemes decide the count: "riverbank" has three syllables.
    river = [s["text"] for s in syllables if s["wordIndex"] == words.index(words[-2])]
    assert "".join(river) == "riverbank"
    assert len(river) == 3


def test_numbers_signs_and_abbreviations_are_one_syllable_over_their_word(synthesis_client, ann):
    body = say(
        synthesis_client, ann, text="Dr Smith paid $42 for 3 km.", timestampGranularity="both"
    )
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == ["Dr", "Smith", "paid", "$42", "for", "3", "km"]
    syllables = body["timestamps"]["syllables"]
    for index, word in enumerate(words):
        own = [s for s in syllables if s["wordIndex"] == index]
        assert "".join(s["text"] for s in own) == word["text"]
    for index in (0, 3, 5, 6):  # "Dr", "$42", "3" and "km", however many syllables said
        own = [(s["text"], s["start"], s["end"]) for s in syllables if s["wordIndex"] == index]
        assert own == [(words[index]["text"], words[index]["start"], words[index]["end"])]


def syllables_by_word(text: str, body: dict[str, Any]) -> list[list[str]]:
    """Return each word's syllables of a syllables-only answer, checking that each is the
    slice of ``text`` its span names and that a word's syllables share its time in turn."""
    syllables = body["timestamps"]["syllables"]
    assert "words" not in body["timestamps"]
    words: list[list[dict[str, Any]]] = []
    for syllable in syllables:
        assert text[syllable["charStart"] : syllable["charEnd"]] == syllable["text"]
        assert syllable["start"] < syllable["end"]
        if syllable["wordIndex"] == len(words):
            words.append([])
        words[syllable["wordIndex"]].append(syllable)
    for own in words:
        assert all(a["end"] == pytest.approx(b["start"]) for a, b in itertools.pairwise(own))
    return [[syllable["text"] for syllable in own] for own in words]


def test_dotted_abbreviations_are_a_syllable_per_letter(synthesis_client, ann):
    text = "The U.S. team met, e.g. at noon, i.e. early in D.C. today."
    body = say(synthesis_client, ann, text=text, timestampGranularity="syllable")
    by_word = syllables_by_word(text, body)
    # eSpeak says each letter ("e.g." is "ee-jee"): a syllable each, its dot with it.
    assert [by_word[i] for i in (1, 4, 7, 10)] == [
        ["U.", "S"],
        ["e.", "g"],
        ["i.", "e"],
        ["D.", "C"],
    ]


def test_a_number_in_a_japanese_word_is_a_syllable_of_its_own(synthesis_client, ann):
    text = "2024年3月に第3回の会議。"
    body = say(synthesis_client, ann, text=text, voice="espeak:ja", timestampGranularity="syllable")
    assert syllables_by_word(text, body) == [
        ["2024", "年", "3", "月", "に", "第", "3", "回", "の", "会", "議"]
    ]


def test_a_fullwidth_percent_sign_is_of_its_japanese_word(synthesis_client, ann):
    text = "50\uff05、値上げ。"  # a fullwidth percent sign
    body = say(synthesis_client, ann, text=text, voice="espeak:ja", timestampGranularity="word")
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == ["50\uff05", "値上げ"]
    assert (words[0]["charStart"], words[0]["charEnd"]) == (0, 3)
    assert 0 <= words[0]["start"] < words[0]["end"] <= words[1]["start"]


class PhonemizingEspeak(CountingEspeak):
    """The real eSpeak provider, recording the words it is asked to phonemize."""

    def __init__(self) -> None:
        super().__init__()
        self.phonemized: list[str] = []

    def phonemes(self, words: list[str], voice_id: str) -> list[str | None]:
        self.phonemized.extend(words)
        return super().phonemes(words, voice_id)


def test_words_read_whole_or_by_letter_are_not_phonemized(synthesis_client, ann):
    provider = PhonemizingEspeak()
    get_container().use_provider_registry(ProviderRegistry.of([provider]))
    # Words no other test asks for (each word's phonemes are remembered once asked).
    text = "Sgt Quimby paid $6172 for 38 kg of Zorblax, q.v. in N.Y.C."
    body = say(synthesis_client, ann, text=text, timestampGranularity="syllable")
    assert {"Quimby", "Zorblax"} <= set(provider.phonemized)
    assert not {"Sgt", "$6172", "38", "kg", "q.v", "N.Y.C"} & set(provider.phonemized)
    by_word = syllables_by_word(text, body)
    assert [by_word[i] for i in (0, 3, 5, 6, 9, 11)] == [
        ["Sgt"],
        ["$6172"],
        ["38"],
        ["kg"],
        ["q.", "v"],
        ["N.", "Y.", "C"],
    ]


def test_granularity_and_no_timestamps(synthesis_client, ann):
    word_only = say(synthesis_client, ann, timestampGranularity="word")
    assert set(word_only["timestamps"]) == {"words"}
    syllable_only = say(synthesis_client, ann, timestampGranularity="syllable")
    assert set(syllable_only["timestamps"]) == {"syllables"}
    assert say(synthesis_client, ann, includeTimestamps=False)["timestamps"] is None


@pytest.mark.parametrize(
    ("fmt", "rate", "expected_rate"),
    [
        ("wav", None, 22_050),
        ("flac", 16_000, 16_000),
        ("mp3", None, 22_050),
        ("ogg_opus", None, 24_000),
        ("ogg_opus", 48_000, 48_000),
        ("pcm", 16_000, 16_000),
    ],
)
def test_every_format_decodes_back_to_its_duration(synthesis_client, ann, fmt, rate, expected_rate):
    fields: dict[str, Any] = {"outputFormat": fmt}
    if rate:
        fields["sampleRate"] = rate
    body = say(synthesis_client, ann, **fields)
    assert body["format"] == fmt
    assert body["sampleRate"] == expected_rate
    data = fetch(body["downloadUrl"])
    decoded = decode_duration(data, fmt, sample_rate=expected_rate)
    assert decoded == pytest.approx(body["duration"], abs=0.03)
    assert body["timestamps"]["words"][-1]["end"] <= body["duration"]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("opus", "ogg_opus"), ("ogg", "ogg_opus"), ("OGG_OPUS", "ogg_opus"), ("MP3", "mp3")],
)
def test_common_format_names_are_accepted(synthesis_client, ann, name, fmt):
    body = say(synthesis_client, ann, outputFormat=name)
    assert body["format"] == fmt
    data = fetch(body["downloadUrl"])
    assert decode_duration(data, fmt) == pytest.approx(body["duration"], abs=0.03)


def test_opus_refuses_a_rate_it_cannot_encode(synthesis_client, ann):
    body = say(synthesis_client, ann, expect=400, outputFormat="ogg_opus", sampleRate=22_050)
    assert "8000, 12000, 16000, 24000, 48000" in body["error"]


def test_speed_changes_the_duration(synthesis_client, ann):
    normal = say(synthesis_client, ann)["duration"]
    fast = say(synthesis_client, ann, speed=2.0)["duration"]
    assert fast < normal * 0.7


def test_cache_hit_returns_stored_audio_without_calling_the_provider(
    synthesis_client, ann, bob, espeak
):
    first = say(synthesis_client, ann)
    assert espeak.calls == 1
    again = say(
        synthesis_client,
        ann,
        text="  The quick brown fox jumps over the lazy dog near the riverbank today.  ",
    )
    assert espeak.calls == 1
    assert again["cacheHit"] is True
    assert again["checksum"] == first["checksum"]
    # The same words and times, their spans counting the two spaces this text was sent with.
    assert again["timestamps"] == {
        name: [{**i, "charStart": i["charStart"] + 2, "charEnd": i["charEnd"] + 2} for i in items]
        for name, items in first["timestamps"].items()
    }
    # Each request gets a file record of its own (own expiry), same bytes.
    assert first["audioFileId"] != again["audioFileId"]
    assert fetch(again["downloadUrl"]) == fetch(first["downloadUrl"])
    # Another user's identical request is nobody's cache hit: it renders for that user.
    other_user = say(synthesis_client, bob)
    assert espeak.calls == 2
    assert other_user["cacheHit"] is False
    assert other_user["downloadUrl"].split("?")[0] != first["downloadUrl"].split("?")[0]
    # Anything that changes the audio is a miss.
    for change in (
        {"speed": 1.1},
        {"pitch": 1.2},
        {"volume": 0.5},
        {"outputFormat": "flac"},
        {"voice": "espeak:en-US+f3"},
        {"text": SENTENCE + " More."},
    ):
        assert say(synthesis_client, ann, **change)["cacheHit"] is False
    assert espeak.calls == 8


def test_concurrent_identical_requests_synthesize_once(synthesis_client, ann, espeak):
    espeak.delay = 0.3
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(say(synthesis_client, ann, text="Only once, please."))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert espeak.calls == 1
    assert sorted(r["cacheHit"] for r in results) == [False, True, True, True]
    assert len({r["checksum"] for r in results}) == 1


def test_a_text_too_long_is_counted_as_the_client_sent_it(synthesis_client, ann):
    text = "  " + "word " * 1001  # spaces around it, which parsing strips
    too_long = say(synthesis_client, ann, expect=413, text=text)
    assert too_long["code"] == "TEXT_TOO_LONG"
    assert too_long["error"] == (f"Text is {len(text)} characters; the limit is 5000 characters")


def test_validation_errors(synthesis_client, ann):
    assert say(synthesis_client, ann, expect=400, text="   ")["code"] == "VALIDATION_ERROR"
    assert say(synthesis_client, ann, expect=400, text=None)["code"] == "VALIDATION_ERROR"
    both = say(synthesis_client, ann, expect=400, ssml="<speak>hi</speak>")
    assert "exactly one" in both["error"]
    too_long = say(synthesis_client, ann, expect=413, text="word " * 1001)
    assert too_long["code"] == "TEXT_TOO_LONG"
    assert "5000" in too_long["error"]
    assert say(synthesis_client, ann, expect=400, speed=9)["code"] == "VALIDATION_ERROR"
    aac = say(synthesis_client, ann, expect=415, outputFormat="aac")
    assert aac["code"] == "UNSUPPORTED_AUDIO_FORMAT"
    assert "wav, mp3, flac, ogg_opus, pcm" in aac["error"]
    assert say(synthesis_client, ann, expect=400, outputFormat=7)["code"] == "VALIDATION_ERROR"
    assert say(synthesis_client, ann, expect=404, voice="espeak:xx-nope")["code"]
    bad = say(synthesis_client, ann, expect=400, text=None, ssml="<speak><audio src='x'/></speak>")
    assert "audio" in bad["error"]


def test_ssml_is_spoken_and_timed(synthesis_client, ann):
    ssml = '<speak>Hello <break time="300ms"/> wide <emphasis>world</emphasis></speak>'
    body = say(synthesis_client, ann, text=None, ssml=ssml)
    assert [w["text"] for w in body["timestamps"]["words"]] == ["Hello", "wide", "world"]


def timed_words(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {word["text"]: word for word in body["timestamps"]["words"]}


def test_ssml_words_are_the_written_ones_a_sub_timed_over_its_alias(synthesis_client, ann):
    # What the alias sounds like when written out: the times "WWW" should get.
    said = timed_words(say(synthesis_client, ann, text="Visit World Wide Web today"))
    ssml = '<speak>Visit <sub alias="World Wide Web">WWW</sub> today</speak>'
    body = say(synthesis_client, ann, text=None, ssml=ssml)
    assert [w["text"] for w in body["timestamps"]["words"]] == ["Visit", "WWW", "today"]
    written = timed_words(body)
    assert written["WWW"]["start"] == pytest.approx(said["World"]["start"], abs=0.05)
    assert written["WWW"]["end"] == pytest.approx(said["Web"]["end"], abs=0.05)
    for word in ("Visit", "today"):
        assert written[word]["start"] == pytest.approx(said[word]["start"], abs=0.05), word
        assert written[word]["end"] == pytest.approx(said[word]["end"], abs=0.05), word
    # The syllables name the written words, inside each word's time.
    words, syllables = body["timestamps"]["words"], body["timestamps"]["syllables"]
    assert {s["wordIndex"] for s in syllables} == {0, 1, 2}
    for syllable in syllables:
        word = words[syllable["wordIndex"]]
        assert word["start"] - 1e-6 <= syllable["start"] <= syllable["end"] <= word["end"] + 1e-6
    assert "".join(s["text"] for s in syllables if s["wordIndex"] == 1) == "WWW"


def test_ssml_words_keep_a_sub_of_several_words_and_a_say_as_as_written(synthesis_client, ann):
    ssml = (
        '<speak>The <sub alias="W3C">World Wide Web Consortium</sub> says <say-as '
        'interpret-as="characters">ABC</say-as>, then <sub alias="one two">1</sub>.</speak>'
    )
    body = say(synthesis_client, ann, text=None, ssml=ssml)
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == [
        *("The", "World", "Wide", "Web", "Consortium", "says", "ABC", "then", "1")
    ]
    previous_end = 0.0
    for word in words:
        assert previous_end <= word["start"] < word["end"] <= body["duration"], word
        previous_end = word["end"]


def test_limit_is_a_setting(monkeypatch, platform, function_client, ann):
    from shared.bootstrap import reset_container

    monkeypatch.setenv("VOICE_SYNTHESIS_MAX_CHARS", "20")
    reset_container()
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([CountingEspeak()]))
    client = function_client("synthesis")
    body = say(client, ann, expect=413)
    assert "limit is 20 characters" in body["error"]


def test_chinese_gets_one_syllable_per_character(synthesis_client, ann):
    body = say(synthesis_client, ann, text="你好 世界", voice="espeak:cmn")
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == ["你好", "世界"]
    syllables = body["timestamps"]["syllables"]
    assert [s["text"] for s in syllables] == ["你", "好", "世", "界"]
    assert [s["wordIndex"] for s in syllables] == [0, 0, 1, 1]


class DownEspeak(CountingEspeak):
    """eSpeak whose service is down (a transient provider outage)."""

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        raise provider_error("espeak", ErrorCategory.TRANSIENT, "espeak is down")


def test_provider_outage_is_503_with_retry_after(platform, function_client, ann):
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([DownEspeak()]))
    VoiceRepository(container.store).upsert(
        [VoiceProfile(provider="espeak", voice_id="en-US", display_name="en", language="en-US")]
    )
    response = function_client("synthesis").post(
        "/synthesize", json={"text": "hello", "voice": "espeak:en-US"}, headers=ann
    )
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["code"] == "PROVIDER_UNAVAILABLE"
    # The failed attempt left no pending cache entry behind: the next call tries again.
    container.use_provider_registry(ProviderRegistry.of([CountingEspeak()]))
    again = function_client("synthesis").post(
        "/synthesize", json={"text": "hello", "voice": "espeak:en-US"}, headers=ann
    )
    assert again.status_code == 200


def test_voice_of_unconfigured_provider_is_422(synthesis_client, ann):
    VoiceRepository(get_container().store).upsert(
        [
            VoiceProfile(
                provider="gcp", voice_id="en-US-Neural2-A", display_name="A", language="en-US"
            )
        ]
    )
    body = say(synthesis_client, ann, expect=422, voice="gcp:en-US-Neural2-A")
    assert body["code"] == "PROVIDER_NOT_CONFIGURED"


def create_model(client: Any, headers: dict[str, str], user: str, **fields: Any) -> dict[str, Any]:
    body = {
        "provider": "espeak",
        "modelPath": f"models/{user}/model.bin",
        "qualityScore": 0.9,
        "metadata": {"voiceId": "en-US+f3", "language": "en-US"},
        **fields,
    }
    response = client.post("/voice-models", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def test_voice_models_default_to_active_and_record_usage(
    function_client, synthesis_client, ann, bob
):
    models = function_client("voice_models")
    assert say(synthesis_client, ann, expect=400, voice=None)["code"] == "VOICE_REQUIRED"
    model = create_model(models, ann, "ann")  # quality 0.9: activated on creation
    body = say(synthesis_client, ann, voice=None)
    assert body["voice"] == model["id"]
    assert body["provider"] == "espeak"
    # The model's metadata names the variant f3: the catalog voice's audio (eSpeak's f3
    # varies its samples a little from call to call, so the length is compared).
    same = say(synthesis_client, ann, voice="espeak:en-US+f3")
    assert same["duration"] == pytest.approx(body["duration"], rel=0.02)
    assert same["cacheHit"] is False
    say(synthesis_client, ann, voice=model["id"])  # a cache hit, still a use
    stats = models.get(f"/voice-models/{model['id']}/usage-stats", headers=ann).get_json()
    assert stats["usageCount"] == 2
    assert stats["averageLatency"] > 0
    # Characters are counted in the same write as the use (the hit is not billed).
    assert (stats["characters"], stats["requestedCharacters"]) == (len(SENTENCE), 2 * len(SENTENCE))
    # Another user cannot use a model that is neither theirs nor shared with them.
    assert say(synthesis_client, bob, expect=404, voice=model["id"])["code"] == (
        "VOICE_MODEL_NOT_FOUND"
    )


def test_model_of_an_engine_not_configured_here_is_422(function_client, synthesis_client, ann):
    model = create_model(function_client("voice_models"), ann, "ann", provider="xtts-v2")
    body = say(synthesis_client, ann, expect=422, voice=model["id"])
    assert body["code"] == "PROVIDER_NOT_CONFIGURED"


def test_requests_need_a_token(synthesis_client):
    response = synthesis_client.post("/synthesize", json={"text": "hi"})
    assert response.status_code == 401


def test_a_short_synthesis_is_a_completed_job(synthesis_client, ann, bob):
    made = say(synthesis_client, ann)
    job = synthesis_client.get(f"/synthesis/jobs/{made['jobId']}", headers=ann).get_json()
    assert job["status"] == "completed"
    assert job["progress"] == 1.0
    assert job["audioFileId"] == made["audioFileId"]
    assert job["timestamps"] == made["timestamps"]
    assert synthesis_client.get(f"/synthesis/jobs/{made['jobId']}", headers=bob).status_code == 404


def test_a_shared_catalog_cache_reuses_bytes_but_never_another_users_file(
    synthesis_client, ann, bob, espeak, monkeypatch
):
    monkeypatch.setattr(get_container().settings, "synthesis_cache_shared_catalog_voices", True)
    first = say(synthesis_client, ann)
    other_user = say(synthesis_client, bob)
    assert espeak.calls == 1  # rendered once
    assert other_user["cacheHit"] is False  # Bob learns nothing of Ann's request
    assert other_user["checksum"] == first["checksum"]
    assert other_user["timestamps"] == first["timestamps"]
    assert other_user["downloadUrl"].split("?")[0] != first["downloadUrl"].split("?")[0]
    assert fetch(other_user["downloadUrl"]) == fetch(first["downloadUrl"])
    again = say(synthesis_client, bob)
    assert espeak.calls == 1
    assert again["cacheHit"] is False  # the entry is still Ann's render, copied again


def _sounding_spans(pcm_samples: Any, rate: int) -> list[tuple[float, float]]:
    """Return the spans (seconds) where the audio's 10 ms RMS is above 5 % of its peak."""
    import numpy as np

    frame = rate // 100
    count = len(pcm_samples) // frame
    frames = pcm_samples[: count * frame].astype(np.float64).reshape(count, frame)
    levels = np.sqrt((frames**2).mean(axis=1))
    loud = levels > levels.max() * 0.05
    spans: list[tuple[float, float]] = []
    for index in np.flatnonzero(loud):
        start, end = index / 100, (index + 1) / 100
        if spans and start - spans[-1][1] < 0.1:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def test_word_timestamps_end_where_the_words_sound_ends_across_a_pause(synthesis_client, ann):
    import io

    import soundfile

    ssml = '<speak>Hello <break time="1s"/> world</speak>'
    body = say(synthesis_client, ann, text=None, ssml=ssml, timestampGranularity="word")
    samples, rate = soundfile.read(io.BytesIO(fetch(body["downloadUrl"])), dtype="int16")
    (hello_sound, world_sound) = _sounding_spans(samples, rate)
    hello, world = body["timestamps"]["words"]
    assert hello["text"] == "Hello"
    # "Hello" ends with its sound, not a second later where "world" begins.
    assert hello["end"] == pytest.approx(hello_sound[1], abs=0.03)
    assert hello["start"] == pytest.approx(hello_sound[0], abs=0.03)
    assert world["start"] == pytest.approx(world_sound[0], abs=0.03)
    assert world["start"] - hello["end"] > 0.9


def test_chinese_text_is_timed_clause_by_clause(synthesis_client, ann):
    # No spaces between Chinese words or sentences: its punctuation parts them.
    text = "你好\uff0c世界。今天天气很好。"  # a fullwidth comma, then full stops
    body = say(synthesis_client, ann, text=text, voice="espeak:cmn", timestampGranularity="word")
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == ["你好", "世界", "今天天气很好"]
    assert all(w["start"] < w["end"] for w in words)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))
    assert words[-1]["end"] <= body["duration"] + 0.01


def test_chinese_syllables_keep_the_times_espeak_gives_each_character(synthesis_client, ann):
    # eSpeak times Chinese character by character, unevenly; the clause is one word, and
    # its syllables (a character each) keep eSpeak's times, not an even share of it.
    text = "我们今天去北京大学看朋友。"
    body = say(
        synthesis_client, ann, text=text, voice="espeak:cmn", timestampGranularity="syllable"
    )
    raw = EspeakProvider(variant_languages=[]).synthesize(
        SynthesisRequest(text=text, voice_id="cmn")
    )
    assert_spaced_as_spoken(body["timestamps"]["syllables"], list(raw.words), [(0, 12)])


def test_chinese_ssml_is_timed_by_the_characters_espeak_names(synthesis_client, ann):
    # In SSML eSpeak's timings carry only their text, a character each: each goes on the
    # clause it names, so the words and syllables have eSpeak's times, as plain text has.
    text = "我们今天去北京大学看朋友。"
    ssml = f"<speak>{text[:5]}<break time='400ms'/>{text[5:]}</speak>"
    body = say(
        synthesis_client,
        ann,
        text=None,
        ssml=ssml,
        voice="espeak:cmn",
        timestampGranularity="both",
    )
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == [text[:5], text[5:-1]]
    assert words[1]["start"] - words[0]["end"] > 0.3  # the break
    raw = EspeakProvider(variant_languages=[]).synthesize(
        SynthesisRequest(text=ssml, voice_id="cmn", ssml=True)
    )
    assert [w.start_seconds for w in raw.words] == sorted(w.start_seconds for w in raw.words)
    syllables = body["timestamps"]["syllables"]
    assert_spaced_as_spoken(syllables, list(raw.words), [(0, 5), (5, 12)])


def assert_spaced_as_spoken(
    syllables: list[dict[str, Any]], spoken: list[Any], clauses: list[tuple[int, int]]
) -> None:
    """Check that each syllable but a clause's first (its leading silence may be cut)
    starts where eSpeak's raw render of the same text said its character, and that the
    gaps between them are eSpeak's: an even share of the clause would be off by up to
    0.14 s. (A render may shift by some milliseconds with the engine's state, so the
    starts are compared loosely and the gaps closely.)"""
    assert [s["text"] for s in syllables] == [w.text for w in spoken]
    for first, last in clauses:
        starts = [s["start"] for s in syllables[first + 1 : last]]
        said = [w.start_seconds for w in spoken[first + 1 : last]]
        assert starts == pytest.approx(said, abs=0.04)
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert gaps == pytest.approx([b - a for a, b in itertools.pairwise(said)], abs=0.02)
    lengths = [s["end"] - s["start"] for s in syllables[1:-1]]
    assert max(lengths) - min(lengths) > 0.05  # uneven, as spoken


def test_words_keep_the_signs_written_on_them(synthesis_client, ann):
    # A karaoke view highlights what the user wrote: "$5", not "5"; the comma stays out.
    text = "It costs $5, that is 50% off C++ books."
    body = say(synthesis_client, ann, text=text)
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == [
        "It",
        "costs",
        "$5",
        "that",
        "is",
        "50%",
        "off",
        "C++",
        "books",
    ]
    # Each word is the written token, so where it is found, in order, is its whole span.
    spans: list[tuple[int, int]] = []
    for word in words:
        start = text.index(word["text"], spans[-1][1] if spans else 0)
        spans.append((start, start + len(word["text"])))
    assert spans[2] == (9, 11)
    assert spans[5] == (21, 24)
    assert spans[7] == (29, 32)
    assert all(w["start"] < w["end"] for w in words)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))
    assert words[-1]["end"] <= body["duration"] + 0.01
    syllables = body["timestamps"]["syllables"]
    for index, word in enumerate(words):
        spelled = "".join(s["text"] for s in syllables if s["wordIndex"] == index)
        assert spelled == word["text"]
