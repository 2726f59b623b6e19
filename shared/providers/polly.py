"""Amazon Polly through boto3: ``DescribeVoices`` and ``SynthesizeSpeech`` with speech marks.

Every request is SSML (plain text is escaped into ``<speak><prosody>``), so speed, pitch
and volume apply and word speech marks work with any input. Word timings take a second
``SynthesizeSpeech`` call with ``OutputFormat=json`` and ``SpeechMarkTypes=["word"]``: JSON
lines whose ``start``/``end`` are UTF-8 byte offsets into the SSML sent, mapped back here to
character offsets of the caller's text. Audio is 16 kHz (or 8 kHz) PCM, resampled to the
rate asked for. boto3's own retries are off: the category of each error decides retries.
A request holds at most 3,000 billed characters (the text, SSML tags not counted) in at most
6,000 characters in all (Polly's ``TextLengthExceededException``); longer text is refused
before it is sent, and the capabilities say 3,000 so callers cut text into pieces that fit.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from shared.audio.pcm import resample
from shared.audio.timing import WordTiming, utf8_byte_to_char_offsets
from shared.errors import InvalidRequestError
from shared.providers._http import retry_after_seconds
from shared.providers.base import (
    ErrorCategory,
    ProviderCapabilities,
    ProviderError,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    provider_error,
    unapplied_controls,
)
from shared.providers.labels import gender_from, language_or_none
from shared.providers.ssml import pronounced_pieces, validate_ssml
from shared.providers.voices import VoiceProfile

NAME = "polly"
PCM_RATES = (8_000, 16_000)
MAX_BILLED_CHARS = 3_000  # Polly's limit on billed characters (the text) per request
MAX_TOTAL_CHARS = 6_000  # ... and on characters in all, SSML tags included
_ENGINE_ORDER = ("neural", "generative", "long-form", "standard")
_THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException"}
_AUTH_CODES = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "AccessDenied",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "MissingAuthenticationTokenException",
}


class PollyProvider(TTSProvider):
    """Amazon Polly adapter; credentials go to boto3 and nowhere else."""

    name: ClassVar[str] = NAME

    def __init__(
        self,
        *,
        region: str,
        endpoint: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        preferred_engine: str = "neural",
        timeout: float = 30.0,
        client: Any = None,
    ) -> None:
        self._region = region
        self._endpoint = endpoint
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._preferred = preferred_engine
        self._timeout = timeout
        self._client = client
        self._engines: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PollyProvider(region={self._region!r}, endpoint={self._endpoint!r})"

    def _polly(self) -> Any:
        with self._lock:
            if self._client is None:
                # boto3 ships no type hints; cold starts load only the clients they use.
                import boto3  # type: ignore[import-untyped]  # noqa: PLC0415
                from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

                self._client = boto3.client(
                    "polly",
                    region_name=self._region,
                    endpoint_url=self._endpoint,
                    aws_access_key_id=self._access_key_id,
                    aws_secret_access_key=self._secret_access_key,
                    config=Config(
                        retries={"total_max_attempts": 1},
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                    ),
                )
            return self._client

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=True,
            timing="word",
            multi_speaker=False,
            streaming=False,
            cloning=False,
            native_formats=("pcm", "mp3", "ogg_vorbis"),
            max_input_chars=MAX_BILLED_CHARS,
            native_controls=frozenset({"speed", "pitch", "volume"}),
            sample_rates=PCM_RATES,
            pronunciation="ssml",
        )

    def list_voices(self) -> list[VoiceProfile]:
        """Return every Polly voice, following ``NextToken`` to the last page."""
        raw_voices: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {"IncludeAdditionalLanguageCodes": True}
            if token:
                arguments["NextToken"] = token
            page = self._call(partial(_describe, arguments=arguments))
            raw_voices.extend(page.get("Voices") or [])
            token = page.get("NextToken")
            if not token:
                break
        voices = [self._profile(raw) for raw in raw_voices]
        with self._lock:
            self._engines.update(
                {str(raw["Id"]): list(raw.get("SupportedEngines") or []) for raw in raw_voices}
            )
        return voices

    @staticmethod
    def _profile(raw: dict[str, Any]) -> VoiceProfile:
        language = language_or_none(raw.get("LanguageCode"))
        if not raw.get("Id") or language is None:
            raise provider_error(NAME, ErrorCategory.PERMANENT, "polly listed a malformed voice")
        engines = [str(engine) for engine in raw.get("SupportedEngines") or []]
        additional = [str(code) for code in raw.get("AdditionalLanguageCodes") or []]
        return VoiceProfile.model_validate(
            {
                "provider": NAME,
                "voice_id": str(raw["Id"]),
                "display_name": str(raw.get("Name") or raw["Id"]),
                "language": language,
                "gender": gender_from(raw.get("Gender")),
                "description": str(raw.get("LanguageName") or ""),
                "tags": tuple(engines) + (("multilingual",) if additional else ()),
                "metadata": {
                    "languageName": raw.get("LanguageName"),
                    "supportedEngines": engines,
                    "additionalLanguageCodes": additional,
                },
                "supports_multi_speaker": False,
            }
        )

    def _engine_for(self, voice_id: str) -> str:
        with self._lock:
            known = voice_id in self._engines
        if not known:
            self.list_voices()
        with self._lock:
            engines = self._engines.get(voice_id)
        if engines is None:
            raise provider_error(NAME, ErrorCategory.PERMANENT, f"Unknown Polly voice {voice_id!r}")
        ordered = [self._preferred, *_ENGINE_ORDER]
        return next((engine for engine in ordered if engine in engines), "standard")

    def check_input(self, request: SynthesisRequest) -> None:
        """Raise a permanent ProviderError for what Polly would refuse; a caller's SSML is
        measured as Polly measures it: its text billed, its whole length in all."""
        if not request.ssml:
            super().check_input(request)
            return
        _check_length(_billed_chars(request.text), len(request.text))

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return 16-bit PCM at the requested rate, with word timings from speech marks."""
        self.check_input(request)
        settings = request.settings
        engine = self._engine_for(request.voice_id)
        native = ["speed", "volume"] if engine != "standard" else ["speed", "pitch", "volume"]
        if request.ssml:
            ssml, byte_to_char = request.text, utf8_byte_to_char_offsets(request.text)
            unapplied = tuple(settings.changed_controls())
        else:
            ssml, byte_to_char = _prosody_ssml(request, pitch=engine == "standard")
            unapplied = unapplied_controls(settings, native)  # type: ignore[arg-type]
            _check_length(len(request.text), len(ssml))
        rate = 8_000 if settings.sample_rate <= 8_000 else 16_000
        common = {"Text": ssml, "TextType": "ssml", "VoiceId": request.voice_id, "Engine": engine}
        audio = self._call(
            lambda client: client.synthesize_speech(
                **common, OutputFormat="pcm", SampleRate=str(rate)
            )
        )
        pcm = _read_stream(audio)
        if len(pcm) % 2:
            raise provider_error(NAME, ErrorCategory.PERMANENT, "polly sent odd-length PCM")
        words: list[WordTiming] = []
        if request.want_timings:
            marks = self._call(
                lambda client: client.synthesize_speech(
                    **common, OutputFormat="json", SpeechMarkTypes=["word"]
                )
            )
            words = words_from_speech_marks(
                _read_stream(marks), request.text, byte_to_char, len(pcm) / 2 / rate
            )
        return SynthesisResult(
            pcm=resample(pcm, rate, settings.sample_rate),
            sample_rate=settings.sample_rate,
            words=tuple(words),
            unapplied=unapplied,
            provider=NAME,
            voice_id=request.voice_id,
        )

    def _call(self, action: Callable[[Any], Any]) -> Any:
        # botocore ships no type hints; imported on first call for cold starts.
        from botocore import exceptions as boto_errors  # type: ignore[import-untyped]  # noqa: PLC0415
        from botocore.parsers import ResponseParserError  # type: ignore[import-untyped]  # noqa: PLC0415

        client = self._polly()
        try:
            return action(client)
        except boto_errors.ClientError as exc:
            raise _categorised(exc.response) from exc
        except (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError) as exc:
            raise provider_error(NAME, ErrorCategory.AUTH, "polly has no credentials") from exc
        except (boto_errors.HTTPClientError, boto_errors.EndpointConnectionError) as exc:
            raise provider_error(NAME, ErrorCategory.TRANSIENT, "polly is unreachable") from exc
        except (ResponseParserError, boto_errors.ParamValidationError) as exc:
            raise provider_error(NAME, ErrorCategory.PERMANENT, "polly exchange malformed") from exc

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _billed_chars(ssml: str) -> int:
    # Polly bills an SSML document's text, not its tags; SSML that does not parse is left
    # for Polly to refuse (InvalidSsmlException), counted whole.
    try:
        return len("".join(validate_ssml(ssml).itertext()))
    except InvalidRequestError:
        return len(ssml)


