"""The synthesis cache key: a hash of everything that changes the audio, and whose it is.

``cache_key`` hashes the owner (the requesting user, or nobody when renders of catalog
voices are shared), the text with its whitespace normalised (a hit's words are placed on
the request's own spacing: ``shared.synthesis.spans``), provider, voice, voice model and
its version, every audio setting, the format, the timestamp options and the pronunciation
lexicons applied (each as id@version: a new version is another key, a pinned old one the
same). The entries themselves, and the single-flight that renders each key once, are the
audio cache of ``shared.files.cache``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from shared.audio.formats import OutputFormat
from shared.audio.text import normalise_text
from shared.providers.base import AudioSettings
from shared.synthesis.model import ResolvedVoice, TimestampGranularity

KEY_VERSION = 3
"""Bumped when what a render answers changes for the same request, so that a hit answers
as a miss would: 2 (2026-12-07), word timestamps keep the signs written on a word ("$5"),
SSML's are the words as written (a ``<sub>``'s content), and numbers and abbreviations are
one syllable; 3, every word and syllable has its span in the text (``charStart``,
``charEnd``), which a render cached before has not, and texts are told apart by their
characters, not composed (NFC) first."""


def cache_key(
    *,
    text: str,
    ssml: bool,
    voice: ResolvedVoice,
    settings: AudioSettings,
    output_format: OutputFormat,
    include_timestamps: bool,
    granularity: TimestampGranularity,
    owner: str | None,
    lexicons: Sequence[str] = (),
) -> str:
    """Return the hex SHA-256 of everything that changes the audio (and its timestamps).

    ``owner`` scopes the entry to one user: by default nobody's request can find another
    user's audio (not even learn that it exists); ``None`` shares the entry across users
    (``cache_owner`` says when).
    """
    material: dict[str, Any] = {
        "v": KEY_VERSION,
        "owner": owner,
        "text": normalise_text(text),
        "ssml": ssml,
        "provider": voice.provider,
        "voice": voice.voice_id,
        "language": voice.language,
        "model": voice.model.id if voice.model else None,
        "modelVersion": voice.model.version if voice.model else None,
        "modelUpdatedAt": voice.model.updated_at.isoformat() if voice.model else None,
        "settings": settings.model_dump(),
        "format": output_format.value,
        "timestamps": include_timestamps,
        "granularity": granularity.value if include_timestamps else None,
    }
    if lexicons:
        # Only then: keys of requests without lexicons stay what they were.
        material["lexicons"] = list(lexicons)
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def cache_owner(user_id: str, voice: ResolvedVoice, *, share_catalog_voices: bool) -> str | None:
    """Return whose cache entry a request of ``user_id`` with ``voice`` reads and writes.

    The user's own, unless the operator shares renders of public catalog voices across
    users (``synthesis_cache_shared_catalog_voices``); a voice model's audio never is.
    """
    return None if share_catalog_voices and voice.model is None else user_id
