"""Google Cloud Text-to-Speech through ``google-cloud-texttospeech`` (v1beta1 for timepoints).

``ListVoices`` gives each voice's language codes, SSML gender and natural sample rate; the
voice family in its name (``en-US-News-K``, ``en-US-Studio-O``) is kept as a tag, and the
families Google documents for one purpose (News, Studio, Casual) give that use case.
``SynthesizeSpeech`` gets plain text as SSML with a ``<mark>`` before each word and
``enable_time_pointing=[SSML_MARK]``, so the returned timepoints become word timings;
a caller's own SSML is passed through without timings. Google takes 5,000 bytes of input
per request, marks included (about 20 bytes a word), so plain text is taken 400 characters
at a time (the capabilities say so, and callers cut text to fit) and SSML by its bytes.
Audio is LINEAR16 at the requested rate. ``StreamingSynthesize`` (``stream_pcm``) serves
the voices that support it (Chirp 3 HD, Journey) for plain text at the voice's own pitch:
raw PCM as Google produces it.
Production uses gRPC with application default credentials; tests point the REST transport
(or a gRPC client on an insecure channel) at local fakes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import requests

from shared.audio.pcm import decode_audio, is_wav
from shared.audio.timing import tokenize_words, words_from_marks
from shared.providers._http import retry_after_seconds
from shared.providers._stream import pcm_stream
from shared.providers.base import (
    AudioSettings,
    ErrorCategory,
    Pronunciation,
    ProviderCapabilities,
    ProviderError,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    provider_error,
)
from shared.providers.labels import gender_from, language_or_none, use_cases_from
from shared.providers.ssml import google_multispeaker_markup, pronounced_pieces
from shared.providers.voices import DialogueTurn, VoiceProfile

NAME = "gcp"
MAX_INPUT_BYTES = 5_000
# Plain text whose SSML, with a mark before every word, always fits in MAX_INPUT_BYTES
# (the worst case, one-letter two-byte words, comes to about 4,300 bytes).
MAX_MARKED_CHARS = 400
# The speakers of a Studio MultiSpeaker voice, handed out in order of appearance.
SPEAKER_LETTERS = ("R", "S", "T", "U")
_FAMILY_USE_CASES = {"news": "news", "studio": "narration", "casual": "conversation"}
_GENDERS = {1: "male", 2: "female", 3: "neutral"}
# The voice families StreamingSynthesize accepts (en-US-Chirp3-HD-Charon, en-US-Journey-D).
STREAMING_FAMILIES = ("-Chirp3-HD-", "-Journey-")


class GoogleTTSProvider(TTSProvider):
    """Google Cloud TTS adapter; the client is built on first use."""

    name: ClassVar[str] = NAME

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        transport: str = "grpc",
        credentials: Any = None,
        timeout: float = 30.0,
        client: Any = None,
    ) -> None:
        self._endpoint = endpoint
        self._transport = transport
        self._credentials = credentials
        self._timeout = timeout
        self._client: Any = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GoogleTTSProvider(endpoint={self._endpoint!r}, transport={self._transport!r})"

    def _tts(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import texttospeech_v1beta1  # noqa: PLC0415 - cold starts

                options = {"api_endpoint": self._endpoint} if self._endpoint else None
                self._client = texttospeech_v1beta1.TextToSpeechClient(
                    credentials=self._credentials,
                    transport=self._transport,
                    client_options=options,
                )
            return self._client

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=True,
            timing="word",
            multi_speaker=True,
            streaming=True,
            cloning=False,
            native_formats=("pcm", "wav", "mp3", "ogg_opus", "mulaw", "alaw"),
            max_input_chars=MAX_MARKED_CHARS,
            native_controls=frozenset({"speed", "pitch", "volume"}),
            sample_rates=(8_000, 16_000, 22_050, 24_000, 44_100, 48_000),
            pronunciation="ssml",
        )

    def list_voices(self) -> list[VoiceProfile]:
        """Return every voice Google lists."""
        response = self._call(
            lambda client: client.list_voices(request={}, retry=None, timeout=self._timeout)
        )
        return [self._profile(voice) for voice in response.voices]

    def _profile(self, voice: Any) -> VoiceProfile:
        codes = [str(code) for code in voice.language_codes]
        language = language_or_none(codes[0] if codes else None)
        if not voice.name or language is None:
            raise provider_error(NAME, ErrorCategory.PERMANENT, "gcp listed a voice without name")
        parts = str(voice.name).split("-")
        family = parts[2] if len(parts) > 3 else None
        multi_speaker = "multispeaker" in str(voice.name).lower()
        tags = [family] if family else []
        return VoiceProfile.model_validate(
            {
                "provider": NAME,
                "voice_id": str(voice.name),
                "display_name": str(voice.name),
                "language": language,
                "gender": gender_from(_GENDERS.get(int(voice.ssml_gender))),
                "use_cases": use_cases_from(
                    [_FAMILY_USE_CASES.get(family.lower()) if family else None]
                ),
                "tags": tuple(tags),
                "metadata": {
                    "languageCodes": codes,
                    "naturalSampleRateHertz": int(voice.natural_sample_rate_hertz),
                    "family": family,
                },
                "supports_multi_speaker": multi_speaker,
            }
        )

    def check_input(self, request: SynthesisRequest) -> None:
        """Raise a permanent ProviderError for what Google would refuse: plain text beyond
        ``MAX_MARKED_CHARS``, a caller's SSML beyond ``MAX_INPUT_BYTES``."""
        if not request.ssml:
            super().check_input(request)
        elif len(request.text.encode()) > MAX_INPUT_BYTES:
            raise provider_error(
                NAME, ErrorCategory.PERMANENT, f"SSML exceeds gcp's {MAX_INPUT_BYTES} bytes"
            )

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return LINEAR16 audio at the requested rate, word timings from SSML marks."""
        self.check_input(request)
        from google.cloud import texttospeech_v1beta1 as tts  # noqa: PLC0415 - cold starts

        tokens = [] if request.ssml else tokenize_words(request.text)
        ssml = (
            request.text
            if request.ssml
            else _marked_ssml(request.text, tokens, request.pronunciations)
        )
        if len(ssml.encode()) > MAX_INPUT_BYTES:
            raise provider_error(
                NAME, ErrorCategory.PERMANENT, f"Input exceeds {MAX_INPUT_BYTES} bytes of SSML"
            )
        language = request.language or _language_of(request.voice_id)
        response, pcm, rate = self._synthesize(
            tts.SynthesisInput(ssml=ssml),
            voice_id=request.voice_id,
            language=language,
            settings=request.settings,
            marks=bool(tokens) and request.want_timings,
        )
        total = len(pcm) / 2 / rate
        marks = {str(point.mark_name): float(point.time_seconds) for point in response.timepoints}
        marked = [
            (token, marks[f"w{index}"])
            for index, token in enumerate(tokens)
            if f"w{index}" in marks
        ]
        words = words_from_marks([t for t, _ in marked], [s for _, s in marked], total)
        return SynthesisResult(
            pcm=pcm,
            sample_rate=rate,
            words=tuple(words) if request.want_timings else (),
            provider=NAME,
            voice_id=request.voice_id,
        )

    def streams(self, request: SynthesisRequest) -> bool:
        """Return True for plain text in a Chirp 3 HD or Journey voice at the voice's own
        pitch: only those voices stream, and a stream takes neither SSML (so no
        pronunciation rules) nor a pitch."""
        return (
            _streaming_voice(request.voice_id)
            and not request.ssml
            and not request.pronunciations
            and request.settings.pitch == 1.0
        )

    def stream_pcm(self, request: SynthesisRequest) -> Iterator[bytes]:
        """Yield the audio of ``request`` from ``StreamingSynthesize`` as Google sends it
        (raw PCM at the requested rate; the volume is applied to the samples here).

        Raises:
            ProviderError: the request cannot stream (permanent), or Google failed.
        """
        self.check_input(request)
        if not self.streams(request):
            raise provider_error(
                NAME,
                ErrorCategory.PERMANENT,
                "gcp streams plain text in Chirp 3 HD and Journey voices at their own pitch",
            )
        from google.cloud import texttospeech_v1beta1 as tts  # noqa: PLC0415 - cold starts

        settings = request.settings
        config = tts.StreamingSynthesizeConfig(
            voice=tts.VoiceSelectionParams(
                language_code=request.language or _language_of(request.voice_id),
                name=request.voice_id,
            ),
            streaming_audio_config=tts.StreamingAudioConfig(
                audio_encoding=tts.AudioEncoding.PCM,
                sample_rate_hertz=settings.sample_rate,
                speaking_rate=settings.speed,
            ),
        )
        # The first message configures the stream; the text follows (here all at once).
        messages = [
            tts.StreamingSynthesizeRequest(streaming_config=config),
            tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text=request.text)),
        ]
        responses = self._call(
            lambda client: client.streaming_synthesize(
                requests=iter(messages), retry=None, timeout=self._timeout
            )
        )
        return pcm_stream(
            self._audio_of(iter(responses)),
            from_rate=settings.sample_rate,
            to_rate=settings.sample_rate,
            volume=settings.volume,
            malformed=lambda what: provider_error(
                NAME, ErrorCategory.PERMANENT, f"gcp sent a malformed reply: {what}"
            ),
        )

    def _audio_of(self, responses: Iterator[Any]) -> Iterator[bytes]:
        # A stream's errors arrive while it is read: each read is categorised like a call.
        while (response := self._call(lambda _client: next(responses, None))) is not None:
            yield bytes(response.audio_content)

    def dialogue_refusal(self, turns: Sequence[DialogueTurn]) -> str | None:
        """Return why Google cannot speak these turns in one call, or None when it can."""
        voices = {turn.voice for turn in turns}
        if len(voices) != 1 or "multispeaker" not in next(iter(voices)).lower():
            return "Google speaks a dialogue with one MultiSpeaker voice for every turn"
        if len({turn.speaker for turn in turns}) > len(SPEAKER_LETTERS):
            return f"Google's MultiSpeaker voices hold at most {len(SPEAKER_LETTERS)} speakers"
        return None

    def synthesize_dialogue(
        self, turns: Sequence[DialogueTurn], settings: AudioSettings
    ) -> SynthesisResult:
        """Return the dialogue spoken by one MultiSpeaker voice (``MultiSpeakerMarkup``).

        Each distinct speaker gets one of the voice's speakers (R, S, T, U) in order of
        appearance. Google reports no word events for markup, so ``words`` is empty.
        """
        refusal = self.dialogue_refusal(turns)
        if refusal is not None:
            raise provider_error(NAME, ErrorCategory.PERMANENT, refusal)
        from google.cloud import texttospeech_v1beta1 as tts  # noqa: PLC0415 - cold starts

        markup = google_multispeaker_markup(turns, SPEAKER_LETTERS)
        voice_id = turns[0].voice
        _, pcm, rate = self._synthesize(
            tts.SynthesisInput(multi_speaker_markup=tts.MultiSpeakerMarkup(markup)),
            voice_id=voice_id,
            language=_language_of(voice_id),
            settings=settings,
            marks=False,
        )
        return SynthesisResult(pcm=pcm, sample_rate=rate, provider=NAME, voice_id=voice_id)

    def _synthesize(
        self,
        synthesis_input: Any,
        *,
        voice_id: str,
        language: str,
        settings: AudioSettings,
        marks: bool,
    ) -> tuple[Any, bytes, int]:
        from google.cloud import texttospeech_v1beta1 as tts  # noqa: PLC0415 - cold starts

        synthesis = tts.SynthesizeSpeechRequest(
            input=synthesis_input,
            voice=tts.VoiceSelectionParams(language_code=language, name=voice_id),
            audio_config=tts.AudioConfig(
                audio_encoding=tts.AudioEncoding.LINEAR16,
                sample_rate_hertz=settings.sample_rate,
                speaking_rate=settings.speed,
                pitch=max(-20.0, min(20.0, 12 * math.log2(settings.pitch))),
                volume_gain_db=(
                    -96.0
                    if settings.volume == 0
                    else max(-96.0, min(16.0, 20 * math.log10(settings.volume)))
                ),
            ),
            enable_time_pointing=(
                [tts.SynthesizeSpeechRequest.TimepointType.SSML_MARK] if marks else []
            ),
        )
        response = self._call(
            lambda client: client.synthesize_speech(
                request=synthesis, retry=None, timeout=self._timeout
            )
        )
        audio = bytes(response.audio_content)
        pcm, rate = audio, settings.sample_rate
        if is_wav(audio):
            try:
                pcm, rate = decode_audio(audio)
            except ValueError as exc:
                raise provider_error(
                    NAME, ErrorCategory.PERMANENT, "gcp sent unreadable audio"
                ) from exc
        if rate != settings.sample_rate or len(pcm) % 2:
            raise provider_error(NAME, ErrorCategory.PERMANENT, "gcp sent audio of another shape")
        return response, pcm, rate

    def _call(self, action: Any) -> Any:
        from google.api_core import exceptions as google_errors  # noqa: PLC0415 - cold starts
        from google.auth import exceptions as auth_errors  # noqa: PLC0415 - see above
        from google.protobuf.json_format import ParseError  # noqa: PLC0415 - see above

        client = self._tts()
        try:
            return action(client)
        except google_errors.GoogleAPICallError as exc:
            raise _categorised(exc) from exc
        except google_errors.RetryError as exc:
            raise provider_error(NAME, ErrorCategory.TRANSIENT, "gcp kept failing") from exc
        except (requests.RequestException, auth_errors.TransportError) as exc:
            raise provider_error(NAME, ErrorCategory.TRANSIENT, "gcp is unreachable") from exc
        except auth_errors.GoogleAuthError as exc:
            # A 401 makes the transport refresh the credentials; failing that lands here.
            raise provider_error(NAME, ErrorCategory.AUTH, "gcp refused the credentials") from exc
        except (ParseError, ValueError, TypeError, KeyError) as exc:
            # The REST transport raises these for a body that is not the API's JSON.
            raise provider_error(
                NAME, ErrorCategory.PERMANENT, "gcp sent a malformed reply"
            ) from exc

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.transport.close()
                self._client = None


def _marked_ssml(text: str, tokens: list[Any], pronunciations: Sequence[Pronunciation]) -> str:
    # A mark before each word; pronunciation rules as <phoneme alphabet="ipa"> around the
    # words they apply to, so the marks (and the timings) stay on the user's words.
    body = "".join(piece for piece, _ in pronounced_pieces(text, pronunciations, tokens))
    return f"<speak>{body}</speak>"


def _categorised(exc: Any) -> ProviderError:
    status = int(getattr(exc, "code", 0) or 0)
    grpc_status = getattr(exc, "grpc_status_code", None)
    grpc_name = getattr(grpc_status, "name", "") if grpc_status is not None else ""
    if status in (401, 403) or grpc_name in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        category = ErrorCategory.AUTH
    elif status == 429 or grpc_name == "RESOURCE_EXHAUSTED":
        category = ErrorCategory.RATE_LIMITED
    elif (
        status >= 500
        or status == 408
        or grpc_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL")
    ):
        category = ErrorCategory.TRANSIENT
    else:
        category = ErrorCategory.PERMANENT
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    retry_after = retry_after_seconds(headers.get("Retry-After")) if category.retryable else None
    return provider_error(
        NAME,
        category,
        f"gcp answered {status or grpc_name or 'an error'}",
        retry_after=retry_after,
        status=status or None,
    )


def _streaming_voice(voice_id: str) -> bool:
    """Return whether a Google voice supports StreamingSynthesize (Chirp 3 HD, Journey)."""
    return any(family in voice_id for family in STREAMING_FAMILIES)


def _language_of(voice_id: str) -> str:
    """Return the language code a Google voice name starts with (``en-US-Studio-O``)."""
    return "-".join(voice_id.split("-")[:2])
