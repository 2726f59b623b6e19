"""The synthesis function served as Cloud Functions serves it (``functions-framework``, which
runs gunicorn) streams: chunks leave as they are produced, and a reader that stops holds
the work back.

An ordering, not a timing: the first chunk of a long stream (about 30 MB of PCM, more than
the sockets between the two processes hold) reaches the client while the synthesis is
unfinished (no job or file recorded yet). A server that buffered the answer would send
its first byte only after the whole text had been synthesized and stored.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.auth import build_dev_verifier
from shared.catalog.repository import VoiceRepository
from shared.config import Settings
from shared.files.repository import AUDIO_FILES
from shared.store import Query
from shared.store.sqlite import SqliteDocumentStore
from shared.synthesis.repository import SYNTHESIS_JOBS
from tests.functions.test_synthesis_fixtures import espeak_voices
from tests.support.processes import Emulator, free_port, start_process

ROOT = Path(__file__).resolve().parents[2]
SECRET = "streaming-tests-" + "s" * 40
LONG = " ".join(f"This is sentence number {n} of a long text read aloud." for n in range(90))


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Settings]]:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", dev_auth_secret=SECRET)
    store = SqliteDocumentStore(settings.sqlite_path)
    VoiceRepository(store).upsert(espeak_voices())
    store.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_")}
    env |= {
        "VOICE_DATA_DIR": str(settings.data_dir),
        "VOICE_DEV_AUTH_SECRET": SECRET,
        "VOICE_ESPEAK_VARIANT_LANGUAGES": "en-us",
        "VOICE_LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    binary = Path(sys.executable).with_name("functions-framework")
    command = [str(binary), "--target", "synthesis", "--source", "main.py", "--port", str(port)]
    monkeypatch.chdir(ROOT)
    server: Emulator = start_process(
        command,
        host=f"127.0.0.1:{port}",
        log_path=tmp_path / "functions-framework.log",
        ready=lambda: listening(port),
        timeout=60,
    )
    yield port, settings
    server.stop()


def count(settings: Settings, collection: str) -> int:
    store = SqliteDocumentStore(settings.sqlite_path)
    try:
        return store.count(Query(collection))
    finally:
        store.close()


def test_gunicorn_sends_the_first_chunk_while_the_synthesis_goes_on(served):
    port, settings = served
    token = build_dev_verifier(settings).mint("ann")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = {"text": LONG, "voice": "espeak:en-US", "outputFormat": "pcm", "speed": 0.5}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/synthesize/stream", body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read1(1 << 16)
    # The first audio is here; the rest is not made (the reader holds it back).
    assert (count(settings, SYNTHESIS_JOBS), count(settings, AUDIO_FILES)) == (0, 0)
    connection.close()
    # A stream read to its end is stored, as a non-streamed request would be.
    short = {**body, "text": "A short text. Read to its end.", "speed": 1.0}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/synthesize/stream", body=json.dumps(short), headers=headers)
    assert connection.getresponse().read()
    connection.close()
    assert count(settings, AUDIO_FILES) == 1
