"""POST /synthesize/stream through the real synthesis function and the real eSpeak engine.

Responses are read chunk by chunk (``buffered=False``: the function's own iterator), so
the tests see what a client sees as it arrives. Provider calls are counted by
``CountingEspeak``; the bounded look-ahead is observed through its log line and the count.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import soundfile  # type: ignore[import-untyped]

from shared.audio.encode import decode_duration
from shared.bootstrap import get_container, reset_container
from shared.catalog.repository import VoiceRepository
from shared.files.cache import SYNTHESIS_CACHE
from shared.files.repository import AUDIO_FILES
from shared.providers.base import ErrorCategory, SynthesisRequest, SynthesisResult, provider_error
from shared.providers.registry import ProviderRegistry
from shared.store import Query
from shared.synthesis import CAPABILITY as SYNTHESIS
from shared.synthesis.model import SynthesizeRequest
from shared.synthesis.prepare import prepare
from shared.synthesis.repository import SYNTHESIS_JOBS
from shared.synthesis.streaming import open_stream
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import create_model, fetch
from tests.functions.test_synthesis_fixtures import CountingEspeak
from tests.functions.test_synthesis_spans import assert_placed

ann = fx.ann
bob = fx.bob
synthesis_client = fx.synthesis_client

AHEAD = 2
SENTENCES = [f"Sentence number {n} is spoken here." for n in range(1, 13)]
TEXT = " ".join(SENTENCES)
WAITING = "Run-ahead waits for its reader"


@pytest.fixture
def espeak(platform: Any, monkeypatch: pytest.MonkeyPatch) -> CountingEspeak:
    """The counting eSpeak provider; one sentence per streamed chunk, two chunks ahead."""
    monkeypatch.setenv("VOICE_SYNTHESIS_STREAM_CHUNK_CHARS", "40")
    monkeypatch.setenv("VOICE_SYNTHESIS_STREAM_AHEAD_CHUNKS", str(AHEAD))
    reset_container()
    provider = CountingEspeak()
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    VoiceRepository(container.store).upsert(fx.espeak_voices())
    return provider


def stream(client: Any, headers: dict[str, str], path: str = "/synthesize/stream", **fields: Any):
    body = {"text": TEXT, "voice": "espeak:en-US", **fields}
    return client.post(path, json=body, headers=headers, buffered=False)


def chunks_of(response: Any) -> list[bytes]:
    try:
        return [bytes(chunk) for chunk in response.response if chunk]
    finally:
        response.close()


def count(collection: str) -> int:
    return get_container().store.count(Query(collection))


def ready_entries() -> int:
    query = Query(SYNTHESIS_CACHE).where("status", "==", "ready")
    return get_container().store.count(query)


def decoded_seconds(data: bytes) -> float:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    return len(samples) / rate


@pytest.mark.parametrize("fmt", ["mp3", "ogg_opus", "wav", "pcm"])
def test_audio_arrives_sentence_by_sentence_and_every_prefix_plays(
    synthesis_client, espeak, ann, fmt
):
    response = stream(synthesis_client, ann, outputFormat=fmt)
    assert response.status_code == 200
    assert response.headers["X-Cache-Hit"] == "false"
    assert "Content-Length" not in response.headers
    chunks = chunks_of(response)
    assert espeak.calls == len(SENTENCES)  # one provider call per sentence
    assert len(chunks) >= len(SENTENCES)
    whole = b"".join(chunks)
    if fmt == "wav":
        # The streaming header: RIFF and data sizes unknown (0xFFFFFFFF), PCM behind it.
        riff, data = struct.unpack_from("<I", whole, 4)[0], struct.unpack_from("<I", whole, 40)[0]
        assert (whole[:4], whole[36:40], riff, data) == (b"RIFF", b"data", 0xFFFFFFFF, 0xFFFFFFFF)
        total = (len(whole) - 44) / 2 / 22_050
    elif fmt == "pcm":
        assert response.headers["Content-Type"] == "audio/L16;rate=22050;channels=1"
        total = len(whole) / 2 / 22_050
    else:
        # Played in sequence: each prefix of the stream decodes, and grows in time.
        played = [decoded_seconds(b"".join(chunks[: n + 1])) for n in range(1, len(chunks))]
        assert played == sorted(played)
        assert played[0] < played[-1] / 4
        total = played[-1]
    # The stored file is the audio streamed: the same length, and it is the user's file.
    files = list(get_container().store.stream(Query(AUDIO_FILES)))
    assert len(files) == 1
    stored = get_container().blobs.get(
        get_container().settings.audio_bucket, files[0].data["file_path"]
    )
    assert decode_duration(stored, fmt, sample_rate=22_050) == pytest.approx(total, abs=0.08)
    assert total > len(SENTENCES) * 1.0


def test_the_next_identical_request_is_a_hit_streamed_or_not(synthesis_client, espeak, ann):
    first = b"".join(chunks_of(stream(synthesis_client, ann, outputFormat="mp3")))
    calls = espeak.calls
    again = stream(synthesis_client, ann, outputFormat="mp3")
    assert again.headers["X-Cache-Hit"] == "true"
    replayed = b"".join(chunks_of(again))
    plain = synthesis_client.post(
        "/synthesize",
        json={"text": TEXT, "voice": "espeak:en-US", "outputFormat": "mp3"},
        headers=ann,
    ).get_json()
    assert plain["cacheHit"] is True
    assert plain["billedCharacters"] == 0
    assert espeak.calls == calls  # neither hit asked the engine
    stored = fetch(plain["downloadUrl"])
    assert replayed == stored
    # The stored file carries the gapless tag before the very frames that were streamed.
    assert stored.endswith(first)
    assert plain["duration"] == pytest.approx(decoded_seconds(first), abs=0.08)
    words = plain["timestamps"]["words"]
    assert [w["text"] for w in words] == TEXT.replace(".", "").split()


def test_an_accept_header_that_names_neither_audio_nor_lines_is_a_406(
    synthesis_client, espeak, ann
):
    refused = stream(synthesis_client, {**ann, "Accept": "application/json"}, outputFormat="mp3")
    assert refused.status_code == 406
    assert refused.get_json()["code"] == "NOT_ACCEPTABLE"
    assert count(SYNTHESIS_JOBS) == 0  # refused before any work
    for accept, wanted in (
        ("audio/*", "audio/mpeg"),
        ("application/x-ndjson;q=0.5, audio/mpeg", "audio/mpeg"),
        ("audio/mpeg;q=0.1, application/x-ndjson", "application/x-ndjson"),
        ("*/*", "audio/mpeg"),
    ):
        response = stream(synthesis_client, {**ann, "Accept": accept}, outputFormat="mp3")
        assert response.status_code == 200, accept
        assert response.headers["Content-Type"].split(";")[0] == wanted, accept
        chunks_of(response)


def test_timestamps_variant_sends_json_lines_on_the_whole_utterances_clock(
    synthesis_client, espeak, ann
):
    response = stream(
        synthesis_client, {**ann, "Accept": "application/x-ndjson"}, outputFormat="pcm"
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(chunks_of(response)).splitlines()]
    *audio_lines, done = lines
    assert done["done"] is True
    assert done["requestId"] == response.headers["X-Request-Id"]
    assert done["cacheHit"] is False
    assert done["billedCharacters"] == len(TEXT)
    elapsed, words, syllables = 0.0, [], []
    for line in audio_lines:
        seconds = len(base64.b64decode(line["audio"])) / 2 / 22_050
        for word in line.get("words", []):
            # Each chunk's words lie in that chunk's stretch of the whole audio.
            assert elapsed - 0.01 <= word["start"] <= word["end"] <= elapsed + seconds + 0.01
        words.extend(line.get("words", []))
        syllables.extend(line.get("syllables", []))
        elapsed += seconds
    assert done["duration"] == pytest.approx(elapsed, abs=0.01)
    assert [w["text"] for w in words] == TEXT.replace(".", "").split()
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    # Syllables name their word over the whole utterance, and lie inside it.
    assert {s["wordIndex"] for s in syllables} == set(range(len(words)))
    for syllable in syllables:
        word = words[syllable["wordIndex"]]
        assert word["start"] - 1e-6 <= syllable["start"] <= syllable["end"] <= word["end"] + 1e-6
    # The query flag asks for the same; the hit streams its stored words.
    hit = stream(synthesis_client, ann, "/synthesize/stream?timestamps=true", outputFormat="pcm")
    hit_lines = [json.loads(line) for line in b"".join(chunks_of(hit)).splitlines()]
    assert hit_lines[-1]["cacheHit"] is True
    assert [w["text"] for line in hit_lines[:-1] for w in line.get("words", [])] == [
        w["text"] for w in words
    ]


def timed_lines(response: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the words and syllables of a JSON lines answer, and its done line."""
    *audio_lines, done = [json.loads(line) for line in b"".join(chunks_of(response)).splitlines()]
    words = [word for line in audio_lines for word in line.get("words", [])]
    syllables = [syllable for line in audio_lines for syllable in line.get("syllables", [])]
    return {"words": words, "syllables": syllables}, done


