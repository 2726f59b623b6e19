"""A gRPC fake of Google Cloud TTS (v1beta1), served with the library's own messages.

``google-cloud-texttospeech`` ships no servicer classes, so the fake registers a generic
handler for ``ListVoices``, ``SynthesizeSpeech`` and the bidirectional
``StreamingSynthesize`` using the request and response types' own
``serialize``/``deserialize``. ``fail_next(code)`` aborts the next call with a status;
``fail_mid_stream(code)`` aborts the next stream after its first audio.

``StreamingSynthesize`` behaves as Google's: the first message must be the
``streaming_config`` (a Chirp 3 HD or Journey voice, PCM), each later ``input`` is spoken
as raw PCM at the configured rate in several responses; other voices are
``INVALID_ARGUMENT``. With a ``gate`` (a ``threading.Event``), responses after the first
wait for it, so a test can prove the client had audio before the server sent the rest.
"""

from __future__ import annotations

import re
import threading
from concurrent import futures
from typing import Any

import grpc
from google.cloud import texttospeech_v1beta1 as tts

from tests.support.fake_tts_servers import (
    GATE_TIMEOUT_SECONDS,
    GCP_VOICES,
    SECONDS_PER_CHAR,
    STREAM_PIECE_BYTES,
    tone,
    wav_bytes,
)

SERVICE = "google.cloud.texttospeech.v1beta1.TextToSpeech"
_MARK = re.compile(r'<mark name="([^"]+)"\s*/>')


class FakeGoogleTTSGrpc:
    """The fake server; use as a context manager, then connect to ``host``."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._failures: list[grpc.StatusCode] = []
        self._mid_stream: list[grpc.StatusCode] = []
        self._gate = gate
        self.streamed: list[Any] = []  # each stream's StreamingSynthesizeConfig
        self._lock = threading.Lock()
        handlers = {
            "ListVoices": grpc.unary_unary_rpc_method_handler(
                self._list_voices,
                request_deserializer=tts.ListVoicesRequest.deserialize,
                response_serializer=tts.ListVoicesResponse.serialize,
            ),
            "SynthesizeSpeech": grpc.unary_unary_rpc_method_handler(
                self._synthesize,
                request_deserializer=tts.SynthesizeSpeechRequest.deserialize,
                response_serializer=tts.SynthesizeSpeechResponse.serialize,
            ),
            "StreamingSynthesize": grpc.stream_stream_rpc_method_handler(
                self._streaming_synthesize,
                request_deserializer=tts.StreamingSynthesizeRequest.deserialize,
                response_serializer=tts.StreamingSynthesizeResponse.serialize,
            ),
        }
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, handlers)]
        )
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.host = f"127.0.0.1:{port}"

    def __enter__(self) -> FakeGoogleTTSGrpc:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)

    def fail_next(self, code: grpc.StatusCode) -> None:
        with self._lock:
            self._failures.append(code)

    def fail_mid_stream(self, code: grpc.StatusCode) -> None:
        with self._lock:
            self._mid_stream.append(code)

    def _maybe_fail(self, context: Any) -> None:
        with self._lock:
            code = self._failures.pop(0) if self._failures else None
        if code is not None:
            context.abort(code, f"fake {code.name}")

    def _list_voices(self, request: Any, context: Any) -> Any:
        self._maybe_fail(context)
        return tts.ListVoicesResponse(
            voices=[
                tts.Voice(
                    language_codes=v["languageCodes"],
                    name=v["name"],
                    ssml_gender=tts.SsmlVoiceGender[v["ssmlGender"]],
                    natural_sample_rate_hertz=v["naturalSampleRateHertz"],
                )
                for v in GCP_VOICES
            ]
        )

    def _synthesize(self, request: Any, context: Any) -> Any:
        self._maybe_fail(context)
        ssml = request.input.ssml
        rate = request.audio_config.sample_rate_hertz or 24_000
        points, spoken = [], 0
        for piece in re.split(r"(<[^>]+>)", ssml):
            mark = _MARK.fullmatch(piece)
            if mark:
                points.append(
                    tts.Timepoint(mark_name=mark.group(1), time_seconds=spoken * SECONDS_PER_CHAR)
                )
            elif not piece.startswith("<"):
                spoken += len(piece)
        return tts.SynthesizeSpeechResponse(
            audio_content=wav_bytes(tone(spoken * SECONDS_PER_CHAR, rate), rate),
            timepoints=points if request.enable_time_pointing else [],
        )

    def _streaming_synthesize(self, requests: Any, context: Any) -> Any:
        self._maybe_fail(context)
        with self._lock:
            broken = self._mid_stream.pop(0) if self._mid_stream else None
        requests = iter(requests)
        first = next(requests, None)
        if first is None or "streaming_config" not in first:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "The first message must be the config")
        config = first.streaming_config
        name = config.voice.name
        if "-Chirp3-HD-" not in name and "-Journey-" not in name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Voice {name} does not stream")
        audio = config.streaming_audio_config
        if audio.audio_encoding != tts.AudioEncoding.PCM:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Streaming audio is PCM here")
        self.streamed.append(config)
        rate = audio.sample_rate_hertz or 24_000
        speed = audio.speaking_rate or 1.0
        sent = 0
        for request in requests:
            pcm = tone(len(request.input.text) * SECONDS_PER_CHAR / speed, rate)
            for start in range(0, len(pcm), STREAM_PIECE_BYTES - 1):
                if sent and broken is not None:
                    context.abort(broken, f"fake {broken.name} mid-stream")
                if sent and self._gate is not None:
                    self._gate.wait(GATE_TIMEOUT_SECONDS)
                sent += 1
                yield tts.StreamingSynthesizeResponse(
                    audio_content=pcm[start : start + STREAM_PIECE_BYTES - 1]
                )
