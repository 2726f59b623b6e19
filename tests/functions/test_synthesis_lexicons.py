"""Pronunciation lexicons in synthesis: what each provider is sent, what eSpeak says, the
timestamps on the user's words, the cache per version, jobs, dialogues, bad references."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]
from google.auth.credentials import AnonymousCredentials

from shared.bootstrap import get_container
from shared.catalog.repository import VoiceRepository
from shared.providers.base import SynthesisRequest, SynthesisResult, TTSProvider
from shared.providers.elevenlabs import ElevenLabsProvider
from shared.providers.gcp import GoogleTTSProvider
from shared.providers.openai_compatible import OpenAICompatibleProvider
from shared.providers.registry import ProviderRegistry
from shared.synthesis import CAPABILITY as SYNTHESIS
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import fetch
from tests.functions.test_synthesis_fixtures import CountingEspeak
from tests.functions.test_synthesis_jobs import LONG_TEXT, synthesis_worker, wait
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import (
    ELEVENLABS_KEY,
    OPENAI_KEY,
    elevenlabs_app,
    gcp_app,
    openai_app,
)

ann = fx.ann
bob = fx.bob
VOICE = "espeak:en-US"
SEED_ERROR_FIELDS = {"error", "code", "timestamp", "requestId"}


class RecordingEspeak(CountingEspeak):
    """The real eSpeak provider, keeping each request and the phonemes eSpeak said for it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[SynthesisRequest] = []
        self.said: list[str] = []
        self._record_lock = threading.Lock()

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        said = self.spoken_phonemes(request)
        with self._record_lock:
            self.requests.append(request)
            self.said.append(said)
        return super().synthesize(request)


@pytest.fixture
def espeak(platform: Any) -> RecordingEspeak:
    provider = RecordingEspeak()
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    VoiceRepository(container.store).upsert(fx.espeak_voices())
    return provider


@pytest.fixture
def synthesis(function_client: Any, espeak: RecordingEspeak) -> Any:
    return function_client("synthesis")


@pytest.fixture
def lexicons(function_client: Any) -> Any:
    return function_client("lexicons")


