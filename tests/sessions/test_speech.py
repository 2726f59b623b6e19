"""Speech-to-text: the bundled Whisper model; Google streaming against a fake in its wire format."""

from __future__ import annotations

import asyncio
import shutil
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.cloud import speech_v1

from shared.errors import ConfigurationError
from shared.speech import SpeechRegistry, SpeechSettings, SpeechToTextError
from shared.speech.google import GoogleSpeechToText
from shared.speech.whisper import MODEL_SHA256, WhisperSpeechToText, bundled_model_dir, file_sha256
from tests.sessions.support import silence, speech
from tests.support.processes import free_port


def test_the_bundled_model_is_the_expected_file():
    assert file_sha256(bundled_model_dir() / "model.bin") == MODEL_SHA256


def test_a_model_file_with_another_digest_is_refused(tmp_path: Path):
    copy = tmp_path / "model"
    shutil.copytree(bundled_model_dir(), copy)
    with (copy / "model.bin").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"tampered")
    recogniser = WhisperSpeechToText(model_dir=copy)
    with pytest.raises(ConfigurationError, match="refusing to load"):
        asyncio.run(recogniser.transcribe(speech("Hello."), 16_000, "en"))
    recogniser.close()


def test_whisper_transcribes_one_utterance_per_stream(whisper):
    async def scenario():
        stream = whisper.open_stream(sample_rate=16_000, language="en-US")
        pcm = silence(0.2) + speech("Thank you very much.") + silence(0.2)
        for start in range(0, len(pcm), 640):
            stream.feed(pcm[start : start + 640])
        return await stream.finish()

    transcript = asyncio.run(scenario())
    assert transcript.text == "Thank you very much."
    assert transcript.audio_seconds > 1.0


def test_whisper_refuses_other_languages(whisper):
    with pytest.raises(SpeechToTextError, match="English only"):
        asyncio.run(whisper.transcribe(speech("Bonjour."), 16_000, "fr-FR"))


def test_decodes_share_a_bounded_pool(whisper):
    async def scenario():
        pcm = speech("Good morning.")
        return await asyncio.gather(*(whisper.transcribe(pcm, 16_000, "en") for _ in range(5)))

    texts = [transcript.text for transcript in asyncio.run(scenario())]
    assert texts == ["Good morning."] * 5
    assert whisper.queued == 0


class FakeSpeechServer:
    """Google's StreamingRecognize over gRPC, answering in the real protobuf messages.

    It records the config and the audio it received and answers with interim results
    while audio arrives and one final result per "sentence" when the client half-closes.
    """

    def __init__(self, words: list[str], *, fail_with: grpc.StatusCode | None = None) -> None:
        self.words = words
        self.fail_with = fail_with
        self.configs: list[speech_v1.StreamingRecognitionConfig] = []
        self.audio = bytearray()
        self.port = free_port()
        handler = grpc.method_handlers_generic_handler(
            "google.cloud.speech.v1.Speech",
            {
                "StreamingRecognize": grpc.stream_stream_rpc_method_handler(
                    self._recognize,
                    request_deserializer=speech_v1.StreamingRecognizeRequest.deserialize,
                    response_serializer=speech_v1.StreamingRecognizeResponse.serialize,
                )
            },
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")

    def _recognize(self, requests, context):
        chunks = 0
        for request in requests:
            if "streaming_config" in request:
                self.configs.append(request.streaming_config)
                continue
            self.audio.extend(request.audio_content)
            chunks += 1
            if chunks % 10 == 0:
                heard = " ".join(self.words[: min(len(self.words), chunks // 10)])
                yield _response(heard, final=False)
        if self.fail_with is not None:
            context.abort(self.fail_with, "fake failure")
        half = len(self.words) // 2
        yield _response(" ".join(self.words[:half]), final=True)
        yield _response(" ".join(self.words[half:]), final=True)

    def __enter__(self) -> FakeSpeechServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)


def _response(text: str, *, final: bool) -> speech_v1.StreamingRecognizeResponse:
    return speech_v1.StreamingRecognizeResponse(
        results=[
            speech_v1.StreamingRecognitionResult(
                alternatives=[speech_v1.SpeechRecognitionAlternative(transcript=text)],
                is_final=final,
            )
        ]
    )


def google_stream(port: int, pcm: bytes) -> tuple[str, list[str]]:
    recogniser = GoogleSpeechToText(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=20)
    partials: list[str] = []

    async def scenario():
        stream = recogniser.open_stream(
            sample_rate=16_000, language="en-GB", on_partial=partials.append
        )
        for start in range(0, len(pcm), 640):
            stream.feed(pcm[start : start + 640])
            await asyncio.sleep(0)
        return await stream.finish()

    try:
        transcript = asyncio.run(scenario())
    finally:
        recogniser.close()
    return transcript.text, partials


def test_google_streaming_sends_config_and_audio_and_reads_partials_and_finals():
    pcm = speech("Good morning, how are you?")
    with FakeSpeechServer(["good", "morning", "how", "are", "you"]) as fake:
        text, partials = google_stream(fake.port, pcm)
        config = fake.configs[0]
        assert bytes(fake.audio) == pcm
    assert text == "good morning how are you"
    assert partials
    assert partials[0] == "good"
    assert config.config.sample_rate_hertz == 16_000
    assert config.config.language_code == "en-GB"
    assert config.config.encoding == speech_v1.RecognitionConfig.AudioEncoding.LINEAR16
    assert config.interim_results is True


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (grpc.StatusCode.UNAVAILABLE, "transient"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited"),
        (grpc.StatusCode.UNAUTHENTICATED, "auth"),
        (grpc.StatusCode.INVALID_ARGUMENT, "permanent"),
    ],
)
def test_google_failures_carry_a_category(status, category):
    with (
        FakeSpeechServer(["x"], fail_with=status) as fake,
        pytest.raises(SpeechToTextError) as failed,
    ):
        google_stream(fake.port, speech("Hello."))
    assert failed.value.category.value == category


def test_the_registry_builds_enabled_providers_once():
    registry = SpeechRegistry(
        SpeechSettings(enabled=("google",), google_endpoint="127.0.0.1:1", google_insecure=True)
    )
    assert registry.names == ["google"]
    assert registry.get("google") is registry.get("google")
    with pytest.raises(Exception, match="not enabled"):
        registry.get("whisper")
    registry.close()