def timing_keys(response: Any) -> tuple[list[set[str]], dict[str, Any], dict[str, Any]]:
    """Return the timing names of each audio line, the timings, and the done line."""
    *audio_lines, done = [json.loads(line) for line in b"".join(chunks_of(response)).splitlines()]
    names = [set(line) - {"audio"} for line in audio_lines]
    timed = {
        name: [item for line in audio_lines for item in line.get(name, [])]
        for name in ("words", "syllables")
    }
    return names, timed, done


@pytest.mark.parametrize(
    ("granularity", "wanted"),
    [("word", {"words"}), ("syllable", {"syllables"}), ("both", {"words", "syllables"})],
)
def test_a_hit_streams_the_timings_its_miss_streamed(
    synthesis_client, espeak, ann, granularity, wanted
):
    path = "/synthesize/stream?timestamps=true"
    fields = {"outputFormat": "pcm", "timestampGranularity": granularity}
    names, miss, done = timing_keys(stream(synthesis_client, ann, path, **fields))
    assert done["cacheHit"] is False
    assert all(line == wanted for line in names)
    assert all(miss[name] for name in wanted)
    hit_names, hit, done = timing_keys(stream(synthesis_client, ann, path, **fields))
    assert done["cacheHit"] is True
    assert len(hit_names) > 1  # the stored file comes in several chunks
    assert all(line == wanted for line in hit_names)
    # The same timings, however the hit's chunks cut them.
    assert hit == miss


