"""Encoding 16-bit mono PCM into the files synthesis serves: wav, flac, ogg_opus, mp3, pcm.

Providers hand back PCM (``shared.audio.pcm``); ``encode`` turns it into the requested
format and reports the rate and duration of what it produced. WAV (the canonical 44-byte
header, ``wav_header``, before the samples) and FLAC keep the input rate; Opus only runs at
8/12/16/24/48 kHz, so other rates are resampled with soxr to the nearest supported rate at
or above the input; MP3 comes from ``lameenc`` at a speech bitrate and lame's default
algorithm quality (``MP3_QUALITY``), preceded by a LAME
"Info" frame carrying the encoder delay and padding so that gapless decoders (mpg123, which
soundfile uses, and ffmpeg, which browsers use) give back exactly the input's samples, and
timestamps line up with what the listener hears. Ogg Opus comes from libopus through PyAV
(FFmpeg's Ogg muxer writes the pre-skip and the end trim, so decoders give back exactly the
input's samples), tuned for synthesized speech files: the CELT layer alone (``lowdelay``),
complexity 3, 20 ms frames and 48 kbps constrained VBR. That encodes a sentence about 18
times faster than libsndfile's encoder did (SILK or hybrid, complexity 10: about 38 times
eSpeak's synthesis time) at the same or better fidelity (``bench/encode.py``). Voice mode
(``voip``, SILK) was measured too: three to four times slower than CELT here, and further
from the waveform.
``decode_duration`` reads a produced file back and returns its length in seconds.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from shared.audio.formats import OutputFormat, content_type_of
from shared.audio.pcm import SAMPLE_WIDTH, resample, to_samples
from shared.lazy import lazy_module

if TYPE_CHECKING:
    import av
    import lameenc  # type: ignore[import-not-found]  # a compiled module without type hints
    import numpy as np
    import numpy.typing as npt
    import soundfile  # type: ignore[import-untyped]  # no type hints shipped
else:
    av = lazy_module("av")
    lameenc = lazy_module("lameenc")
    np = lazy_module("numpy")
    soundfile = lazy_module("soundfile")

OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)
MP3_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
DEFAULT_MP3_KBPS = 64
MP3_QUALITY = 5
"""lame's algorithm choice (0 best and slowest .. 9 worst and fastest): lame's own default.
For synthesized speech it decodes as close to the input as 2 ("near best") did, in about
half the time; 7 and above skip the psychoacoustic model and lose spectral detail
(``bench/encode.py`` measures all three, speed and fidelity)."""
MP3_QUALITY_RANGE = (0, 9)
DEFAULT_OPUS_KBPS = 48
OPUS_KBPS_RANGE = (6, 256)
# libopus through FFmpeg, for speech files (see the module docstring and bench/encode.py).
OPUS_OPTIONS = {
    "application": "lowdelay",
    "compression_level": "3",
    "frame_duration": "20",
    "vbr": "constrained",
}

# MPEG audio layer III tables (ISO 11172-3, 13818-3): version bits -> sample rates, and
# MPEG-1 / MPEG-2 and 2.5 bitrates by header index.
_MPEG_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}
_MPEG1_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_LAME_ENCODER_DELAY = 576  # samples lame's encoder adds up front; decoders add their 529
_MAX_PADDING = 4095  # 12 bits in the LAME tag
_TAG_BYTES = 16 + 36  # Info fields (id, flags, frames, bytes) and the LAME extension
_BLOCK_SECONDS = 10  # audio encoded between two progress reports


class EncodedAudio(NamedTuple):
    """An encoded file: its bytes, format, Content-Type, actual sample rate and duration."""

    data: bytes
    format: OutputFormat
    content_type: str
    sample_rate: int
    duration_seconds: float


def output_rate(fmt: OutputFormat | str, input_rate: int, requested: int | None = None) -> int:
    """Return the sample rate ``fmt`` will be written at for ``input_rate`` audio.

    ``requested`` asks for an exact rate; without it WAV, FLAC and PCM keep the input rate,
    Opus and MP3 take their nearest supported rate at or above it (the highest if none is).

    Raises:
        ValueError: the format cannot be written at ``requested`` or the rate is not positive.
    """
    kind = OutputFormat(fmt)
    if input_rate <= 0 or (requested is not None and requested <= 0):
        raise ValueError("sample rates must be positive")
    allowed = {OutputFormat.OGG_OPUS: OPUS_RATES, OutputFormat.MP3: MP3_RATES}.get(kind)
    if requested is not None:
        if allowed is not None and requested not in allowed:
            rates = ", ".join(str(rate) for rate in allowed)
            raise ValueError(f"{kind.value} supports sample rates {rates} only, not {requested}")
        return requested
    if allowed is None:
        return input_rate
    return next((rate for rate in allowed if rate >= input_rate), allowed[-1])


def encode(
    pcm: bytes,
    sample_rate: int,
    fmt: OutputFormat | str,
    *,
    target_rate: int | None = None,
    mp3_kbps: int = DEFAULT_MP3_KBPS,
    opus_kbps: int = DEFAULT_OPUS_KBPS,
    mp3_quality: int = MP3_QUALITY,
    on_progress: Callable[[float], None] | None = None,
) -> EncodedAudio:
    """Return ``pcm`` (16-bit little-endian mono at ``sample_rate``) encoded as ``fmt``.

    The audio is resampled first when the format needs another rate, or to ``target_rate``
    when given (see ``output_rate``). ``mp3_kbps`` is the constant MP3 bitrate,
    ``opus_kbps`` the Opus bitrate (constrained VBR), ``mp3_quality`` lame's algorithm
    choice (``MP3_QUALITY``). ``on_progress`` is called with the
    fraction encoded (0..1) as the encoder goes through the audio in blocks (long MP3 and
    Opus encodes take seconds); the bytes are the same.

    Raises:
        ValueError: ``pcm`` holds no samples, ``fmt`` is unknown, the rate is not possible
            for the format, ``mp3_kbps`` is not an MPEG bitrate for the output rate,
            ``mp3_quality`` is outside 0..9, or ``opus_kbps`` is outside 6..256.
    """
    kind = OutputFormat(fmt)
    if len(pcm) < SAMPLE_WIDTH:
        raise ValueError("cannot encode empty audio: the PCM holds no samples")
    rate = output_rate(kind, sample_rate, target_rate)
    usable = pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH]
    converted = resample(usable, sample_rate, rate)
    # PCM, WAV and MP3 take the bytes as they are (no int16 array, no copy); Opus and
    # FLAC go through arrays.
    if kind is OutputFormat.PCM:
        data = converted
    elif kind is OutputFormat.WAV:
        data = _encode_wav(converted, rate)
    elif kind is OutputFormat.MP3:
        encoder = mp3_encoder(rate, mp3_kbps, mp3_quality)
        data = _encode_mp3(converted, rate, encoder, on_progress)
    elif kind is OutputFormat.OGG_OPUS:
        data = _encode_opus(to_samples(converted), rate, opus_kbps, on_progress)
    else:
        data = _encode_flac(to_samples(converted), rate, on_progress)
    if on_progress is not None:
        on_progress(1.0)
    return EncodedAudio(
        data=data,
        format=kind,
        content_type=content_type_of(kind, rate),
        sample_rate=rate,
        duration_seconds=len(converted) // SAMPLE_WIDTH / rate,
    )


_WAV_UNKNOWN_SIZE = 0xFFFFFFFF


def wav_header(rate: int, data_size: int | None) -> bytes:
    """Return the canonical 44-byte header of mono 16-bit PCM wav (as ``wave`` and
    libsndfile write it, tested) for ``data_size`` bytes of samples.

    ``None``: the length is not known yet (a stream), and both sizes are 0xFFFFFFFF
    ("until the end of the stream"), as streaming WAV writers do.
    """
    riff_size = _WAV_UNKNOWN_SIZE if data_size is None else 36 + data_size
    return (
        struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        + struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, rate, rate * SAMPLE_WIDTH, 2, 16)
        + struct.pack("<4sI", b"data", _WAV_UNKNOWN_SIZE if data_size is None else data_size)
    )


def _encode_wav(pcm: bytes, rate: int) -> bytes:
    # The samples are copied once, behind the header.
    return wav_header(rate, len(pcm)) + pcm


def _encode_flac(
    samples: npt.NDArray[np.int16],
    rate: int,
    on_progress: Callable[[float], None] | None = None,
) -> bytes:
    buffer = io.BytesIO()
    if on_progress is None:
        soundfile.write(buffer, samples, rate, format="FLAC", subtype="PCM_16")
        return buffer.getvalue()
    with soundfile.SoundFile(buffer, "w", rate, 1, "PCM_16", format="FLAC") as writer:
        for end, block in _blocks(samples, rate):
            writer.write(block)
            on_progress(end / len(samples))
    return buffer.getvalue()


def _encode_opus(
    samples: npt.NDArray[np.int16],
    rate: int,
    kbps: int,
    on_progress: Callable[[float], None] | None = None,
) -> bytes:
    buffer = io.BytesIO()
    writer = OggOpusWriter(buffer, rate, kbps)
    blocks = _blocks(samples, rate) if on_progress is not None else [(len(samples), samples)]
    for end, block in blocks:
        writer.write(block)
        if on_progress is not None:
            on_progress(end / len(samples))
    writer.close()
    return buffer.getvalue()


class OggOpusWriter:
    """Mono 16-bit samples into Ogg Opus: libopus through PyAV with ``OPUS_OPTIONS``.

    Pages go to ``sink`` as FFmpeg's Ogg muxer completes them: with ``page_ms``, a page
    holds at most that much audio (a stream's listener gets each piece soon after it is
    written); without, the muxer's default of a second (fewer page headers, for files).
    """

    def __init__(
        self,
        sink: BinaryIO,
        rate: int,
        kbps: int = DEFAULT_OPUS_KBPS,
        *,
        page_ms: float | None = None,
    ) -> None:
        low, high = OPUS_KBPS_RANGE
        if not low <= kbps <= high:
            raise ValueError(f"opus_kbps must be between {low} and {high}, not {kbps}")
        options = {"page_duration": str(round(page_ms * 1000))} if page_ms else {}
        self._container = av.open(sink, "w", format="ogg", container_options=options)
        stream = self._container.add_stream("libopus", rate=rate, options=dict(OPUS_OPTIONS))
        stream.layout = "mono"
        stream.bit_rate = kbps * 1000
        self._stream = stream
        self._rate = rate
        self._position = 0

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        """Encode ``samples``; the muxer writes whatever pages they complete."""
        if not len(samples):
            return
        frame = av.AudioFrame.from_ndarray(
            samples.astype("<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self._rate
        frame.pts = self._position
        self._position += len(samples)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Encode what libopus still holds and write the last page."""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()


