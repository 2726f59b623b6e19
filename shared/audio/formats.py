"""The audio formats the platform writes, their common names, and the HTTP content type of each.

Requests may name a format in any case or by a common alias (``opus`` and ``ogg`` are
``ogg_opus``); a format no encoder here writes (``aac``) is refused with the list of
supported ones. Raw PCM (16-bit little-endian mono) is served as
``audio/L16;rate=N;channels=1``, so a player knows its rate.
"""

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
"""The HTTP Content-Type of each output format (PCM is 16-bit little-endian mono; its full
type names the rate: ``content_type_of``)."""

FORMAT_ALIASES: dict[str, OutputFormat] = {
    "opus": OutputFormat.OGG_OPUS,
    "ogg": OutputFormat.OGG_OPUS,
    "oga": OutputFormat.OGG_OPUS,
    "mpeg": OutputFormat.MP3,
    "wave": OutputFormat.WAV,
    "l16": OutputFormat.PCM,
}
"""Common names of the formats, as other speech APIs and file extensions spell them."""


class UnsupportedFormatError(ValueError):
    """A format name the platform cannot write; the message lists the supported ones."""


def supported_formats() -> str:
    """Return the accepted format names in words, for error messages."""
    aliases = ", ".join(f"{alias} ({fmt.value})" for alias, fmt in FORMAT_ALIASES.items())
    return f"{', '.join(fmt.value for fmt in OutputFormat)}; also {aliases}"


def parse_output_format(value: str | OutputFormat) -> OutputFormat:
    """Return the format ``value`` names, in any case, by its name or a common alias.

    Raises:
        UnsupportedFormatError: no encoder here writes it (aac, for one).
    """
    if isinstance(value, OutputFormat):
        return value
    wanted = value.strip().casefold()
    for fmt in OutputFormat:
        if fmt.value == wanted:
            return fmt
    alias = FORMAT_ALIASES.get(wanted)
    if alias is None:
        raise UnsupportedFormatError(
            f"Audio format {value!r} is not supported; use one of {supported_formats()}"
        )
    return alias


def content_type_of(fmt: OutputFormat, sample_rate: int) -> str:
    """Return the Content-Type of audio in ``fmt``; raw PCM names its rate and channels."""
    if fmt is OutputFormat.PCM:
        return f"audio/L16;rate={sample_rate};channels=1"
    return CONTENT_TYPES[fmt]
