"""Fixtures for the session tests: one shared Whisper model, services on free ports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from session.container import SessionContainer
from shared.speech import SpeechRegistry
from shared.speech.whisper import WhisperSpeechToText
from shared.store.sqlite import SqliteDocumentStore
from tests.sessions.support import ServiceThread, test_settings


@pytest.fixture(scope="session")
def whisper() -> Iterator[WhisperSpeechToText]:
    """The embedded recogniser, loaded once for every test."""
    recogniser = WhisperSpeechToText(workers=2)
    asyncio.run(recogniser.warm_up())
    yield recogniser
    recogniser.close()


ServiceFactory = Callable[..., ServiceThread]


@pytest.fixture
def start_service(tmp_path: Path, whisper: WhisperSpeechToText) -> Iterator[ServiceFactory]:
    """Start session services (settings overrides as keywords); all stopped afterwards.

    ``store_type`` replaces the embedded document store with a subclass of it.
    """
    started: list[ServiceThread] = []

    def start(
        *,
        data_dir: Path | None = None,
        store_type: type[SqliteDocumentStore] | None = None,
        **overrides: Any,
    ):
        settings = test_settings(data_dir or tmp_path / "data", **overrides)
        container = SessionContainer(settings, speech=SpeechRegistry.of([whisper]))
        if store_type is not None:  # in place of the embedded store the platform would build
            container.platform.store = store_type(settings.sqlite_path)
        service = ServiceThread(container).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