def test_streamed_words_are_placed_in_the_whole_text_sent(synthesis_client, espeak, ann):
    text = (
        " Hello 🎉 world, hello world! It costs $5 to learn C++ (not C#). "
        "😀Smile. 你好\uff0c世界。 Hello again, world."
    )
    path = "/synthesize/stream?timestamps=true"
    timed, done = timed_lines(stream(synthesis_client, ann, path, text=text, outputFormat="pcm"))
    assert done["cacheHit"] is False
    assert espeak.calls == 3  # in sentence chunks, each placed at its offset
    assert_placed(text, timed)
    # The text spaced otherwise is a hit: the stored words, placed on its own text.
    spaced = "\n " + text.replace(" hello", "   hello").replace("。 Hello", "。\tHello")
    hit, done = timed_lines(stream(synthesis_client, ann, path, text=spaced, outputFormat="pcm"))
    assert done["cacheHit"] is True
    assert [w["text"] for w in hit["words"]] == [w["text"] for w in timed["words"]]
    assert_placed(spaced, hit)


def test_streamed_ssml_times_the_written_words_as_the_unstreamed_answer_does(
    synthesis_client, espeak, ann
):
    ssml = '<speak>Visit <sub alias="World Wide Web">WWW</sub> today</speak>'
    response = stream(
        synthesis_client, {**ann, "Accept": "application/x-ndjson"}, text=None, ssml=ssml
    )
    assert response.status_code == 200
    *audio_lines, _ = [json.loads(line) for line in b"".join(chunks_of(response)).splitlines()]
    words = [word for line in audio_lines for word in line.get("words", [])]
    syllables = [syllable for line in audio_lines for syllable in line.get("syllables", [])]
    assert [w["text"] for w in words] == ["Visit", "WWW", "today"]
    assert {s["wordIndex"] for s in syllables} == {0, 1, 2}
    for syllable in syllables:
        word = words[syllable["wordIndex"]]
        assert word["start"] - 1e-6 <= syllable["start"] <= syllable["end"] <= word["end"] + 1e-6
    body = synthesis_client.post(
        "/synthesize", json={"ssml": ssml, "voice": "espeak:en-US"}, headers=ann
    ).get_json()
    assert body["timestamps"]["words"] == words