def _check_length(billed: int, total: int) -> None:
    if billed > MAX_BILLED_CHARS or total > MAX_TOTAL_CHARS:
        raise provider_error(
            NAME,
            ErrorCategory.PERMANENT,
            f"Text exceeds Polly's {MAX_BILLED_CHARS} characters"
            f" ({MAX_TOTAL_CHARS} with SSML tags) per request",
        )


def _describe(client: Any, *, arguments: dict[str, Any]) -> Any:
    return client.describe_voices(**arguments)


def _read_stream(response: Any) -> bytes:
    stream = response.get("AudioStream") if isinstance(response, dict) else None
    if stream is None:
        raise provider_error(NAME, ErrorCategory.PERMANENT, "polly sent no AudioStream")
    try:
        return bytes(stream.read())
    finally:
        stream.close()


def _categorised(response: dict[str, Any]) -> ProviderError:
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    code = str(error.get("Code") or "")
    status = int(meta.get("HTTPStatusCode") or 0)
    if code in _THROTTLED or status == 429:
        category = ErrorCategory.RATE_LIMITED
    elif code in _AUTH_CODES or status in (401, 403):
        category = ErrorCategory.AUTH
    elif status >= 500 or code == "ServiceFailureException":
        category = ErrorCategory.TRANSIENT
    else:
        category = ErrorCategory.PERMANENT
    headers = meta.get("HTTPHeaders") or {}
    retry_after = retry_after_seconds(headers.get("retry-after")) if category.retryable else None
    return provider_error(
        NAME,
        category,
        f"polly answered {code or status}",
        retry_after=retry_after,
        status=status or None,
    )


