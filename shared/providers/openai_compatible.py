"""Any OpenAI-compatible speech server: ``POST /v1/audio/speech``, no timings.

OpenAI has no voice-list endpoint, so the voices come from configuration; each is
multilingual and the catalog lists it under the configured language. Synthesis asks for
``response_format=pcm`` (24 kHz 16-bit mono) and, for servers that answer a WAV file
anyway, reads the WAV header instead; ``stream_pcm`` reads the PCM as the server sends
it, resampled to the requested rate piece by piece. ``gpt-4o-mini-tts`` takes no ``speed``
(OpenAI: "Does not work with gpt-4o-mini-tts"), so with it a speed is left out and reported
unapplied. A 429 whose ``error.code`` or ``error.type`` names an exhausted quota or spend
limit is permanent: no wait cures it, unlike a rate limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import requests

from shared.audio.pcm import decode_audio, is_wav, resample, scale_volume
from shared.providers._http import JsonHttpClient
from shared.providers._stream import http_body, pcm_stream
from shared.providers.base import (
    Control,
    ErrorCategory,
    ProviderCapabilities,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    unapplied_controls,
)
from shared.providers.labels import language_or_none
from shared.providers.voices import VoiceProfile

NAME = "openai"
NATIVE_RATE = 24_000
MAX_INPUT_CHARS = 4_096
# Models that ignore ``speed`` (OpenAI's API reference, createSpeech), snapshots included.
NO_SPEED_MODELS = ("gpt-4o-mini-tts",)
# 429s that mean the account's credit or spend limit is used up, not a rate limit.
QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
    }
)


class OpenAICompatibleProvider(TTSProvider):
    """OpenAI-compatible REST adapter; the key travels as a bearer token only."""

    name: ClassVar[str] = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str,
        model: str,
        voices: list[str],
        language: str,
        timeout: float = 60.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = JsonHttpClient(
            provider=NAME,
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            error_category=error_category,
        )
        self._model = model
        self._native: tuple[Control, ...] = (
            ("volume",) if model.startswith(NO_SPEED_MODELS) else ("speed", "volume")
        )
        self._voices = voices
        self._language = language_or_none(language) or "en"

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider(base_url={self._http.base_url!r}, model={self._model!r})"

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=False,
            timing="none",
            multi_speaker=False,
            streaming=True,
            cloning=False,
            native_formats=("mp3", "opus", "aac", "flac", "wav", "pcm"),
            max_input_chars=MAX_INPUT_CHARS,
            native_controls=frozenset(self._native) - {"volume"},
            sample_rates=(NATIVE_RATE,),
            pronunciation="alias",
        )

    def list_voices(self) -> list[VoiceProfile]:
        """Return the configured voices (the API has no voice list)."""
        return [
            VoiceProfile(
                provider=NAME,
                voice_id=voice,
                display_name=voice.capitalize(),
                language=self._language,
                description=f"OpenAI-compatible voice {voice} ({self._model})",
                tags=("multilingual",),
                metadata={"model": self._model, "languageSource": "configuration"},
            )
            for voice in self._voices
        ]

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return the audio of ``request``; the API gives no word timings."""
        self.check_input(request)
        response = self._http.request("POST", "/v1/audio/speech", json_body=self._body(request))
        return self._result(response.content, response, request)

    def _result(
        self, audio: bytes, response: requests.Response, request: SynthesisRequest
    ) -> SynthesisResult:
        settings = request.settings
        if is_wav(audio):
            try:
                pcm, rate = decode_audio(audio)
            except ValueError as exc:
                raise self._http.malformed("unreadable WAV audio") from exc
        elif response.headers.get("Content-Type", "").startswith("application/json"):
            raise self._http.malformed("JSON instead of audio")
        else:
            pcm, rate = audio, NATIVE_RATE
        if len(pcm) % 2:
            raise self._http.malformed("audio is not 16-bit PCM")
        return SynthesisResult(
            pcm=scale_volume(resample(pcm, rate, settings.sample_rate), settings.volume),
            sample_rate=settings.sample_rate,
            unapplied=unapplied_controls(settings, self._native),
            provider=NAME,
            voice_id=request.voice_id,
        )

    def streams(self, request: SynthesisRequest) -> bool:
        """Return True when every setting applies (the API has no pitch, a model may take no
        speed, and a stream cannot say one was left out, as ``synthesize`` does):
        ``response_format: "pcm"`` arrives as it is produced."""
        return not unapplied_controls(request.settings, self._native)

    def stream_pcm(self, request: SynthesisRequest) -> Iterator[bytes]:
        """Yield the audio of ``request`` as the server sends it (24 kHz PCM resampled to
        the requested rate as it comes)."""
        self.check_input(request)
        settings = request.settings
        response = self._http.request(
            "POST", "/v1/audio/speech", json_body=self._body(request), stream=True
        )
        if response.headers.get("Content-Type", "").startswith("application/json"):
            response.close()
            raise self._http.malformed("JSON instead of audio")
        if response.headers.get("Content-Type", "").startswith(("audio/wav", "audio/x-wav")):
            # A server that answers a WAV file anyway: read it whole.
            return iter([self._result(response.content, response, request).pcm])
        return pcm_stream(
            http_body(response, NAME),
            from_rate=NATIVE_RATE,
            to_rate=settings.sample_rate,
            volume=settings.volume,
            malformed=self._http.malformed,
        )

    def _body(self, request: SynthesisRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "input": request.text,
            "voice": request.voice_id,
            "response_format": "pcm",
        }
        if "speed" in self._native:
            body["speed"] = request.settings.speed
        return body

    def close(self) -> None:
        self._http.close()


def error_category(status: int, body: Any) -> ErrorCategory | None:
    """Return PERMANENT for a 429 that reports an exhausted quota or spend limit, else None
    (``{"error": {"type": "insufficient_quota", "code": ...}}``)."""
    error = body.get("error") if isinstance(body, dict) else None
    if status != 429 or not isinstance(error, dict):
        return None
    reasons = (error.get("type"), error.get("code"))
    if any(isinstance(reason, str) and reason in QUOTA_CODES for reason in reasons):
        return ErrorCategory.PERMANENT
    return None