def wait_for(predicate: Any, what: str) -> None:
    """Wait (up to a deadlock guard) until ``predicate()``; no time is asserted."""
    deadline = time.monotonic() + 30
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def test_a_reader_that_stops_reading_stops_the_synthesis_within_the_bound(
    synthesis_client, espeak, ann, caplog
):
    caplog.set_level(logging.DEBUG, logger="shared.synthesis.ahead")
    response = stream(synthesis_client, ann, outputFormat="pcm")
    assert response.status_code == 200  # the first chunk is made; nothing more is read

    def waiting() -> int:
        return sum(WAITING in record.getMessage() for record in caplog.records)

    assert espeak.calls == 1  # the first sentence alone, made before its chunk is sent
    body = iter(response.response)
    next(body)  # the first chunk is sent and the next asked for: the work runs ahead
    next(body)
    wait_for(lambda: waiting() >= 1, "the synthesis waits for the reader")
    assert espeak.calls == 1 + AHEAD
    next(body)  # the reader takes one more chunk: one more sentence is made, no more
    wait_for(lambda: waiting() >= 2, "the synthesis waits again")
    assert espeak.calls == 2 + AHEAD
    response.close()  # the client goes away: the work stops, nothing partial is stored
    assert espeak.calls == 2 + AHEAD < len(SENTENCES)
    assert (count(AUDIO_FILES), count(SYNTHESIS_JOBS), count(SYNTHESIS_CACHE)) == (0, 0, 0)
    # The key was released: the next identical request renders it afresh, and completes.
    again = stream(synthesis_client, ann, outputFormat="pcm")
    assert again.headers["X-Cache-Hit"] == "false"
    chunks_of(again)
    assert (count(AUDIO_FILES), count(SYNTHESIS_JOBS), ready_entries()) == (1, 1, 1)


class FailingEspeak(CountingEspeak):
    """eSpeak whose third call fails (a provider outage mid-stream)."""

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        if self.calls == 2:
            self.calls += 1
            raise provider_error("espeak", ErrorCategory.TRANSIENT, "engine fell over")
        return super().synthesize(request)


@pytest.fixture
def failing(espeak: CountingEspeak) -> FailingEspeak:
    provider = FailingEspeak()
    get_container().use_provider_registry(ProviderRegistry.of([provider]))
    return provider


def test_an_error_after_the_first_byte_ends_the_stream_detectably(synthesis_client, failing, ann):
    lines_response = stream(synthesis_client, {**ann, "Accept": "application/x-ndjson"})
    assert lines_response.status_code == 200
    lines = [json.loads(line) for line in b"".join(chunks_of(lines_response)).splitlines()]
    assert "audio" in lines[0]
    assert not any(line.get("done") for line in lines)
    error = lines[-1]
    assert error["code"] == "PROVIDER_UNAVAILABLE"
    assert error["requestId"] == lines_response.headers["X-Request-Id"]
    assert set(error) >= {"error", "code", "timestamp", "requestId"}
    failing.calls = 0
    audio_response = stream(synthesis_client, ann, outputFormat="mp3")
    assert audio_response.status_code == 200
    with pytest.raises(Exception, match="engine fell over"):
        chunks_of(audio_response)  # the server aborts the chunked body
    assert (count(AUDIO_FILES), count(SYNTHESIS_JOBS), count(SYNTHESIS_CACHE)) == (0, 0, 0)