def _prosody_ssml(request: SynthesisRequest, *, pitch: bool) -> tuple[str, list[int]]:
    """Return the SSML for plain text (pronunciation rules as ``<phoneme alphabet="ipa">``)
    and its byte offset -> text char offset table."""
    settings = request.settings
    attributes = [f'rate="{round(min(2.0, max(0.2, settings.speed)) * 100)}%"']
    if settings.volume != 1.0:
        decibels = -40.0 if settings.volume == 0 else 20 * math.log10(settings.volume)
        attributes.append(f'volume="{max(-40.0, min(6.0, decibels)):+.1f}dB"')
    if pitch and settings.pitch != 1.0:
        attributes.append(f'pitch="{max(-33, min(50, round((settings.pitch - 1) * 100))):+d}%"')
    head = f"<speak><prosody {' '.join(attributes)}>".encode()
    table: list[int] = [0] * len(head)
    body = bytearray(head)
    for piece, index in pronounced_pieces(request.text, request.pronunciations):
        encoded = piece.encode()
        table.extend([index] * len(encoded))
        body.extend(encoded)
    tail = b"</prosody></speak>"
    table.extend([len(request.text)] * (len(tail) + 1))
    body.extend(tail)
    return body.decode(), table


def words_from_speech_marks(
    data: bytes, text: str, byte_to_char: list[int], total_seconds: float
) -> list[WordTiming]:
    """Return word timings from Polly's JSON-lines word speech marks.

    ``byte_to_char`` maps each byte offset of the SSML sent to a character of ``text``.

    Raises:
        ProviderError: (permanent) the marks are not Polly's JSON lines.
    """
    marks: list[dict[str, Any]] = []
    try:
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                mark = json.loads(line)
                if mark.get("type") == "word":
                    marks.append(mark)
        starts = [float(mark["time"]) / 1000 for mark in marks]
        spans = [(int(mark["start"]), int(mark["end"])) for mark in marks]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise provider_error(NAME, ErrorCategory.PERMANENT, "polly sent malformed marks") from exc
    words: list[WordTiming] = []
    last = len(byte_to_char) - 1
    for index, (start_byte, end_byte) in enumerate(spans):
        char_start = byte_to_char[min(max(start_byte, 0), last)]
        char_end = byte_to_char[min(max(end_byte, 0), last)]
        if char_end <= char_start:
            char_end = min(len(text), char_start + 1)
        end = starts[index + 1] if index + 1 < len(starts) else total_seconds
        word = text[char_start:char_end] or str(marks[index].get("value", ""))
        words.append(WordTiming(word, starts[index], max(starts[index], end), char_start, char_end))
    return words
