"""An in-memory TTS provider for sync tests and benchmarks: a real ``TTSProvider`` subclass.

Its voice list is whatever the test sets; ``fail_with`` queues errors raised by the next
``list_voices`` calls (one per call); ``fail_after_pages`` makes a call fetch some pages
and then fail, as a provider failing part-way through a paginated list does.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from shared.providers.base import (
    ErrorCategory,
    ProviderCapabilities,
    ProviderError,
    SynthesisRequest,
    SynthesisResult,
    TTSProvider,
    provider_error,
)
from shared.providers.voices import AgeGroup, Gender, VoiceProfile

_GENDERS = [Gender.FEMALE, Gender.MALE, Gender.NEUTRAL, None]
_AGES = [AgeGroup.ADULT, AgeGroup.YOUNG, AgeGroup.SENIOR, AgeGroup.CHILD, None]
_LANGUAGES = ["en-US", "en-GB", "zh-TW", "ja-JP", "de-DE", "fr-FR", "es-ES", "pt-BR"]
_STYLES = ["cheerful", "newscast", "calm", "sad", "whispering"]
_USE_CASES = ["narration", "conversation", "assistant", "news", "character"]


def make_voice(provider: str, index: int, **overrides: object) -> VoiceProfile:
    """Return a plausible, varied voice number ``index`` of ``provider``."""
    fields: dict[str, object] = {
        "provider": provider,
        "voice_id": f"voice-{index:04d}",
        "display_name": f"Voice {index}",
        "language": _LANGUAGES[index % len(_LANGUAGES)],
        "gender": _GENDERS[index % len(_GENDERS)],
        "age_group": _AGES[index % len(_AGES)],
        "styles": (_STYLES[index % len(_STYLES)], _STYLES[(index + 2) % len(_STYLES)]),
        "use_cases": (_USE_CASES[index % len(_USE_CASES)],),
        "description": f"Fake voice number {index}",
        "sample_audio_url": f"https://samples.example.com/{provider}/{index}.mp3",
        "tags": ("fake", f"batch-{index // 100}"),
        "metadata": {"index": index, "engine": "neural", "rates": [16000, 24000]},
    }
    fields.update(overrides)
    return VoiceProfile.model_validate(fields)


def make_voices(provider: str, count: int, start: int = 0) -> list[VoiceProfile]:
    """Return ``count`` voices numbered from ``start``."""
    return [make_voice(provider, index) for index in range(start, start + count)]


class FakeProvider(TTSProvider):
    """A provider whose voices and failures the test controls."""

    name: ClassVar[str] = "fake"

    def __init__(
        self, name: str = "fake", voices: list[VoiceProfile] | None = None, page_size: int = 100
    ) -> None:
        self.name = name  # type: ignore[misc]  # each fake instance names its own provider
        self.voices = list(voices or [])
        self.page_size = page_size
        self.calls = 0
        self._failures: list[ProviderError] = []
        self.fail_after_pages: int | None = None
        self._lock = threading.Lock()

    def fail_with(
        self, category: ErrorCategory, times: int = 1, retry_after: int | None = None
    ) -> None:
        """Make the next ``times`` calls of ``list_voices`` raise an error of ``category``."""
        for _ in range(times):
            self._failures.append(
                provider_error(
                    self.name,
                    category,
                    f"{self.name} {category.value} failure",
                    retry_after=retry_after,
                )
            )

    @property
    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            ssml=False,
            timing="none",
            multi_speaker=False,
            streaming=False,
            cloning=False,
            native_formats=("pcm",),
            max_input_chars=1000,
        )

    def list_voices(self) -> list[VoiceProfile]:
        with self._lock:
            self.calls += 1
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise failure
        fetched: list[VoiceProfile] = []
        for page, start in enumerate(range(0, len(self.voices), self.page_size)):
            if self.fail_after_pages is not None and page >= self.fail_after_pages:
                raise provider_error(
                    self.name, ErrorCategory.TRANSIENT, "connection reset mid-list"
                )
            fetched.extend(self.voices[start : start + self.page_size])
        return fetched

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        rate = request.settings.sample_rate
        return SynthesisResult(pcm=b"\x00\x00" * rate, sample_rate=rate, provider=self.name)
