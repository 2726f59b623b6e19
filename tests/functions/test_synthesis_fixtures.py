"""Fixtures the synthesis, files and OpenAI speech tests share (this module has no tests).

The platform runs embedded (SQLite, local folder) with the real eSpeak NG engine wrapped
in ``CountingEspeak``, a subclass that counts ``synthesize`` calls so tests can prove
cache hits and single-flight without the provider; the catalog holds eSpeak's voices.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.bootstrap import get_container
from shared.catalog.repository import VoiceRepository
from shared.providers.base import SynthesisRequest, SynthesisResult
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from tests.functions.conftest import bearer

_VOICES: list[Any] = []


class CountingEspeak(EspeakProvider):
    """The real eSpeak provider, counting its synthesis calls; ``delay`` slows each call."""

    def __init__(self) -> None:
        super().__init__(variant_languages=["en-us"])
        self.calls = 0
        self.delay = 0.0
        self._count_lock = threading.Lock()

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        with self._count_lock:
            self.calls += 1
        if self.delay:
            threading.Event().wait(self.delay)
        return super().synthesize(request)


def espeak_voices() -> list[Any]:
    """Return eSpeak's voices (languages plus en-US variants), listed once per session."""
    if not _VOICES:
        _VOICES.extend(EspeakProvider(variant_languages=["en-us"]).list_voices())
    return _VOICES


@pytest.fixture
def espeak(platform: Any) -> CountingEspeak:
    """The counting eSpeak provider, wired into the container; the catalog synced."""
    provider = CountingEspeak()
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    VoiceRepository(container.store).upsert(espeak_voices())
    return provider


@pytest.fixture
def synthesis_client(
    function_client: Callable[[str], FlaskClient], espeak: CountingEspeak
) -> FlaskClient:
    """The synthesis function under test."""
    return function_client("synthesis")


@pytest.fixture
def ann(token: Callable[..., str]) -> dict[str, str]:
    """Headers of user ann."""
    return bearer(token("ann"))


@pytest.fixture
def bob(token: Callable[..., str]) -> dict[str, str]:
    """Headers of user bob."""
    return bearer(token("bob"))