def make_lexicon(client: Any, headers: dict[str, str], *rules: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/lexicons",
        json={"name": "Names", "language": "en-US", "rules": list(rules)},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def say(client: Any, headers: dict[str, str], status: int = 200, **body: Any) -> dict[str, Any]:
    response = client.post("/synthesize", json={"voice": VOICE, **body}, headers=headers)
    assert response.status_code == status, response.get_json()
    return dict(response.get_json())


def words_of(body: dict[str, Any]) -> list[str]:
    return [word["text"] for word in body["timestamps"]["words"]]


def run_to_its_end(queue: Any, client: Any, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    """Start the synthesis worker, wait for the job to finish, stop the worker; return the
    job as ``GET /synthesis/jobs/{id}`` shows it."""
    queue.start()
    try:
        return wait(client, headers, job_id)
    finally:
        queue.stop()


def log_spectrum(samples: np.ndarray) -> np.ndarray:
    frames = [samples[i : i + 512] * np.hanning(512) for i in range(0, len(samples) - 512, 256)]
    power = np.mean([np.abs(np.fft.rfft(frame)) ** 2 for frame in frames], axis=0)
    return np.log10(power + 1e-3)


def word_sounds(body: dict[str, Any]) -> list[tuple[str, float, np.ndarray]]:
    """Return each timed word with its duration and its audio's average log spectrum."""
    samples, rate = soundfile.read(io.BytesIO(fetch(body["downloadUrl"])), dtype="float64")
    samples = samples * 32768
    return [
        (
            word["text"],
            word["end"] - word["start"],
            log_spectrum(samples[int(word["start"] * rate) : int(word["end"] * rate)]),
        )
        for word in body["timestamps"]["words"]
    ]


def test_a_rule_changes_what_espeak_says_and_leaves_the_other_words_alone(
    synthesis, lexicons, ann, espeak
):
    lexicon = make_lexicon(lexicons, ann, {"grapheme": "Nguyen", "phoneme": "ˈwɪn"})
    text = "Mister Nguyen came home"
    plain = say(synthesis, ann, text=text, outputFormat="wav")
    ruled = say(synthesis, ann, text=text, outputFormat="wav", lexiconIds=[lexicon["id"]])
    assert ruled["lexicons"] == [f"{lexicon['id']}@1"]
    assert plain["lexicons"] == []
    # What eSpeak reports it said: the rule's phonemes for the rule's word, nothing else new.
    said_plain, said_ruled = (said.split() for said in espeak.said)
    assert said_ruled[1] == "w'In" != said_plain[1]
    assert said_ruled[:1] + said_ruled[2:] == said_plain[:1] + said_plain[2:]
    assert espeak.requests[1].phonemes
    # The timestamps keep the words the user wrote.
    assert words_of(plain) == words_of(ruled) == ["Mister", "Nguyen", "came", "home"]
    # Audibly: the rule's word sounds different; the others as eSpeak says them anyway
    # (it varies a little from run to run: distances of about 0.1 between two runs).
    for (word, plain_seconds, before), (_, ruled_seconds, after) in zip(
        word_sounds(plain), word_sounds(ruled), strict=True
    ):
        distance = float(np.sqrt(np.mean((before - after) ** 2)))
        if word == "Nguyen":
            assert distance > 0.4, distance
            assert abs(ruled_seconds - plain_seconds) > 0.05
        else:
            assert distance < 0.2, (word, distance)
            assert ruled_seconds == pytest.approx(plain_seconds, abs=0.03), word


def test_an_alias_of_several_words_times_the_one_word_written(synthesis, lexicons, ann, espeak):
    lexicon = make_lexicon(lexicons, ann, {"grapheme": "W3C", "alias": "World Wide Web Consortium"})
    text = "The W3C sets web standards."
    plain = say(synthesis, ann, text=text)
    ruled = say(synthesis, ann, text=text, lexiconIds=[lexicon["id"]])
    assert espeak.requests[-1].text == "The World Wide Web Consortium sets web standards."
    assert words_of(ruled) == ["The", "W3C", "sets", "web", "standards"]
    timed = {word["text"]: word for word in ruled["timestamps"]["words"]}
    w3c = timed["W3C"]["end"] - timed["W3C"]["start"]
    # One timing covering the four words said, much longer than W3C spelled out.
    assert w3c > 1.5 * (timed["sets"]["end"] - timed["sets"]["start"])
    assert ruled["duration"] > plain["duration"] + 0.5
    syllables = ruled["timestamps"]["syllables"]
    assert {s["wordIndex"] for s in syllables} == set(range(5))
    # SSML: the same words, and a break of the author's between them.
    ssml = say(
        synthesis,
        ann,
        ssml='<speak>The W3C <break time="300ms"/>sets web standards.</speak>',
        lexiconIds=[lexicon["id"]],
    )
    assert "World Wide Web Consortium" in espeak.requests[-1].text
    assert words_of(ssml) == ["The", "W3C", "sets", "web", "standards"]
    ssml_timed = {word["text"]: word for word in ssml["timestamps"]["words"]}
    assert ssml_timed["W3C"]["end"] - ssml_timed["W3C"]["start"] > 1.0


def test_a_new_version_is_a_cache_miss_and_a_pinned_old_one_a_hit(synthesis, lexicons, ann, espeak):
    lexicon = make_lexicon(lexicons, ann, {"grapheme": "Nguyen", "alias": "win"})
    ids = [lexicon["id"]]
    text = "Say hello to Nguyen."
    plain = say(synthesis, ann, text=text)
    first = say(synthesis, ann, text=text, lexiconIds=ids)
    assert (plain["cacheHit"], first["cacheHit"], espeak.calls) == (False, False, 2)
    again = say(synthesis, ann, text=text, lexiconIds=ids)
    assert (again["cacheHit"], again["audioFileId"] != first["audioFileId"]) == (True, True)
    assert espeak.calls == 2
    changed = lexicons.patch(
        f"/lexicons/{lexicon['id']}",
        json={"rules": [{"grapheme": "Nguyen", "alias": "new yen"}]},
        headers=ann,
    )
    assert changed.get_json()["version"] == 2
    latest = say(synthesis, ann, text=text, lexiconIds=ids)
    assert (latest["cacheHit"], latest["lexicons"]) == (False, [f"{lexicon['id']}@2"])
    assert espeak.requests[-1].text == "Say hello to new yen."
    pinned = say(synthesis, ann, text=text, lexiconIds=[f"{lexicon['id']}@1"])
    assert (pinned["cacheHit"], pinned["lexicons"]) == (True, [f"{lexicon['id']}@1"])
    assert espeak.calls == 3
    # The same audio: the pinned version's render.
    assert pinned["checksum"] == first["checksum"]


def test_unknown_and_other_users_lexicons_are_not_found_and_bad_references_refused(
    function_client, synthesis, lexicons, ann, bob, espeak
):
    bobs = make_lexicon(lexicons, bob, {"grapheme": "Nguyen", "alias": "win"})
    mine = make_lexicon(lexicons, ann, {"grapheme": "Nguyen", "alias": "win"})
    for reference in (bobs["id"], f"{bobs['id']}@1", "no-such-lexicon", f"{mine['id']}@2"):
        body = say(synthesis, ann, 404, text="Hi Nguyen", lexiconIds=[mine["id"], reference])
        assert set(body) >= SEED_ERROR_FIELDS
        assert body["code"] == "LEXICON_NOT_FOUND"
        assert reference in body["error"]
    for references in (["two words"], ["x@0"], ["x@y"], [7], [mine["id"]] * 11, "x"):
        body = say(synthesis, ann, 400, text="Hi Nguyen", lexiconIds=references)
        assert set(body) >= SEED_ERROR_FIELDS
        assert body["code"] == "VALIDATION_ERROR"
        assert any("lexiconIds" in str(detail) for detail in body["details"])
    dialogue = synthesis.post(
        "/synthesize/dialogue",
        json={
            "turns": [{"speaker": "A", "voice": VOICE, "text": "Hi", "lexiconIds": [bobs["id"]]}]
        },
        headers=ann,
    )
    assert (dialogue.status_code, dialogue.get_json()["code"]) == (404, "LEXICON_NOT_FOUND")
    speech = function_client("openai_speech").post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Hi", "voice": VOICE, "lexicon_ids": [bobs["id"]]},
        headers=ann,
    )
    assert speech.status_code == 404
    assert "Lexicon not found" in speech.get_json()["error"]["message"]
    assert espeak.calls == 0  # nothing was said with someone else's rules, or at all


def test_a_job_says_the_versions_it_was_accepted_with(synthesis, lexicons, ann, espeak):
    queue = synthesis_worker()
    lexicon = make_lexicon(lexicons, ann, {"grapheme": "chunk", "alias": "piece"})
    text = LONG_TEXT
    started = say(synthesis, ann, 202, text=text, lexiconIds=[lexicon["id"]])
    assert started["lexicons"] == [f"{lexicon['id']}@1"]
    # Changed before any chunk runs (the queue is not started yet).
    lexicons.patch(
        f"/lexicons/{lexicon['id']}",
        json={"rules": [{"grapheme": "chunk", "alias": "slice"}]},
        headers=ann,
    )
    done = run_to_its_end(queue, synthesis, ann, started["jobId"])
    assert done["status"] == "completed", done
    assert done["lexicons"] == [f"{lexicon['id']}@1"]
    said = " ".join(request.text for request in espeak.requests)
    assert "piece" in said
    assert "slice" not in said
    assert re.search(r"\bchunk\b", said) is None
    # The written words are timed, "chunk" among them.
    assert [w["text"] for w in done["timestamps"]["words"]] == [w.strip(".") for w in text.split()]


def test_a_job_whose_lexicon_was_deleted_fails_clearly(synthesis, lexicons, ann, espeak):
    queue = synthesis_worker()
    lexicon = make_lexicon(lexicons, ann, {"grapheme": "chunk", "alias": "piece"})
    started = say(synthesis, ann, 202, text=LONG_TEXT, lexiconIds=[lexicon["id"]])
    assert lexicons.delete(f"/lexicons/{lexicon['id']}", headers=ann).status_code == 204
    done = run_to_its_end(queue, synthesis, ann, started["jobId"])
    assert done["status"] == "failed"
    assert f"Lexicon not found: {lexicon['id']}@1" in done["error"]
    assert espeak.calls == 0


def test_dialogue_turns_apply_their_own_lexicons_before_the_requests(
    synthesis, lexicons, ann, espeak
):
    everyone = make_lexicon(
        lexicons, ann, {"grapheme": "Nguyen", "alias": "win"}, {"grapheme": "W3C", "alias": "w3"}
    )
    bobs = make_lexicon(lexicons, ann, {"grapheme": "Nguyen", "alias": "new yen"})
    response = synthesis.post(
        "/synthesize/dialogue",
        json={
            "turns": [
                {"speaker": "Ann", "voice": VOICE, "text": "Hello Nguyen from W3C."},
                {
                    "speaker": "Bob",
                    "voice": "espeak:en-US+m3",
                    "text": "Nguyen here.",
                    "lexiconIds": [bobs["id"]],
                },
            ],
            "lexiconIds": [everyone["id"]],
        },
        headers=ann,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    said = sorted(request.text for request in espeak.requests)
    assert said == ["Hello win from w3.", "new yen here."]
    assert [(w["text"], w["speaker"]) for w in body["timestamps"]["words"]] == [
        ("Hello", "Ann"),
        ("Nguyen", "Ann"),
        ("from", "Ann"),
        ("W3C", "Ann"),
        ("Nguyen", "Bob"),
        ("here", "Bob"),
    ]
    # Every lexicon applied, in the order first used.
    assert body["lexicons"] == [f"{everyone['id']}@1", f"{bobs['id']}@1"]


# -- Cloud providers through their fakes ------------------------------------------------------


def use(provider: TTSProvider) -> list[Any]:
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    voices = provider.list_voices()
    VoiceRepository(container.store).upsert(voices)
    return voices


RULES = (
    {"grapheme": "Nguyen", "phoneme": "ˈwɪn"},
    {"grapheme": "W3C", "alias": "World Wide Web Consortium"},
    {"grapheme": "New York", "phoneme": "nuː ˈjɔːk", "alias": "the big apple"},
)


@pytest.fixture
def google(platform: Any) -> Iterator[tuple[FakeHttpServer, str]]:
    with FakeHttpServer(gcp_app) as server:
        provider = GoogleTTSProvider(
            endpoint=server.url, transport="rest", credentials=AnonymousCredentials(), timeout=5
        )
        voice = next(v for v in use(provider) if v.voice_id == "en-US-Neural2-C")
        yield server, voice.id
        provider.close()


def test_google_is_sent_ipa_phonemes_in_its_ssml_and_times_the_users_words(
    function_client, lexicons, ann, google
):
    server, voice = google
    lexicon = make_lexicon(lexicons, ann, *RULES)
    text = "Nguyen of the W3C flew to New York."
    response = function_client("synthesis").post(
        "/synthesize",
        json={"text": text, "voice": voice, "lexiconIds": [lexicon["id"]]},
        headers=ann,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    sent = server.requests[-1].json()["input"]["ssml"]
    assert '<phoneme alphabet="ipa" ph="ˈwɪn">Nguyen</phoneme>' in sent
    assert '<sub alias="World Wide Web Consortium">W3C</sub>' in sent
    # A mark before every word the user wrote, outside the phoneme elements.
    assert '<mark name="w6"/><phoneme alphabet="ipa" ph="nuː ˈjɔːk">New York</phoneme>.' in sent
    assert '<mark name="w7"/>' not in sent  # "York" is inside
    assert body["unappliedRules"] == []
    assert words_of(body) == ["Nguyen", "of", "the", "W3C", "flew", "to", "New", "York"]
    # The fake speaks 60 ms per character of the words inside the SSML: "flew" starts
    # after "Nguyen of the W3C " (18 characters).
    flew = body["timestamps"]["words"][4]
    assert flew["start"] == pytest.approx(18 * 0.06, abs=0.05)
    # The caller's own SSML gets the elements in its text.
    ssml = function_client("synthesis").post(
        "/synthesize",
        json={
            "ssml": '<speak>Hi <emphasis>Nguyen</emphasis>, <say-as interpret-as="characters">'
            "W3C</say-as></speak>",
            "voice": voice,
            "lexiconIds": [lexicon["id"]],
        },
        headers=ann,
    )
    assert ssml.status_code == 200, ssml.get_json()
    sent = server.requests[-1].json()["input"]["ssml"]
    assert '<emphasis><phoneme alphabet="ipa" ph="ˈwɪn">Nguyen</phoneme></emphasis>' in sent
    assert '<say-as interpret-as="characters">W3C</say-as>' in sent  # the author's choice


def test_elevenlabs_is_sent_the_aliases_and_ipa_only_rules_are_reported(
    function_client, lexicons, ann, platform
):
    with FakeHttpServer(elevenlabs_app()) as server:
        provider = ElevenLabsProvider(
            api_key=ELEVENLABS_KEY, base_url=server.url, model_id="eleven_multilingual_v2"
        )
        voice = use(provider)[0]
        lexicon = make_lexicon(lexicons, ann, *RULES)
        text = "Nguyen of the W3C flew to New York."
        response = function_client("synthesis").post(
            "/synthesize",
            json={"text": text, "voice": voice.id, "lexiconIds": [lexicon["id"]]},
            headers=ann,
        )
        provider.close()
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    sent = server.requests[-1].json()["text"]
    assert sent == "Nguyen of the World Wide Web Consortium flew to the big apple."
    assert body["unappliedRules"] == ["Nguyen"]
    assert words_of(body) == ["Nguyen", "of", "the", "W3C", "flew", "to", "New", "York"]
    timed = body["timestamps"]["words"]
    # "flew" is said after "Nguyen of the World Wide Web Consortium " (40 characters).
    assert timed[4]["start"] == pytest.approx(40 * 0.06, abs=0.05)
    assert timed[3]["end"] - timed[3]["start"] > 20 * 0.06


def test_openai_compatible_speech_takes_lexicon_ids_and_is_sent_the_aliases(
    function_client, lexicons, ann, platform
):
    with FakeHttpServer(openai_app) as server:
        provider = OpenAICompatibleProvider(
            api_key=OPENAI_KEY,
            base_url=server.url,
            model="tts-1",
            voices=["alloy"],
            language="en",
        )
        use(provider)
        lexicon = make_lexicon(lexicons, ann, *RULES)
        response = function_client("openai_speech").post(
            "/v1/audio/speech",
            json={
                "model": "tts-1",
                "input": "The W3C met in New York.",
                "voice": "openai:alloy",
                "response_format": "wav",
                "lexicon_ids": [lexicon["id"]],
            },
            headers=ann,
        )
        provider.close()
    assert response.status_code == 200, response.get_json()
    assert server.requests[-1].json()["input"] == (
        "The World Wide Web Consortium met in the big apple."
    )


def test_a_full_lexicon_applies_each_rule_where_its_word_is(synthesis, lexicons, ann, espeak):
    rules = [{"grapheme": f"Name{index}", "alias": f"name {index}"} for index in range(999)]
    lexicon = make_lexicon(lexicons, ann, {"grapheme": "Nguyen", "phoneme": "ˈwɪn"}, *rules)
    body = say(
        synthesis, ann, text="Mister Nguyen met Name7 and Name42.", lexiconIds=[lexicon["id"]]
    )
    assert espeak.requests[-1].text == "Mister [['wIn]] met name 7 and name 42."
    assert words_of(body) == ["Mister", "Nguyen", "met", "Name7", "and", "Name42"]


def test_native_dialogues_take_aliases_and_ipa_rules_make_them_segmented(
    function_client, lexicons, ann, platform
):
    aliases = make_lexicon(lexicons, ann, {"grapheme": "W3C", "alias": "World Wide Web"})
    ipa = make_lexicon(lexicons, ann, {"grapheme": "Nguyen", "phoneme": "ˈwɪn"})
    client = function_client("synthesis")
    with FakeHttpServer(elevenlabs_app()) as server:
        provider = ElevenLabsProvider(
            api_key=ELEVENLABS_KEY, base_url=server.url, model_id="eleven_multilingual_v2"
        )
        first, second = use(provider)[:2]
        turns = [
            {"speaker": "Ann", "voice": first.id, "text": "Hello Nguyen."},
            {"speaker": "Bob", "voice": second.id, "text": "Hi from the W3C!"},
        ]
        response = client.post(
            "/synthesize/dialogue",
            json={"turns": turns, "mode": "native", "lexiconIds": [aliases["id"], ipa["id"]]},
            headers=ann,
        )
        provider.close()
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["mode"], body["unappliedRules"]) == ("native", ["Nguyen"])
    inputs = server.requests[-1].json()["inputs"]
    assert [item["text"] for item in inputs] == ["Hello Nguyen.", "Hi from the World Wide Web!"]
    assert [(w["text"], w["turnIndex"]) for w in body["timestamps"]["words"]] == [
        ("Hello", 0),
        ("Nguyen", 0),
        ("Hi", 1),
        ("from", 1),
        ("the", 1),
        ("W3C", 1),
    ]
    # "W3C" is timed over the 14 characters of its alias (60 ms each in the fake).
    w3c = body["timestamps"]["words"][-1]
    assert w3c["end"] - w3c["start"] == pytest.approx(14 * 0.06, abs=0.1)
    with FakeHttpServer(gcp_app) as server:
        provider = GoogleTTSProvider(
            endpoint=server.url, transport="rest", credentials=AnonymousCredentials(), timeout=5
        )
        multi = next(v for v in use(provider) if v.supports_multi_speaker)
        turns = [
            {"speaker": "Ann", "voice": multi.id, "text": "Hello Nguyen."},
            {"speaker": "Bob", "voice": multi.id, "text": "Hi from the W3C!"},
        ]
        segmented = client.post(
            "/synthesize/dialogue",
            json={"turns": turns, "mode": "native", "lexiconIds": [ipa["id"]]},
            headers=ann,
        )
        sent = [r.json()["input"].get("ssml", "") for r in server.requests if r.method == "POST"]
        provider.close()
    assert segmented.status_code == 200, segmented.get_json()
    body = segmented.get_json()
    assert body["mode"] == "segmented"
    assert "IPA" in body["fallbackReason"]
    assert any('<phoneme alphabet="ipa" ph="ˈwɪn">Nguyen</phoneme>' in ssml for ssml in sent)


def test_a_prepared_request_renders_any_piece_of_its_text_with_its_lexicons(lexicons, ann, espeak):
    """What a sentence-by-sentence renderer (a stream) gets from ``prepare``."""
    from shared.synthesis.model import SynthesizeRequest
    from shared.synthesis.prepare import prepare

    lexicon = make_lexicon(lexicons, ann, {"grapheme": "W3C", "alias": "World Wide Web"})
    deps = get_container().deps(SYNTHESIS)
    prepared = prepare(
        deps,
        "ann",
        SynthesizeRequest(
            text="Hello there. The W3C met.", voice=VOICE, lexicon_ids=[lexicon["id"]]
        ),
    )
    assert prepared.lexicon_ids == (f"{lexicon['id']}@1",)
    second = prepared.render_piece("The W3C met.")
    assert espeak.requests[-1].text == "The World Wide Web met."
    assert [word.text for word in second.words] == ["The", "W3C", "met"]


def test_a_phrase_rule_applies_however_many_spaces_part_its_words(synthesis, lexicons, ann, espeak):
    # The cache key counts a run of spaces as one: the two spellings must be said alike.
    lexicon = make_lexicon(lexicons, ann, {"grapheme": "New York", "alias": "the big apple"})
    ids = [lexicon["id"]]
    spaced = say(synthesis, ann, text="We flew to New  York today.", lexiconIds=ids)
    assert espeak.requests[-1].text == "We flew to the big apple today."
    assert words_of(spaced) == ["We", "flew", "to", "New", "York", "today"]
    single = say(synthesis, ann, text="We flew to New York today.", lexiconIds=ids)
    assert (single["cacheHit"], single["checksum"]) == (True, spaced["checksum"])
    tabbed = say(synthesis, ann, text="Then to new\tyork again.", lexiconIds=ids)
    assert espeak.requests[-1].text == "Then to the big apple again."
    assert words_of(tabbed) == ["Then", "to", "new", "york", "again"]
    # A line break ends a sentence: a phrase does not reach across it.
    say(synthesis, ann, text="Not New\nYork.", lexiconIds=ids)
    assert espeak.requests[-1].text == "Not New\nYork."


def test_a_turkish_lexicon_cases_dotted_and_dotless_i_as_turkish_does(
    synthesis, lexicons, ann, espeak
):
    created = lexicons.post(
        "/lexicons",
        json={
            "name": "Şehirler",
            "language": "tr-TR",
            "rules": [{"grapheme": "istanbul", "alias": "Constantinople"}],
        },
        headers=ann,
    )
    assert created.status_code == 201, created.get_json()
    ids = [created.get_json()["id"]]
    spoken = say(synthesis, ann, text="İSTANBUL is big.", lexiconIds=ids)
    assert espeak.requests[-1].text == "Constantinople is big."
    assert words_of(spoken) == ["İSTANBUL", "is", "big"]
    # In Turkish "ISTANBUL" is the capitals of a word with a dotless i: not the rule's.
    say(synthesis, ann, text="ISTANBUL is big.", lexiconIds=ids)
    assert espeak.requests[-1].text == "ISTANBUL is big."


def said_as_nothing() -> str:
    """Store ann's lexicon saying "hush" as two control characters, as one saved before
    they were refused is (eSpeak renders no audio for it); return its id."""
    from shared.lexicons.model import Lexicon, LexiconRule
    from shared.lexicons.repository import LexiconRepository

    lexicon = Lexicon(
        user_id="ann",
        name="Old",
        language="en-US",
        rules=[LexiconRule(grapheme="hush", alias="\x03\x03")],
    )
    LexiconRepository(get_container().store).add(lexicon)
    return lexicon.id


def test_a_rule_stored_before_control_characters_were_refused_is_a_400_everywhere(
    synthesis, function_client, ann
):
    # A text said as nothing renders no audio: /synthesize answered 500 and the stream
    # broke after its 200.
    lexicon_id = said_as_nothing()
    body = {"voice": VOICE, "text": "hush", "lexiconIds": [lexicon_id]}
    for path in ("/synthesize", "/synthesize/stream"):
        refused = synthesis.post(path, json=body, headers=ann)
        assert refused.status_code == 400, (path, refused.get_data()[:300])
        assert refused.get_json()["code"] == "UNSUPPORTED_TEXT"
        assert set(refused.get_json()) >= SEED_ERROR_FIELDS
    turns = [{"speaker": "A", "voice": VOICE, "text": "hush", "lexiconIds": [lexicon_id]}]
    dialogue = synthesis.post("/synthesize/dialogue", json={"turns": turns}, headers=ann)
    assert dialogue.status_code == 400, dialogue.get_data()[:300]
    openai = function_client("openai_speech").post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": VOICE, "input": "hush", "lexicon_ids": [lexicon_id]},
        headers=ann,
    )
    assert openai.status_code == 400, openai.get_data()[:300]
    assert openai.get_json()["error"]["type"] == "invalid_request_error"
    # Nothing of them was stored; the same words with something to say are spoken.
    assert say(synthesis, ann, text="hush now", lexiconIds=[lexicon_id])["duration"] > 0.1


def test_words_said_as_nothing_before_the_first_audio_stream_with_it(synthesis, ann):
    # The stream holds back a first sentence rendered as no audio (so that a text said as
    # nothing fails before the first byte): its word goes out with the first audio.
    lexicon_id = said_as_nothing()
    response = synthesis.post(
        "/synthesize/stream",
        json={"voice": VOICE, "text": "Hush. Then the rest is said.", "lexiconIds": [lexicon_id]},
        headers={**ann, "Accept": "application/x-ndjson"},
    )
    assert response.status_code == 200
    *audio_lines, done = [json.loads(line) for line in response.get_data().splitlines()]
    assert done["done"] is True
    streamed = [word["text"] for line in audio_lines for word in line.get("words", [])]
    assert streamed == ["Hush", "Then", "the", "rest", "is", "said"]
    assert audio_lines[0]["words"][0]["charStart"] == 0


def test_a_job_said_as_nothing_fails_saying_so(synthesis, ann):
    # Every chunk of a job-length text renders no audio: the job fails at once, clearly.
    lexicon_id = said_as_nothing()
    queue = synthesis_worker()
    text = "hush " * 450
    started = say(synthesis, ann, 202, text=text, lexiconIds=[lexicon_id])
    done = run_to_its_end(queue, synthesis, ann, started["jobId"])
    assert done["status"] == "failed"
    assert "says nothing" in done["error"]
    assert done["audioFileId"] is None
    container = get_container()
    chunks = f"synthesis-jobs/{started['jobId']}/"
    assert container.blobs.list(container.settings.audio_bucket, chunks).items == []