def _block_bounds(count: int, rate: int) -> Iterator[tuple[int, int]]:
    """Yield (start, end) sample indexes over ``count`` samples in blocks of
    ``_BLOCK_SECONDS`` (what the encoders report progress by)."""
    size = max(1, rate * _BLOCK_SECONDS)
    for start in range(0, count, size):
        yield start, min(start + size, count)


def _blocks(
    samples: npt.NDArray[np.int16], rate: int
) -> Iterator[tuple[int, npt.NDArray[np.int16]]]:
    """Yield (end sample, block) over ``samples`` in blocks of ``_BLOCK_SECONDS``."""
    for start, end in _block_bounds(len(samples), rate):
        yield end, samples[start:end]


def mp3_encoder(rate: int, kbps: int = DEFAULT_MP3_KBPS, quality: int = MP3_QUALITY) -> Any:
    """Return a mono lame encoder at ``rate`` (kept: lame would lower it for low
    bitrates), ``kbps`` constant bitrate and algorithm ``quality``.

    Raises:
        ValueError: ``kbps`` is not an MPEG bitrate at ``rate`` or ``quality`` is not 0..9.
    """
    allowed = _MPEG1_KBPS if rate >= 32_000 else _MPEG2_KBPS
    if kbps not in allowed[1:]:
        choices = ", ".join(str(value) for value in allowed[1:])
        raise ValueError(f"MP3 at {rate} Hz takes a bitrate of {choices} kbps, not {kbps}")
    low, high = MP3_QUALITY_RANGE
    if not low <= quality <= high:
        raise ValueError(f"mp3 quality must be between {low} and {high}, not {quality}")
    encoder = lameenc.Encoder()
    encoder.set_channels(1)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)
    encoder.set_bit_rate(kbps)
    encoder.set_quality(quality)
    return encoder


