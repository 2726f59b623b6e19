"""Any OpenAI-compatible speech server: ``POST /v1/audio/speech``, no timings.

OpenAI has no voice-list endpoint, so the voices come from configuration; each is
multilingual and the catalog lists it under the configured language. Synthesis asks for
``response_format=pcm`` (24 kHz 16-bit mono) and, for servers that answer a WAV file
anyway, reads the WAV header instead; ``stream_pcm`` reads the PCM as the server sends
it, resampled to the requested rate piece by piece.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import requests

from shared.audio.pcm import decode_audio, is_wav, resample, scale_volume
from shared.providers._http import JsonHttpClient
from shared.providers._stream import http_body, pcm_stream
from shared.providers.base import (
    ProviderCapabilities,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
)
from shared.providers.labels import language_or_none
from shared.providers.voices import VoiceProfile

NAME = "openai"
NATIVE_RATE = 24_000
MAX_INPUT_CHARS = 4_096


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
            provider=NAME, base_url=base_url, headers=headers, timeout=timeout
        )
        self._model = model
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
            native_controls=frozenset({"speed"}),
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
            unapplied=("pitch",) if settings.pitch != 1.0 else (),
            provider=NAME,
            voice_id=request.voice_id,
        )

    def streams(self, request: SynthesisRequest) -> bool:
        """Return True at the voice's own pitch (the API has none, and a stream cannot say it
        was left out, as ``synthesize`` does): ``response_format: "pcm"`` arrives as it is
        produced."""
        return request.settings.pitch == 1.0

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
        return {
            "model": self._model,
            "input": request.text,
            "voice": request.voice_id,
            "response_format": "pcm",
            "speed": request.settings.speed,
        }

    def close(self) -> None:
        self._http.close()
