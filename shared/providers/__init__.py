"""Text-to-speech providers behind one interface, and the registry of the enabled ones.

Import adapters from their modules (``shared.providers.espeak`` and so on) only where they
are built: the registry does that lazily, so a cold start loads only the clients it uses.
"""

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