def _encode_mp3(
    pcm: bytes, rate: int, encoder: Any, on_progress: Callable[[float], None] | None = None
) -> bytes:
    """Return ``pcm`` (whole 16-bit samples) through ``encoder``, with its Info frame."""
    count = len(pcm) // SAMPLE_WIDTH
    if on_progress is None:
        stream = bytes(encoder.encode(pcm)) + bytes(encoder.flush())
        return _with_info_frame(stream, count)
    pieces = []
    for start, end in _block_bounds(count, rate):
        pieces.append(bytes(encoder.encode(pcm[start * SAMPLE_WIDTH : end * SAMPLE_WIDTH])))
        on_progress(end / count)
    pieces.append(bytes(encoder.flush()))
    return _with_info_frame(b"".join(pieces), count)


class _FrameHeader(NamedTuple):
    word: int
    mpeg1: bool
    size: int  # bytes, without the padding byte

    @property
    def samples(self) -> int:
        return 1152 if self.mpeg1 else 576


def _frame_header(data: bytes, position: int) -> tuple[_FrameHeader, int]:
    (word,) = struct.unpack_from(">I", data, position)
    version, bitrate_index, rate_index = (word >> 19) & 3, (word >> 12) & 15, (word >> 10) & 3
    if word >> 21 != 0x7FF or version == 1 or rate_index == 3 or bitrate_index in (0, 15):
        raise ValueError("lame produced an unexpected MP3 frame")
    mpeg1 = version == 3
    kbps = (_MPEG1_KBPS if mpeg1 else _MPEG2_KBPS)[bitrate_index]
    size = (144 if mpeg1 else 72) * kbps * 1000 // _MPEG_RATES[version][rate_index]
    padding = (word >> 9) & 1
    return _FrameHeader(word, mpeg1, size), size + padding


