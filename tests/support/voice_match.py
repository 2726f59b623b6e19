"""The voice-match table of US English, built once per test process.

The voice match (``shared.samples.training.voice_match``) compares every eSpeak variant of
a language from a table it builds once per process and keeps in memory (and in the models
bucket). Building it takes 30-60 s on two busy cores; tests that time a clone or a
training call ``warm_voice_match_table`` first, so that cost is paid once, untimed, and
not inside a test's own deadline.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from shared.audio.speaker_encoder import default_encoder
from shared.blobs.local import LocalObjectStorage
from shared.providers.espeak import EspeakProvider
from shared.samples.training.voice_match import VoiceMatcher

BASE_VOICE = "en-US"
_lock = threading.Lock()
_matcher: list[VoiceMatcher] = []


def warm_voice_match_table() -> VoiceMatcher:
    """Return a matcher whose US English table is in this process's memory."""
    with _lock:
        if not _matcher:
            folder = Path(tempfile.mkdtemp(prefix="voice-match-"))
            blobs = LocalObjectStorage(
                folder,
                signing_key=b"t" * 32,
                public_base_url="http://127.0.0.1:9",
                max_upload_bytes=1 << 30,
            )
            espeak = EspeakProvider(variant_languages=[])
            matcher = VoiceMatcher(espeak, default_encoder(), blobs=blobs, bucket="models")
            matcher.voice_table(BASE_VOICE)
            _matcher.append(matcher)
        return _matcher[0]
