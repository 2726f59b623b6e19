"""Google Cloud Speech-to-Text streaming recognition (v1), the production recogniser.

Each utterance is one ``StreamingRecognize`` call: the first request carries the
recognition config (LINEAR16 at the stream's rate, the session's language, interim results
on), then the audio follows as it is fed. Interim results reach ``on_partial`` (final
pieces so far plus the current hypothesis); ``finish`` half-closes the stream and returns
the final pieces joined. The gRPC call is blocking, so each stream runs it on a thread of
the provider's pool and hands results back to the event loop.

``endpoint`` with ``insecure=True`` points the client at a plain-text gRPC server (the
tests' fake speaks the real wire format); otherwise the client uses Google's endpoint and
the default credentials (the Cloud Run service account).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from shared.providers import ErrorCategory
from shared.speech.base import (
    PartialHandler,
    RecognitionStream,
    SpeechToText,
    SpeechToTextError,
    Transcript,
)

_END = object()
MAX_CHUNK_BYTES = 25_000  # Google refuses audio_content larger than about 25 KB per request


def _category(exc: Exception) -> ErrorCategory:
    from google.api_core import exceptions  # noqa: PLC0415 - with the client, on first use

    if isinstance(exc, exceptions.ResourceExhausted):
        return ErrorCategory.RATE_LIMITED
    if isinstance(exc, exceptions.Unauthenticated | exceptions.PermissionDenied):
        return ErrorCategory.AUTH
    if isinstance(
        exc,
        exceptions.ServiceUnavailable
        | exceptions.DeadlineExceeded
        | exceptions.InternalServerError,
    ):
        return ErrorCategory.TRANSIENT
    return ErrorCategory.PERMANENT


class GoogleSpeechToText(SpeechToText):
    """Streaming recognition through ``google-cloud-speech``; interim results included."""

    name: ClassVar[str] = "google"
    streaming: ClassVar[bool] = True

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        insecure: bool = False,
        model: str | None = None,
        timeout: float = 60.0,
        max_streams: int = 64,
    ) -> None:
        self._endpoint = endpoint
        self._insecure = insecure
        self._model = model
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=max_streams, thread_name_prefix="gstt")
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        """Return the Speech client, built on first use."""
        with self._lock:
            if self._client is None:
                from google.cloud import speech_v1  # noqa: PLC0415 - built on first use

                if self._endpoint and self._insecure:
                    import grpc  # noqa: PLC0415
                    from google.cloud.speech_v1.services.speech.transports import (  # noqa: PLC0415
                        SpeechGrpcTransport,
                    )

                    channel = grpc.insecure_channel(self._endpoint)
                    self._client = speech_v1.SpeechClient(
                        transport=SpeechGrpcTransport(channel=channel)
                    )
                else:
                    options = {"api_endpoint": self._endpoint} if self._endpoint else None
                    self._client = speech_v1.SpeechClient(client_options=options)
            return self._client

    def open_stream(
        self,
        *,
        sample_rate: int,
        language: str | None,
        on_partial: PartialHandler | None = None,
    ) -> RecognitionStream:
        return _GoogleStream(self, sample_rate, language or "en-US", on_partial)

    def run_stream(
        self,
        audio: queue.Queue[object],
        sample_rate: int,
        language: str,
        on_result: Any,
    ) -> str:
        """Run one blocking recognition over ``audio`` (ends at ``_END``); return the text.

        Raises:
            SpeechToTextError: the call failed.
        """
        from google.cloud import speech_v1  # noqa: PLC0415

        config = speech_v1.StreamingRecognitionConfig(
            config=speech_v1.RecognitionConfig(
                encoding=speech_v1.RecognitionConfig.AudioEncoding.LINEAR16,
                sample_rate_hertz=sample_rate,
                language_code=language,
                enable_automatic_punctuation=True,
                model=self._model or "",
            ),
            interim_results=True,
        )

        def requests() -> Iterator[Any]:
            while (chunk := audio.get()) is not _END:
                assert isinstance(chunk, bytes)
                for start in range(0, len(chunk), MAX_CHUNK_BYTES):
                    yield speech_v1.StreamingRecognizeRequest(
                        audio_content=chunk[start : start + MAX_CHUNK_BYTES]
                    )

        finals: list[str] = []
        try:
            responses = self.client().streaming_recognize(config, requests(), timeout=self._timeout)
            for response in responses:
                for result in response.results:
                    if not result.alternatives:
                        continue
                    text = result.alternatives[0].transcript.strip()
                    if result.is_final:
                        finals.append(text)
                        on_result(" ".join(finals))
                    else:
                        on_result(" ".join([*finals, text]))
        except Exception as exc:
            from google.api_core import exceptions  # noqa: PLC0415

            if not isinstance(exc, exceptions.GoogleAPICallError):
                raise
            raise SpeechToTextError(
                f"Google speech recognition failed ({type(exc).__name__})",
                provider=self.name,
                category=_category(exc),
            ) from exc
        return " ".join(piece for piece in finals if piece)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class _GoogleStream(RecognitionStream):
    def __init__(
        self,
        owner: GoogleSpeechToText,
        sample_rate: int,
        language: str,
        on_partial: PartialHandler | None,
    ) -> None:
        self._owner = owner
        self._audio: queue.Queue[object] = queue.Queue()
        self._loop = asyncio.get_running_loop()
        self._on_partial = on_partial
        self._sample_rate = sample_rate
        self._audio_bytes = 0
        self._call = self._loop.run_in_executor(
            owner._executor, owner.run_stream, self._audio, sample_rate, language, self._result
        )
        self._closed = False

    def _result(self, text: str) -> None:
        # Called on the gRPC thread: hand the hypothesis to the event loop.
        if self._on_partial is not None and not self._closed:
            self._loop.call_soon_threadsafe(self._deliver, text)

    def _deliver(self, text: str) -> None:
        if self._on_partial is not None and not self._closed:
            self._on_partial(text)

    def feed(self, pcm: bytes) -> None:
        if not self._closed:
            self._audio_bytes += len(pcm)
            self._audio.put(pcm)

    async def finish(self) -> Transcript:
        started = time.perf_counter()
        self._audio.put(_END)
        text = await self._call
        self._closed = True
        return Transcript(
            text, None, time.perf_counter() - started, self._audio_bytes / 2 / self._sample_rate
        )

    async def aclose(self) -> None:
        self._closed = True
        self._audio.put(_END)