def test_errors_before_the_first_byte_are_json_error_bodies(synthesis_client, espeak, ann):
    cases = [
        ({}, {"text": TEXT, "voice": "espeak:en-US", "outputFormat": "flac"}, 415),
        ({}, {"voice": "espeak:en-US"}, 400),
        ({}, {"text": TEXT, "voice": "espeak:no-such-voice"}, 404),
        ({"Authorization": ""}, {"text": TEXT}, 401),
    ]
    for headers, body, status in cases:
        response = synthesis_client.post(
            "/synthesize/stream", json=body, headers={**ann, **headers}
        )
        assert response.status_code == status, response.get_json()
        assert set(response.get_json()) >= {"error", "code", "timestamp", "requestId"}
    first_call = FailingAtOnce()
    get_container().use_provider_registry(ProviderRegistry.of([first_call]))
    response = synthesis_client.post(
        "/synthesize/stream", json={"text": TEXT, "voice": "espeak:en-US"}, headers=ann
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.get_json()["code"] == "PROVIDER_UNAVAILABLE"


class FailingAtOnce(CountingEspeak):
    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        raise provider_error("espeak", ErrorCategory.TRANSIENT, "engine is down")


class StreamingEspeak(CountingEspeak):
    """eSpeak as a provider that streams a request itself (as the cloud adapters may)."""

    def __init__(self) -> None:
        super().__init__()
        self.streamed = 0

    def streams(self, request: SynthesisRequest) -> bool:
        return True

    def stream_pcm(self, request: SynthesisRequest) -> Iterator[bytes]:
        self.streamed += 1
        pcm = super().synthesize(request).pcm
        piece = 4096
        for start in range(0, len(pcm), piece):
            yield pcm[start : start + piece]


@pytest.fixture
def native(espeak: CountingEspeak) -> StreamingEspeak:
    provider = StreamingEspeak()
    get_container().use_provider_registry(ProviderRegistry.of([provider]))
    return provider


def test_a_provider_that_streams_is_read_as_it_produces_when_no_timings_are_wanted(
    synthesis_client, native, ann
):
    plain = chunks_of(stream(synthesis_client, ann, outputFormat="pcm", includeTimestamps=False))
    assert (native.streamed, native.calls) == (1, 1)  # one request, not one per sentence
    assert len(plain) > len(SENTENCES)  # the provider's own pieces
    timed = chunks_of(stream(synthesis_client, ann, outputFormat="pcm"))
    assert native.streamed == 1  # timings need the sentence-by-sentence path
    assert native.calls == 1 + len(SENTENCES)
    assert max(len(chunk) for chunk in plain) <= 4096  # the pieces the provider sent
    assert max(len(chunk) for chunk in timed) > 4096  # whole sentences


def test_other_users_do_not_hit_your_streamed_audio(synthesis_client, espeak, ann, bob):
    chunks_of(stream(synthesis_client, ann, outputFormat="pcm"))
    theirs = stream(synthesis_client, bob, outputFormat="pcm")
    assert theirs.headers["X-Cache-Hit"] == "false"
    chunks_of(theirs)
    assert espeak.calls == 2 * len(SENTENCES)


def test_concurrent_identical_streams_render_once(function_client, espeak, ann):
    results: list[bytes] = []

    def run(client: Any) -> None:
        results.append(b"".join(chunks_of(stream(client, ann, outputFormat="pcm"))))

    clients = [function_client("synthesis") for _ in range(2)]
    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert espeak.calls == len(SENTENCES)
    assert results[0] == results[1]


def test_a_streamed_synthesis_with_a_voice_model_counts_one_use(function_client, espeak, ann):
    models = function_client("voice_models")
    model = create_model(models, ann, "ann")
    client = function_client("synthesis")
    chunks_of(stream(client, ann, outputFormat="pcm", voice=model["id"]))
    stats = models.get(f"/voice-models/{model['id']}/usage-stats", headers=ann).get_json()
    # One use for the whole stream (not one per sentence), billed for every character.
    assert stats["usageCount"] == 1
    assert (stats["characters"], stats["requestedCharacters"]) == (len(TEXT), len(TEXT))
    chunks_of(stream(client, ann, outputFormat="pcm", voice=model["id"]))  # a hit: a use
    stats = models.get(f"/voice-models/{model['id']}/usage-stats", headers=ann).get_json()
    assert stats["usageCount"] == 2
    assert (stats["characters"], stats["requestedCharacters"]) == (len(TEXT), 2 * len(TEXT))


def test_a_stream_closed_before_its_first_chunk_releases_its_key(espeak):
    deps = get_container().deps(SYNTHESIS)
    body = SynthesizeRequest.model_validate({"text": TEXT, "voice": "espeak:en-US"})
    opened = open_stream(deps, "ann", prepare(deps, "ann", body))
    assert count(SYNTHESIS_CACHE) == 1  # claimed at once
    opened.close()
    assert (count(SYNTHESIS_CACHE), espeak.calls) == (0, 0)
