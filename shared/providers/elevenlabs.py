"""ElevenLabs over its REST API: ``GET /v1/voices`` and text-to-speech with timestamps.

Voices carry ``labels`` (gender, age, accent, use_case, description) that map onto the
catalog's gender, age group, use cases and styles; ``is_legacy`` voices are kept but marked
deprecated, as ElevenLabs hides them by default. Synthesis asks for raw PCM
(``output_format=pcm_<rate>``) from ``/v1/text-to-speech/{voice}/with-timestamps``, whose
character ``alignment`` becomes word timings.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar
from urllib.parse import quote

from shared.audio.pcm import resample, scale_volume
from shared.domain.voices import VoiceProfile
from shared.providers._http import JsonHttpClient
from shared.providers.base import (
    ProviderCapabilities,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    WordTiming,
)
from shared.providers.labels import (
    age_group_from,
    gender_from,
    language_or_none,
    styles_from,
    use_cases_from,
)
from shared.providers.timing import words_from_characters

NAME = "elevenlabs"
PCM_RATES = (8_000, 16_000, 22_050, 24_000, 44_100, 48_000)
MIN_SPEED, MAX_SPEED = 0.7, 1.2
MAX_INPUT_CHARS = 10_000


class ElevenLabsProvider(TTSProvider):
    """ElevenLabs REST adapter; the API key travels in ``xi-api-key`` only."""

    name: ClassVar[str] = NAME

    def __init__(
        self, *, api_key: str, base_url: str, model_id: str, timeout: float = 30.0
    ) -> None:
        self._http = JsonHttpClient(
            provider=NAME,
            base_url=base_url,
            headers={"xi-api-key": api_key, "Accept": "application/json"},
            timeout=timeout,
        )
        self._model_id = model_id

    def __repr__(self) -> str:
        return f"ElevenLabsProvider(base_url={self._http.base_url!r}, model={self._model_id!r})"

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=False,
            timing="character",
            multi_speaker=False,
            streaming=True,
            cloning=True,
            native_formats=("mp3", "pcm", "ulaw", "opus"),
            max_input_chars=MAX_INPUT_CHARS,
            native_controls=frozenset({"speed"}),
            sample_rates=PCM_RATES,
        )

    def list_voices(self) -> list[VoiceProfile]:
        """Return every voice of the account, legacy ones marked deprecated."""
        body = self._http.get_json("/v1/voices", params={"show_legacy": "true"})
        if not isinstance(body, dict) or not isinstance(body.get("voices"), list):
            raise self._http.malformed("no voices list")
        return [self._profile(raw) for raw in body["voices"]]

    def _profile(self, raw: Any) -> VoiceProfile:
        if not isinstance(raw, dict) or not raw.get("voice_id") or not raw.get("name"):
            raise self._http.malformed("voice without voice_id or name")
        labels: dict[str, Any] = raw["labels"] if isinstance(raw.get("labels"), dict) else {}
        verified = [v for v in raw.get("verified_languages") or [] if isinstance(v, dict)]
        language = (
            language_or_none(verified[0].get("locale") or verified[0].get("language"))
            if verified
            else None
        ) or language_or_none(labels.get("language"))
        use_case = labels.get("use_case") or labels.get("use case")
        styles = [labels.get("description")] if labels.get("description") else []
        tags = [str(raw["category"])] if raw.get("category") else []
        if labels.get("accent"):
            tags.append(f"accent:{labels['accent']}")
        return VoiceProfile.model_validate(
            {
                "provider": NAME,
                "voice_id": str(raw["voice_id"]),
                "display_name": str(raw["name"])[:255],
                # ElevenLabs voices without a verified language are its English library.
                "language": language or "en",
                "gender": gender_from(labels.get("gender")),
                "age_group": age_group_from(labels.get("age")),
                "styles": styles_from(styles),
                "use_cases": use_cases_from([use_case]),
                "description": str(raw.get("description") or ""),
                "sample_audio_url": raw.get("preview_url") or None,
                "is_deprecated": bool(raw.get("is_legacy")),
                "tags": tuple(tags),
                "metadata": {
                    "labels": {str(k): str(v) for k, v in labels.items()},
                    "category": raw.get("category"),
                    "is_legacy": bool(raw.get("is_legacy")),
                    "languages": sorted(
                        {str(v.get("language")) for v in verified if v.get("language")}
                    ),
                    "language_source": "verified" if verified else "default",
                },
                "supports_multi_speaker": False,
            }
        )

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return the audio and word timings (from character alignment) of ``request``."""
        self.check_input(request)
        settings = request.settings
        native_rate = min(
            PCM_RATES,
            key=lambda rate: (rate < settings.sample_rate, abs(rate - settings.sample_rate)),
        )
        speed = min(MAX_SPEED, max(MIN_SPEED, settings.speed))
        body: dict[str, Any] = {"text": request.text, "model_id": self._model_id}
        if settings.speed != 1.0:
            body["voice_settings"] = {"speed": speed}
        response = self._http.request(
            "POST",
            f"/v1/text-to-speech/{quote(request.voice_id, safe='')}/with-timestamps",
            params={"output_format": f"pcm_{native_rate}"},
            json_body=body,
        )
        payload = self._http.parse_json(response)
        pcm, words = self._read(payload, request.text)
        unapplied: list[Any] = ["pitch"] if settings.pitch != 1.0 else []
        if speed != settings.speed:
            unapplied.append("speed")
        return SynthesisResult(
            pcm=scale_volume(resample(pcm, native_rate, settings.sample_rate), settings.volume),
            sample_rate=settings.sample_rate,
            words=tuple(words) if request.want_timings else (),
            unapplied=tuple(unapplied),
            provider=NAME,
            voice_id=request.voice_id,
        )

    def _read(self, payload: Any, text: str) -> tuple[bytes, list[WordTiming]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("audio_base64"), str):
            raise self._http.malformed("no audio_base64")
        try:
            pcm = base64.b64decode(payload["audio_base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._http.malformed("audio_base64 is not base64") from exc
        alignment = payload.get("alignment")
        if not isinstance(alignment, dict):
            return pcm, []
        try:
            words = words_from_characters(
                text,
                [str(c) for c in alignment["characters"]],
                [float(t) for t in alignment["character_start_times_seconds"]],
                [float(t) for t in alignment["character_end_times_seconds"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._http.malformed("alignment is inconsistent") from exc
        return pcm, words

    def close(self) -> None:
        self._http.close()
