"""Uploaded audio: its container format told from the bytes, then decoded to mono floats.

``sniff_format`` looks only at the data, never at a file name or a declared content type:
RIFF/WAVE (and RF64) is wav; ``fLaC`` is flac; ``OggS`` is ogg (Vorbis, Opus or FLAC
inside); mp3 is an ID3v2 tag followed by an MPEG audio frame, or a bare frame, where a
frame is an MPEG-1, -2 or -2.5 Layer III header whose successor header sits exactly one
frame length further on (so two random bytes that happen to look like a sync word are not
taken for mp3). A tag in front of a FLAC stream is skipped too. Anything else raises
``UnsupportedAudioFormatError``.

``probe`` reads the header facts (sample rate, channels, frames, codec) without decoding,
so a caller can refuse an over-long upload cheaply; ``decode`` returns every sample,
downmixed to mono float32, read in blocks so that a long stereo file never sits in memory
at full width. Data that libsndfile (through soundfile) cannot open or read to the end, a
WAV whose data chunk claims more bytes than the file holds, an Ogg stream that does not end
with a whole end-of-stream page (libsndfile would quietly decode what is there), and a
stream without a single sample raise ``CorruptAudioError``. A cut mp3 is not refused: it
has no end marker, and its frames up to the cut play as they are.
"""

from __future__ import annotations

import enum
import io
import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import InvalidRequestError, UnsupportedMediaTypeError
from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import soundfile  # type: ignore[import-untyped]  # no type hints shipped
else:
    np = lazy_module("numpy")
    soundfile = lazy_module("soundfile")

logger = logging.getLogger(__name__)

_BLOCK_FRAMES = 65_536
_ID3_HEADER = 10
# MPEG audio Layer III: version bits -> sample rates; bitrates (kbps) by version family.
_MPEG_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}
_MPEG1_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_WAV_SIZE_PLACEHOLDERS = frozenset({0, 0xFFFFFFFF})  # streaming writers fill these in later
_OGG_PAGE_HEADER = 27  # "OggS", version, type, granule, serial, sequence, CRC, segment count
_OGG_END_OF_STREAM = 0x04


class AudioFormat(enum.StrEnum):
    """The container formats a voice sample may come in."""

    WAV = "wav"
    MP3 = "mp3"
    FLAC = "flac"
    OGG = "ogg"


class UnsupportedAudioFormatError(UnsupportedMediaTypeError):
    code = "UNSUPPORTED_AUDIO_FORMAT"
    default_message = "Audio must be wav, mp3, flac or ogg"


class CorruptAudioError(InvalidRequestError):
    code = "CORRUPT_AUDIO"
    default_message = "The audio file is damaged or truncated and cannot be decoded"


@dataclass(frozen=True)
class AudioFacts:
    """What the file's headers say: format, codec (libsndfile's subtype), rate, size."""

    format: AudioFormat
    codec: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_seconds(self) -> float:
        """Return the length the headers announce, in seconds."""
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class DecodedAudio:
    """Every sample of the file, mono float32 in -1..1, with the file's own facts.

    ``frames`` and ``duration_seconds`` count what was decoded, which can differ slightly
    from the announced length (mp3 headers estimate it).
    """

    samples: npt.NDArray[np.float32]
    format: AudioFormat
    codec: str
    sample_rate: int
    channels: int

    @property
    def frames(self) -> int:
        """Return the number of decoded samples per channel."""
        return len(self.samples)

    @property
    def duration_seconds(self) -> float:
        """Return the decoded length in seconds."""
        return len(self.samples) / self.sample_rate


def sniff_format(data: bytes) -> AudioFormat:
    """Return the container format of ``data``, told from its first bytes.

    Raises:
        UnsupportedAudioFormatError: the data is none of wav, mp3, flac, ogg.
    """
    if len(data) >= 12 and data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE":
        return AudioFormat.WAV
    if data[:4] == b"OggS":
        return AudioFormat.OGG
    start = _after_id3(data)
    if data[start : start + 4] == b"fLaC":
        return AudioFormat.FLAC
    if _is_mp3_frame_run(data, start):
        return AudioFormat.MP3
    raise UnsupportedAudioFormatError()


def _after_id3(data: bytes) -> int:
    """Return where the data after any ID3v2 tags starts (0 when there is none)."""
    offset = 0
    while data[offset : offset + 3] == b"ID3" and len(data) >= offset + _ID3_HEADER:
        flags = data[offset + 5]
        size_bytes = data[offset + 6 : offset + 10]
        if any(byte & 0x80 for byte in size_bytes):
            return offset  # not a synchsafe size: not a tag after all
        size = 0
        for byte in size_bytes:
            size = (size << 7) | byte
        footer = _ID3_HEADER if flags & 0x10 else 0
        offset += _ID3_HEADER + size + footer
    return offset


