"""POST /synthesize/dialogue: segmented turns, native multi-speaker, and escaping of user text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from shared.audio.pcm import decode_audio
from shared.audio.stitch import speech_level_dbfs
from shared.audio.timing import WordTiming
from shared.bootstrap import get_container
from shared.providers.base import (
    AudioSettings,
    ProviderCapabilities,
    SynthesisRequest,
    SynthesisResult,
)
from shared.providers.registry import ProviderRegistry
from shared.providers.ssml import dialogue_ssml, ssml_to_text, validate_ssml
from shared.providers.voices import DialogueTurn
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import fetch
from tests.functions.test_synthesis_fixtures import CountingEspeak
from tests.functions.test_synthesis_spans import assert_spelled_in_place, found_in_order, spans_of

TURNS = [
    {"speaker": "Alice", "voice": "espeak:en-US+f3", "text": "Good morning, how are you today?"},
    {"speaker": "Bob", "voice": "espeak:en-US+m3", "text": "Very well, thank you for asking."},
    {"speaker": "Alice", "voice": "espeak:en-US+f3", "text": "Shall we begin the meeting?"},
]
# A leading space, a repeated word, signs, an emoji (two UTF-16 units), Chinese.
SPANNED_TURNS = [
    {"speaker": "Ann", "voice": "espeak:en-US+f3", "text": " Hello 🎉 world, hello world!"},
    {"speaker": "Bob", "voice": "espeak:en-US+m3", "text": "It costs $5 to learn C++, hello."},
    {"speaker": "Ann", "voice": "espeak:cmn", "text": "你好\uff0c世界。"},
]
INJECTION = "Tom & Jerry said \"<break time='5s'/>\" and 1 < 2 isn't news"

# The shared fixtures, registered in this module.
ann = fx.ann
espeak = fx.espeak
synthesis_client = fx.synthesis_client


class MultiSpeakerEspeak(CountingEspeak):
    """eSpeak speaking a whole dialogue in one call through the escaping SSML builder."""

    dialogue_calls = 0
    spoken: tuple[str, ...] = ()

    @property
    def capabilities(self) -> ProviderCapabilities:
        return super().capabilities._replace(multi_speaker=True)

    def dialogue_refusal(self, turns: Sequence[DialogueTurn]) -> str | None:
        return None

    def synthesize_dialogue(
        self, turns: Sequence[DialogueTurn], settings: AudioSettings
    ) -> SynthesisResult:
        self.dialogue_calls += 1
        voiced = [turn.model_copy(update={"voice": turn.voice.split(":", 1)[-1]}) for turn in turns]
        ssml = dialogue_ssml(voiced, 200, language="en-US")
        result = self.synthesize(
            SynthesisRequest(text=ssml, voice_id="en-US", ssml=True, settings=settings)
        )
        # eSpeak's positions index the SSML: keep the words, matched by their text.
        words = tuple(WordTiming(w.text, w.start_seconds, w.end_seconds) for w in result.words)
        self.spoken = tuple(w.text for w in words)
        return result._replace(words=words)


def dialogue(
    client: Any, headers: dict[str, str], expect: int = 200, **fields: Any
) -> dict[str, Any]:
    body = {"turns": TURNS, **fields}
    response = client.post("/synthesize/dialogue", json=body, headers=headers)
    assert response.status_code == expect, response.get_json()
    return dict(response.get_json())


def test_segmented_dialogue_tags_speakers_and_pauses_between_turns(synthesis_client, ann, espeak):
    body = dialogue(synthesis_client, ann, pauseMs=500, outputFormat="wav")
    assert body["mode"] == "segmented"
    assert body["fallbackReason"] is None
    assert espeak.calls == 3
    words = body["timestamps"]["words"]
    assert [w["turnIndex"] for w in words] == sorted(w["turnIndex"] for w in words)
    assert {(w["speaker"], w["turnIndex"]) for w in words} == {
        ("Alice", 0),
        ("Bob", 1),
        ("Alice", 2),
    }
    assert len(words) == sum(len(t["text"].split()) for t in TURNS)
    for turn in (1, 2):
        first = next(w for w in words if w["turnIndex"] == turn)
        last_before = [w for w in words if w["turnIndex"] == turn - 1][-1]
        assert first["start"] - last_before["end"] >= 0.5 - 1e-6
    assert all(s["speaker"] in ("Alice", "Bob") for s in body["timestamps"]["syllables"])
    # Loudness matched: every turn's speech level within 1 dB of the others.
    pcm, rate = decode_audio(fetch(body["downloadUrl"]))
    levels = []
    for turn in range(3):
        spoken = [w for w in words if w["turnIndex"] == turn]
        start, end = int(spoken[0]["start"] * rate), int(spoken[-1]["end"] * rate)
        levels.append(speech_level_dbfs(pcm[start * 2 : end * 2], rate))
    assert max(levels) - min(levels) < 1.0
    # The same dialogue again is a cache hit.
    assert dialogue(synthesis_client, ann, pauseMs=500)["cacheHit"] is True
    assert espeak.calls == 3


def test_native_falls_back_to_segmented_and_says_why(synthesis_client, ann):
    body = dialogue(synthesis_client, ann, mode="native")
    assert body["mode"] == "segmented"
    assert "multi-speaker" in body["fallbackReason"]


def test_native_mode_uses_the_providers_multi_speaker_synthesis(platform, function_client, ann):
    from shared.catalog.repository import VoiceRepository
    from tests.functions.test_synthesis_fixtures import espeak_voices

    provider = MultiSpeakerEspeak()
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    VoiceRepository(container.store).upsert(espeak_voices())
    body = dialogue(function_client("synthesis"), ann, mode="native")
    assert body["mode"] == "native"
    assert body["fallbackReason"] is None
    assert provider.dialogue_calls == 1
    assert provider.calls == 1
    words = body["timestamps"]["words"]
    assert [w["speaker"] for w in words][:5] == ["Alice"] * 5
    assert words[-1]["speaker"] == "Alice"
    assert words[-1]["turnIndex"] == 2
    assert any(w["speaker"] == "Bob" for w in words)


def test_user_text_is_spoken_not_parsed_as_ssml(platform, function_client, ann):
    turns = [DialogueTurn(speaker="A", voice="en-US", text=INJECTION)]
    document = dialogue_ssml(turns, 0, language="en-US")
    names = {element.tag.rsplit("}", 1)[-1] for element in validate_ssml(document).iter()}
    assert names == {"speak", "voice"}  # no <break> smuggled in
    assert ssml_to_text(document) == INJECTION
    # Through the native path (eSpeak in SSML mode): no 5 s break is heard.
    from shared.catalog.repository import VoiceRepository
    from tests.functions.test_synthesis_fixtures import espeak_voices

    container = get_container()
    provider = MultiSpeakerEspeak()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    VoiceRepository(container.store).upsert(espeak_voices())
    turn = {"speaker": "A", "voice": "espeak:en-US", "text": INJECTION}
    body = dialogue(function_client("synthesis"), ann, turns=[turn], mode="native")
    assert body["mode"] == "native"
    # eSpeak said the markup's words (a parsed <break> has none) and paused for no 5 s.
    assert any("break" in word for word in provider.spoken)
    assert any("time" in word for word in provider.spoken)
    assert body["duration"] < 8.0
    spoken = [w["text"] for w in body["timestamps"]["words"]]
    assert spoken[:2] == ["Tom", "Jerry"]
    assert "news" in spoken


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"turns": []}, "VALIDATION_ERROR", 400),
        (
            {"turns": [{"speaker": "A", "voice": "espeak:en-US", "text": "  "}]},
            "VALIDATION_ERROR",
            400,
        ),
        (  # control characters alone say nothing, in a turn beside others too
            {
                "turns": [
                    {"speaker": "A", "voice": "espeak:en-US", "text": "Hi."},
                    {"speaker": "B", "voice": "espeak:en-US", "text": " \x03\x03"},
                ]
            },
            "VALIDATION_ERROR",
            400,
        ),
        (
            {"turns": [{"speaker": "A", "voice": "espeak:en-US", "text": "x" * 5001}]},
            "TEXT_TOO_LONG",
            413,
        ),
        ({"mode": "choir"}, "VALIDATION_ERROR", 400),
        ({"pauseMs": -1}, "VALIDATION_ERROR", 400),
    ],
)
def test_dialogue_validation(synthesis_client, ann, change, code, status):
    assert dialogue(synthesis_client, ann, expect=status, **change)["code"] == code


def test_a_dialogue_too_long_counts_the_turns_as_sent(synthesis_client, ann):
    # Together 5002 characters as sent; joined here with a newline between, 5001 spoken.
    turns = [
        {"speaker": "A", "voice": "espeak:en-US", "text": " " + "x" * 2500},
        {"speaker": "B", "voice": "espeak:en-US", "text": "y" * 2500 + " "},
    ]
    too_long = dialogue(synthesis_client, ann, expect=413, turns=turns)
    assert too_long["code"] == "TEXT_TOO_LONG"
    total = sum(len(turn["text"]) for turn in turns)
    assert too_long["error"] == (
        f"The turns' texts total {total} characters; the limit is 5000 characters"
    )


def assert_placed_in_turns(turns: Sequence[dict[str, Any]], timestamps: dict[str, Any]) -> None:
    """Assert that each word (and syllable) is a slice of its own turn's text."""
    words, syllables = timestamps["words"], timestamps["syllables"]
    assert {w["turnIndex"] for w in words} == set(range(len(turns)))
    for index, turn in enumerate(turns):
        text = turn["text"]
        own = [w for w in words if w["turnIndex"] == index]
        assert spans_of(own) == found_in_order(text, [w["text"] for w in own])
        for word in own:
            assert text[word["charStart"] : word["charEnd"]] == word["text"]
            at = words.index(word)
            assert_spelled_in_place(text, word, [s for s in syllables if s["wordIndex"] == at])


