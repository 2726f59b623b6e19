"""Azure AI Speech over REST: the regional voices list and SSML synthesis.

``GET /cognitiveservices/voices/list`` gives each voice's locale, gender, ``StyleList``
(speaking styles), ``VoiceTag`` (``TailoredScenarios`` become use cases,
``VoicePersonalities`` tags, ``AgeGroups`` the age group when present) and ``Status``.
``POST /cognitiveservices/v1`` takes SSML and answers raw 24 kHz PCM; plain text is wrapped
in ``<speak><voice><prosody>`` so speed, pitch and volume apply (pronunciation rules as
``<phoneme alphabet="ipa">`` inside). The REST API gives no
word boundaries (only the Speech SDK does), so results carry no timings. One SSML document
may hold several ``<voice>`` elements: Azure synthesizes dialogue natively.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar
from xml.sax.saxutils import quoteattr

from shared.audio.pcm import resample
from shared.providers._http import JsonHttpClient
from shared.providers.base import (
    ProviderCapabilities,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
)
from shared.providers.labels import (
    age_group_from,
    gender_from,
    language_or_none,
    styles_from,
    use_cases_from,
)
from shared.providers.ssml import pronounced_pieces
from shared.providers.voices import VoiceProfile

NAME = "azure"
NATIVE_RATE = 24_000
OUTPUT_FORMAT = "raw-24khz-16bit-mono-pcm"
MAX_INPUT_CHARS = 64_000  # characters of SSML per request (REST limit: 10 min of audio)
_RETIRED = {"deprecated", "retired", "retiring"}


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item) for item in value if str(item).strip()]
    return []


class AzureSpeechProvider(TTSProvider):
    """Azure Speech REST adapter; the key travels in ``Ocp-Apim-Subscription-Key`` only."""

    name: ClassVar[str] = NAME

    def __init__(self, *, key: str, base_url: str, timeout: float = 30.0) -> None:
        self._http = JsonHttpClient(
            provider=NAME,
            base_url=base_url,
            headers={"Ocp-Apim-Subscription-Key": key, "User-Agent": "voice-platform"},
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"AzureSpeechProvider(base_url={self._http.base_url!r})"

    @staticmethod
    def regional_url(region: str) -> str:
        """Return the text-to-speech host of an Azure region."""
        return f"https://{region}.tts.speech.microsoft.com"

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=True,
            timing="none",
            multi_speaker=True,
            streaming=False,
            cloning=False,
            native_formats=("pcm", "wav", "mp3", "ogg_opus", "webm"),
            max_input_chars=MAX_INPUT_CHARS,
            native_controls=frozenset({"speed", "pitch", "volume"}),
            sample_rates=(8_000, 16_000, 22_050, 24_000, 44_100, 48_000),
            pronunciation="ssml",
        )

    def list_voices(self) -> list[VoiceProfile]:
        """Return the region's voices; voices Azure marks retired are deprecated."""
        body = self._http.get_json("/cognitiveservices/voices/list")
        if not isinstance(body, list):
            raise self._http.malformed("voices list is not a JSON array")
        return [self._profile(raw) for raw in body]

    def _profile(self, raw: Any) -> VoiceProfile:
        if not isinstance(raw, dict) or not raw.get("ShortName") or not raw.get("Locale"):
            raise self._http.malformed("voice without ShortName or Locale")
        tag: dict[str, Any] = raw["VoiceTag"] if isinstance(raw.get("VoiceTag"), dict) else {}
        ages = _as_list(tag.get("AgeGroups") or raw.get("AgeGroups") or raw.get("AgeGroup"))
        age_groups = [group for group in (age_group_from(age) for age in ages) if group]
        language = language_or_none(str(raw["Locale"]))
        if language is None:
            raise self._http.malformed("voice with a malformed Locale")
        status = str(raw.get("Status") or "")
        secondary = _as_list(raw.get("SecondaryLocaleList"))
        tags = _as_list(tag.get("VoicePersonalities"))
        if raw.get("VoiceType"):
            tags.append(str(raw["VoiceType"]))
        if secondary:
            tags.append("multilingual")
        return VoiceProfile.model_validate(
            {
                "provider": NAME,
                "voice_id": str(raw["ShortName"]),
                "display_name": str(raw.get("DisplayName") or raw["ShortName"]),
                "language": language,
                "gender": gender_from(raw.get("Gender")),
                # Several age groups (a voice that plays roles) name no single one.
                "age_group": age_groups[0] if len(set(age_groups)) == 1 else None,
                "styles": styles_from(_as_list(raw.get("StyleList"))),
                "use_cases": use_cases_from(_as_list(tag.get("TailoredScenarios"))),
                "description": str(raw.get("LocaleName") or ""),
                "is_deprecated": status.lower() in _RETIRED,
                "tags": tuple(tags),
                "metadata": {
                    "name": raw.get("Name"),
                    "localName": raw.get("LocalName"),
                    "localeName": raw.get("LocaleName"),
                    "voiceType": raw.get("VoiceType"),
                    "status": status or None,
                    "sampleRateHertz": raw.get("SampleRateHertz"),
                    "wordsPerMinute": raw.get("WordsPerMinute"),
                    "secondaryLocales": secondary,
                    "rolePlay": _as_list(raw.get("RolePlayList")),
                    "age_groups": ages,
                },
                "supports_multi_speaker": True,
            }
        )

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return the audio of ``request`` (SSML passes through untouched; no timings)."""
        self.check_input(request)
        settings = request.settings
        ssml = request.text if request.ssml else self._ssml(request)
        response = self._http.request(
            "POST",
            "/cognitiveservices/v1",
            data=ssml.encode("utf-8"),
            headers={
                "Content-Type": "application/ssml+xml",
                "X-Microsoft-OutputFormat": OUTPUT_FORMAT,
            },
        )
        pcm = response.content
        if len(pcm) % 2:
            raise self._http.malformed("audio is not 16-bit PCM")
        # A caller's own SSML carries its own prosody: our settings are not applied to it.
        unapplied = tuple(settings.changed_controls()) if request.ssml else ()
        return SynthesisResult(
            pcm=resample(pcm, NATIVE_RATE, settings.sample_rate),
            sample_rate=settings.sample_rate,
            unapplied=unapplied,
            provider=NAME,
            voice_id=request.voice_id,
        )

    @staticmethod
    def _ssml(request: SynthesisRequest) -> str:
        settings = request.settings
        language = request.language or "-".join(request.voice_id.split("-")[:2])
        semitones = 12 * math.log2(settings.pitch)
        body = "".join(
            piece for piece, _ in pronounced_pieces(request.text, request.pronunciations)
        )
        prosody = (
            f"<prosody rate={quoteattr(f'{settings.speed:.2f}')}"
            f" pitch={quoteattr(f'{semitones:+.2f}st')}"
            f" volume={quoteattr(f'{(settings.volume - 1) * 100:+.0f}%')}>"
        )
        return (
            "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis'"
            f" xml:lang={quoteattr(language)}><voice name={quoteattr(request.voice_id)}>"
            f"{prosody}{body}</prosody></voice></speak>"
        )

    def close(self) -> None:
        self._http.close()