def _mp3_frame_length(header: bytes) -> int | None:
    """Return the byte length of the Layer III frame that ``header`` starts, or None."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 0x3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = (header[1] >> 1) & 0x3  # 1: Layer III
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 0x3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # free-format streams (bitrate 0) are too rare to be worth sniffing
    padding = (header[2] >> 1) & 0x1
    rate = _MPEG_RATES[version][rate_index]
    if version == 3:
        return 144_000 * _MPEG1_KBPS[bitrate_index] // rate + padding
    return 72_000 * _MPEG2_KBPS[bitrate_index] // rate + padding


def _is_mp3_frame_run(data: bytes, start: int) -> bool:
    length = _mp3_frame_length(data[start : start + 4])
    if length is None:
        return False
    following = start + length
    if following >= len(data):
        return following == len(data)  # a file of exactly one frame
    return _mp3_frame_length(data[following : following + 4]) is not None


def probe(data: bytes) -> AudioFacts:
    """Return the format and header facts of ``data`` without decoding its samples.

    Raises:
        UnsupportedAudioFormatError: the data is none of wav, mp3, flac, ogg.
        CorruptAudioError: the headers cannot be read, or a WAV is cut short.
    """
    audio_format = sniff_format(data)
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.SoundFileError, RuntimeError, ValueError) as exc:
        logger.info("cannot open %s upload: %s", audio_format, exc)
        raise CorruptAudioError() from exc
    if audio_format is AudioFormat.WAV:
        _check_wav_complete(data)
    elif audio_format is AudioFormat.OGG:
        _check_ogg_complete(data)
    if info.samplerate <= 0 or info.channels <= 0:
        raise CorruptAudioError()
    return AudioFacts(audio_format, str(info.subtype), info.samplerate, info.channels, info.frames)


def decode(data: bytes) -> DecodedAudio:
    """Return every sample of ``data`` downmixed to mono float32, with the file's facts.

    Raises:
        UnsupportedAudioFormatError: the data is none of wav, mp3, flac, ogg.
        CorruptAudioError: the data cannot be decoded to the end, a WAV is cut short, or
            there is not a single sample.
    """
    facts = probe(data)
    blocks: list[npt.NDArray[np.float32]] = []
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as stream:
            while True:
                block = stream.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                blocks.append(block.mean(axis=1, dtype=np.float32))
    except (soundfile.SoundFileError, RuntimeError, ValueError) as exc:
        logger.info("cannot decode %s upload: %s", facts.format, exc)
        raise CorruptAudioError() from exc
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    if len(samples) == 0 or not np.all(np.isfinite(samples)):
        raise CorruptAudioError("The audio file holds no playable samples")
    return DecodedAudio(samples, facts.format, facts.codec, facts.sample_rate, facts.channels)


def _check_wav_complete(data: bytes) -> None:
    """Raise CorruptAudioError when the data chunk announces more bytes than are there."""
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        body = offset + 8
        if chunk_id == b"data":
            # RF64 keeps the real size elsewhere; placeholders mean "unknown, read to the end".
            sized = data[:4] == b"RIFF" and size not in _WAV_SIZE_PLACEHOLDERS
            if sized and body + size > len(data):
                raise CorruptAudioError("The WAV file is truncated")
            return
        offset = body + size + (size & 1)  # chunks are padded to an even length


def _check_ogg_complete(data: bytes) -> None:
    """Raise CorruptAudioError unless ``data`` is whole Ogg pages, the last ending the stream."""
    offset = 0
    header_type = 0
    while offset < len(data):
        header = data[offset : offset + _OGG_PAGE_HEADER]
        if len(header) < _OGG_PAGE_HEADER or header[:4] != b"OggS":
            raise CorruptAudioError("The Ogg stream is truncated or damaged")
        header_type, segments = header[5], header[26]
        lacing = data[offset + _OGG_PAGE_HEADER : offset + _OGG_PAGE_HEADER + segments]
        if len(lacing) < segments:
            raise CorruptAudioError("The Ogg stream is truncated or damaged")
        offset += _OGG_PAGE_HEADER + segments + sum(lacing)
    if offset != len(data) or not header_type & _OGG_END_OF_STREAM:
        raise CorruptAudioError("The Ogg stream is truncated or damaged")