def test_each_word_is_placed_in_its_own_turns_text(synthesis_client, ann, espeak):
    body = dialogue(synthesis_client, ann, turns=SPANNED_TURNS)
    assert body["mode"] == "segmented"
    assert [w["text"] for w in body["timestamps"]["words"]][:4] == [
        "Hello",
        "world",
        "hello",
        "world",
    ]
    assert_placed_in_turns(SPANNED_TURNS, body["timestamps"])
    # The same turns spaced otherwise are a hit, placed on their own texts (and the job's).
    spaced = [
        {**SPANNED_TURNS[0], "text": "   Hello 🎉 world,   hello world!"},
        *SPANNED_TURNS[1:],
    ]
    hit = dialogue(synthesis_client, ann, turns=spaced)
    assert (hit["cacheHit"], espeak.calls) == (True, 3)
    assert_placed_in_turns(spaced, hit["timestamps"])
    job = synthesis_client.get(f"/synthesis/jobs/{hit['jobId']}", headers=ann).get_json()
    assert job["timestamps"] == hit["timestamps"]


def test_a_native_dialogues_words_are_placed_in_their_turns(platform, function_client, ann):
    from shared.catalog.repository import VoiceRepository
    from tests.functions.test_synthesis_fixtures import espeak_voices

    provider = MultiSpeakerEspeak()
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    VoiceRepository(container.store).upsert(espeak_voices())
    body = dialogue(function_client("synthesis"), ann, turns=SPANNED_TURNS, mode="native")
    assert body["mode"] == "native"
    assert_placed_in_turns(SPANNED_TURNS, body["timestamps"])
