"""ElevenLabs over its REST API: voices, text-to-speech with timestamps, instant cloning.

Voices carry ``labels`` (gender, age, accent, use_case, description) that map onto the
catalog's gender, age group, use cases and styles; ``is_legacy`` voices are kept but marked
deprecated, as ElevenLabs hides them by default. Synthesis asks for raw PCM
(``output_format=pcm_<rate>``) from ``/v1/text-to-speech/{voice}/with-timestamps``, whose
character ``alignment`` becomes word timings; ``stream_pcm`` reads the same audio from
``/v1/text-to-speech/{voice}/stream`` as it is produced. Instant voice cloning (``add_voice``,
``POST /v1/voices/add``) and ``delete_voice`` (``DELETE /v1/voices/{id}``) serve both
cloning callers: training's ElevenLabs trainer and pre-call cloning.

Errors come as ``{"detail": {"status", "message"}}`` (or, for a malformed request,
``{"detail": [{"loc", "msg", "type"}]}``); a failure's message names the HTTP status and
both parts (``voice_limit_reached: You have reached ...``), never the key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from urllib3 import encode_multipart_formdata

from shared.audio.pcm import resample, scale_volume
from shared.audio.timing import WordTiming, words_from_characters
from shared.providers._http import JsonHttpClient
from shared.providers._stream import http_body, pcm_stream
from shared.providers.base import (
    AudioSettings,
    Control,
    ErrorCategory,
    ProviderCapabilities,
    ProviderError,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    provider_error,
)
from shared.providers.labels import (
    age_group_from,
    gender_from,
    language_or_none,
    styles_from,
    use_cases_from,
)
from shared.providers.ssml import elevenlabs_dialogue_inputs
from shared.providers.voices import DialogueTurn, VoiceProfile

NAME = "elevenlabs"
PCM_RATES = (8_000, 16_000, 22_050, 24_000, 44_100, 48_000)
# Text-to-dialogue runs on Eleven v3 only.
DIALOGUE_MODEL = "eleven_v3"
MAX_DIALOGUE_VOICES = 10
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
            error_detail=error_detail,
        )
        self._model_id = model_id

    def __repr__(self) -> str:
        return f"ElevenLabsProvider(base_url={self._http.base_url!r}, model={self._model_id!r})"

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=False,
            timing="character",
            multi_speaker=True,
            streaming=True,
            cloning=True,
            native_formats=("mp3", "pcm", "ulaw", "opus"),
            max_input_chars=MAX_INPUT_CHARS,
            native_controls=frozenset({"speed"}),
            sample_rates=PCM_RATES,
            # Its <phoneme> tags work on a few English models only: aliases work on all.
            pronunciation="alias",
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
                    "isLegacy": bool(raw.get("is_legacy")),
                    "languages": sorted(
                        {str(v.get("language")) for v in verified if v.get("language")}
                    ),
                    "languageSource": "verified" if verified else "default",
                },
                # Any voice can take part in text-to-dialogue (one call, several voices).
                "supports_multi_speaker": True,
            }
        )

    def add_voice(
        self,
        name: str,
        files: Sequence[tuple[str, bytes, str]],
        *,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        remove_background_noise: bool = False,
    ) -> str:
        """Create an instant voice clone from recordings; return its voice id.

        ``POST /v1/voices/add`` (multipart: ``name``, one ``files`` part per recording as
        (file name, bytes, content type), optional ``description``, ``labels`` as JSON
        and ``remove_background_noise``). Raises ProviderError, categorised like every call.
        """
        fields: list[tuple[str, Any]] = [("name", name)]
        fields.extend(("files", (filename, data, kind)) for filename, data, kind in files)
        if description:
            fields.append(("description", description))
        if labels:
            fields.append(("labels", json.dumps(dict(labels))))
        fields.append(("remove_background_noise", "true" if remove_background_noise else "false"))
        body, content_type = encode_multipart_formdata(fields)
        response = self._http.request(
            "POST", "/v1/voices/add", data=body, headers={"Content-Type": content_type}
        )
        parsed = self._http.parse_json(response)
        voice_id = parsed.get("voice_id") if isinstance(parsed, dict) else None
        if not isinstance(voice_id, str) or not voice_id:
            raise self._http.malformed("no voice_id for the new voice")
        return voice_id

    def delete_voice(self, voice_id: str) -> bool:
        """Delete a voice of the account; return False when ElevenLabs no longer had it.

        ``DELETE /v1/voices/{voice_id}``. Raises ProviderError for any other failure.
        """
        try:
            self._http.request("DELETE", f"/v1/voices/{quote(voice_id, safe='')}")
        except ProviderError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return the audio and word timings (from character alignment) of ``request``."""
        self.check_input(request)
        settings = request.settings
        native_rate = _native_rate(settings.sample_rate)
        speed = min(MAX_SPEED, max(MIN_SPEED, settings.speed))
        response = self._http.request(
            "POST",
            f"/v1/text-to-speech/{quote(request.voice_id, safe='')}/with-timestamps",
            params={"output_format": f"pcm_{native_rate}"},
            json_body=self._body(request),
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

    def streams(self, request: SynthesisRequest) -> bool:
        """Return True when every setting applies: every voice streams from
        ``/v1/text-to-speech/{voice}/stream``, but a stream cannot say that a pitch or a
        speed outside ElevenLabs' range was left out, as ``synthesize`` does."""
        settings = request.settings
        return settings.pitch == 1.0 and MIN_SPEED <= settings.speed <= MAX_SPEED

    def stream_pcm(self, request: SynthesisRequest) -> Iterator[bytes]:
        """Yield the audio of ``request`` from the stream endpoint as ElevenLabs sends it
        (raw PCM at the nearest native rate, resampled as it comes; no timings)."""
        self.check_input(request)
        settings = request.settings
        native_rate = _native_rate(settings.sample_rate)
        response = self._http.request(
            "POST",
            f"/v1/text-to-speech/{quote(request.voice_id, safe='')}/stream",
            params={"output_format": f"pcm_{native_rate}"},
            json_body=self._body(request),
            stream=True,
        )
        return pcm_stream(
            http_body(response, NAME),
            from_rate=native_rate,
            to_rate=settings.sample_rate,
            volume=settings.volume,
            malformed=self._http.malformed,
        )

    def _body(self, request: SynthesisRequest) -> dict[str, Any]:
        settings = request.settings
        body: dict[str, Any] = {"text": request.text, "model_id": self._model_id}
        if settings.speed != 1.0:
            body["voice_settings"] = {"speed": min(MAX_SPEED, max(MIN_SPEED, settings.speed))}
        return body

    def dialogue_refusal(self, turns: Sequence[DialogueTurn]) -> str | None:
        """Return why text-to-dialogue cannot take these turns, or None when it can."""
        if len({turn.voice for turn in turns}) > MAX_DIALOGUE_VOICES:
            return f"ElevenLabs dialogues hold at most {MAX_DIALOGUE_VOICES} voices"
        return None

    def synthesize_dialogue(
        self, turns: Sequence[DialogueTurn], settings: AudioSettings
    ) -> SynthesisResult:
        """Return one track of every turn from ``/v1/text-to-dialogue/with-timestamps``.

        ``turns`` carry provider voice ids. Word timings come from the character alignment,
        split per turn by the response's ``voice_segments``; their character spans index
        the turns' texts joined with one newline.
        """
        text = "\n".join(turn.text for turn in turns)
        if len(text) > MAX_INPUT_CHARS:
            raise provider_error(
                NAME, ErrorCategory.PERMANENT, f"Dialogue exceeds {MAX_INPUT_CHARS} characters"
            )
        native_rate = _native_rate(settings.sample_rate)
        response = self._http.request(
            "POST",
            "/v1/text-to-dialogue/with-timestamps",
            params={"output_format": f"pcm_{native_rate}"},
            json_body={"inputs": elevenlabs_dialogue_inputs(turns), "model_id": DIALOGUE_MODEL},
        )
        payload = self._http.parse_json(response)
        pcm = self._audio(payload)
        words = self._dialogue_words(payload, turns)
        unapplied: list[Control] = []
        if settings.speed != 1.0:
            unapplied.append("speed")
        if settings.pitch != 1.0:
            unapplied.append("pitch")
        return SynthesisResult(
            pcm=scale_volume(resample(pcm, native_rate, settings.sample_rate), settings.volume),
            sample_rate=settings.sample_rate,
            words=tuple(words),
            unapplied=tuple(unapplied),
            provider=NAME,
            voice_id=",".join(dict.fromkeys(turn.voice for turn in turns)),
        )

    def _dialogue_words(self, payload: Any, turns: Sequence[DialogueTurn]) -> list[WordTiming]:
        alignment = payload.get("alignment")
        segments = payload.get("voice_segments")
        if not isinstance(alignment, dict) or not isinstance(segments, list):
            return []
        try:
            characters = [str(c) for c in alignment["characters"]]
            starts = [float(t) for t in alignment["character_start_times_seconds"]]
            ends = [float(t) for t in alignment["character_end_times_seconds"]]
            offsets = [0]
            for turn in turns[:-1]:
                offsets.append(offsets[-1] + len(turn.text) + 1)
            words: list[WordTiming] = []
            for segment in segments:
                index = int(segment["dialogue_input_index"])
                first, last = (
                    int(segment["character_start_index"]),
                    int(segment["character_end_index"]),
                )
                for word in words_from_characters(
                    turns[index].text, characters[first:last], starts[first:last], ends[first:last]
                ):
                    shift = offsets[index]
                    words.append(
                        WordTiming(
                            word.text,
                            word.start_seconds,
                            word.end_seconds,
                            None if word.char_start is None else word.char_start + shift,
                            None if word.char_end is None else word.char_end + shift,
                        )
                    )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise self._http.malformed("dialogue alignment is inconsistent") from exc
        return words

    def _audio(self, payload: Any) -> bytes:
        if not isinstance(payload, dict) or not isinstance(payload.get("audio_base64"), str):
            raise self._http.malformed("no audio_base64")
        try:
            return base64.b64decode(payload["audio_base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._http.malformed("audio_base64 is not base64") from exc

    def _read(self, payload: Any, text: str) -> tuple[bytes, list[WordTiming]]:
        pcm = self._audio(payload)
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


def error_detail(body: Any) -> str | None:
    """Return ``status: message`` of an ElevenLabs error body (``loc: msg`` for 422s)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        parts = [str(detail[key]) for key in ("status", "message") if detail.get(key)]
        return ": ".join(parts) or None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(part) for part in first.get("loc", []))
        return f"{where}: {first.get('msg', '')}"
    return detail if isinstance(detail, str) and detail else None


def _native_rate(wanted: int) -> int:
    """Return the PCM rate ElevenLabs offers closest to ``wanted`` (at or above when it can)."""
    return min(PCM_RATES, key=lambda rate: (rate < wanted, abs(rate - wanted)))
