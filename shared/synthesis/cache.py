"""The synthesis cache key: a hash of everything that changes the audio.

``cache_key`` hashes the normalised text, provider, voice, voice model and its version,
every audio setting, the format and the timestamp options. The entries themselves, and
the single-flight that renders each key once, are the audio cache of
``shared.files.cache``.
"""

from __future__ import annotations

import hashlib
import json

from shared.audio.formats import OutputFormat
from shared.audio.text import normalise_text
from shared.providers.base import AudioSettings
from shared.synthesis.model import TimestampGranularity
from shared.synthesis.voices import ResolvedVoice

KEY_VERSION = 1


def cache_key(
    *,
    text: str,
    ssml: bool,
    voice: ResolvedVoice,
    settings: AudioSettings,
    output_format: OutputFormat,
    include_timestamps: bool,
    granularity: TimestampGranularity,
) -> str:
    """Return the hex SHA-256 of everything that changes the audio (and its timestamps)."""
    material = {
        "v": KEY_VERSION,
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
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()
