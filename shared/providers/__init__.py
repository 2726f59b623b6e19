"""Text-to-speech providers behind one interface, and the registry of the enabled ones.

Import adapters from their modules (``shared.providers.espeak`` and so on) only where they
are built: the registry does that lazily, so a cold start loads only the clients it uses.
The names below are imported from their modules on first use (``shared.lazy``): importing
``shared.providers.base`` alone loads neither the registry nor the providers' settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import lazy_exports

if TYPE_CHECKING:
    from shared.audio.timing import WordTiming
    from shared.providers.base import (
        AudioSettings,
        ErrorCategory,
        ProviderCapabilities,
        ProviderError,
        ProviderRejectedError,
        ProviderUnavailableError,
        SynthesisRequest,
        SynthesisResult,
        TTSProvider,
        UnknownProviderError,
        UnsupportedTextError,
    )
    from shared.providers.config import ProvidersConfig
    from shared.providers.registry import ProviderRegistry

__all__ = [
    "AudioSettings",
    "ErrorCategory",
    "ProviderCapabilities",
    "ProviderError",
    "ProviderRegistry",
    "ProviderRejectedError",
    "ProviderUnavailableError",
    "ProvidersConfig",
    "SynthesisRequest",
    "SynthesisResult",
    "TTSProvider",
    "UnknownProviderError",
    "UnsupportedTextError",
    "WordTiming",
]

__getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "shared.audio.timing": ["WordTiming"],
        "shared.providers.base": [
            "AudioSettings",
            "ErrorCategory",
            "ProviderCapabilities",
            "ProviderError",
            "ProviderRejectedError",
            "ProviderUnavailableError",
            "SynthesisRequest",
            "SynthesisResult",
            "TTSProvider",
            "UnknownProviderError",
            "UnsupportedTextError",
        ],
        "shared.providers.config": ["ProvidersConfig"],
        "shared.providers.registry": ["ProviderRegistry"],
    },
)
