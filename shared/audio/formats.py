"""The audio formats the platform writes, and the HTTP content type of each."""

from __future__ import annotations

from enum import StrEnum


class OutputFormat(StrEnum):
    """Audio formats synthesis can produce."""

    WAV = "wav"
    MP3 = "mp3"
    FLAC = "flac"
    OGG_OPUS = "ogg_opus"
    PCM = "pcm"


CONTENT_TYPES: dict[OutputFormat, str] = {
    OutputFormat.WAV: "audio/wav",
    OutputFormat.MP3: "audio/mpeg",
    OutputFormat.FLAC: "audio/flac",
    OutputFormat.OGG_OPUS: "audio/ogg",
    OutputFormat.PCM: "audio/L16",
}
"""The HTTP Content-Type of each output format (PCM is 16-bit little-endian mono)."""
