"""Which provider speaks each voice-model engine (``shared.synthesis.voices``)."""

from __future__ import annotations

from shared.synthesis.voices import MODEL_PROVIDERS
from shared.voice_models.model import TTSProvider


def test_every_voice_model_engine_has_its_provider_or_none_and_the_enum_finds_it() -> None:
    # The table is keyed by the engines' values (the module loads no voice-model code);
    # a new engine without a row would be refused as "not configured" without anyone asking.
    assert set(MODEL_PROVIDERS) == {engine.value for engine in TTSProvider}
    assert MODEL_PROVIDERS[TTSProvider.ESPEAK] == "espeak"
    assert MODEL_PROVIDERS[TTSProvider.GOOGLE_CLOUD_TTS] == "gcp"
    assert MODEL_PROVIDERS[TTSProvider.XTTS_V2] is None
