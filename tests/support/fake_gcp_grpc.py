"""A gRPC fake of Google Cloud TTS (v1beta1), served with the library's own messages.

``google-cloud-texttospeech`` ships no servicer classes, so the fake registers a generic
handler for ``ListVoices`` and ``SynthesizeSpeech`` using the request and response types'
own ``serialize``/``deserialize``. ``fail_next(code)`` aborts the next call with a status.
"""

from __future__ import annotations

import re
import threading
from concurrent import futures
from typing import Any

import grpc
from google.cloud import texttospeech_v1beta1 as tts

from tests.support.fake_tts_servers import GCP_VOICES, SECONDS_PER_CHAR, tone, wav_bytes

SERVICE = "google.cloud.texttospeech.v1beta1.TextToSpeech"
_MARK = re.compile(r'<mark name="([^"]+)"\s*/>')


class FakeGoogleTTSGrpc:
    """The fake server; use as a context manager, then connect to ``host``."""

    def __init__(self) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._failures: list[grpc.StatusCode] = []
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