def _with_info_frame(stream: bytes, sample_count: int) -> bytes:
    # A Xing "Info" frame (CBR) with a LAME extension: frame count, byte count, and the
    # encoder delay / end padding that gapless decoders trim (12 bits each).
    first, _ = _frame_header(stream, 0)
    frames, position = 0, 0
    while position + 4 <= len(stream):
        _, length = _frame_header(stream, position)
        position += length
        frames += 1
    padding = frames * first.samples - _LAME_ENCODER_DELAY - sample_count
    padding = min(max(padding, 0), _MAX_PADDING)
    offset = 4 + (17 if first.mpeg1 else 9)  # after the (empty) side information
    header = _roomy_header(first, offset + _TAG_BYTES)
    tag = bytearray(header.size)
    struct.pack_into(">I", tag, 0, header.word)
    struct.pack_into(">4sIII", tag, offset, b"Info", 0x3, frames, len(stream) + len(tag))
    lame = offset + 16
    tag[lame : lame + 9] = b"LAME3.100"
    tag[lame + 9] = 0x01  # tag revision 0, constant bitrate
    delay_padding = (_LAME_ENCODER_DELAY << 12) | padding
    tag[lame + 21 : lame + 24] = delay_padding.to_bytes(3, "big")
    struct.pack_into(">H", tag, lame + 34, _crc16(bytes(tag[: lame + 34])))
    return bytes(tag) + stream


def with_gapless_tag(stream: bytes, sample_count: int) -> bytes:
    """Return lame's MP3 ``stream`` of ``sample_count`` samples behind the LAME "Info"
    frame that ``encode`` writes (for MP3 encoded a piece at a time)."""
    return _with_info_frame(stream, sample_count)


def _roomy_header(first: _FrameHeader, needed: int) -> _FrameHeader:
    # At low bitrates and high rates a frame is too small for the tag: raise the tag
    # frame's own bitrate (decoders accept a different bitrate in the first frame).
    word = first.word & ~(1 << 9)
    for index in range((word >> 12) & 15, 15):
        candidate = (word & ~(15 << 12)) | (index << 12)
        header, _ = _frame_header(struct.pack(">I", candidate), 0)
        if header.size >= needed:
            return header
    raise ValueError("no MPEG frame is large enough for the gapless tag")


def _crc16(data: bytes) -> int:
    # CRC-16/ARC over the tag, as the LAME tag specification asks.
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def decode_duration(
    data: bytes, fmt: OutputFormat | str, *, sample_rate: int | None = None
) -> float:
    """Return the playing time in seconds of an encoded file, by decoding it.

    Raw ``pcm`` has no header, so its ``sample_rate`` must be given.

    Raises:
        ValueError: the data is not a readable file of that format, or ``pcm`` lacks a rate.
    """
    kind = OutputFormat(fmt)
    if kind is OutputFormat.PCM:
        if not sample_rate:
            raise ValueError("raw PCM needs its sample rate to have a duration")
        return len(data) // SAMPLE_WIDTH / sample_rate
    try:
        if kind is OutputFormat.MP3:
            # A header-derived length is an estimate for MP3; count decoded samples instead.
            samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
            return int(samples.shape[0]) / int(rate)
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(f"not a readable {kind.value} file") from exc
    return int(info.frames) / int(info.samplerate)
