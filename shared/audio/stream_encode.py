"""Encoding 16-bit mono PCM a piece at a time, for responses that stream as audio is made.

``stream_encoder`` returns a ``StreamEncoder`` for pcm, wav, mp3 or ogg_opus: ``start``
gives the bytes that open the stream, ``write`` the bytes that a piece of PCM completes,
``finish`` the rest; played in sequence, every prefix of those bytes is playable audio.
``file`` then returns the whole result as ``encode`` would store it (an ``EncodedAudio``):

- pcm: the samples themselves;
- wav: the stream opens with a header whose RIFF and data sizes are 0xFFFFFFFF ("until the
  end of the stream", as streaming WAV writers do, since the length is not known); the
  stored file has the true sizes;
- mp3: lame's frames as they fill; the stored file is those frames behind the LAME "Info"
  frame (gapless playback), as ``encode`` writes it;
- ogg_opus: libopus through PyAV with ``encode``'s settings (``OggOpusWriter``), in Ogg pages
  of at most ``OGG_PAGE_MS`` of audio rather than the muxer's second; the stored file is
  the same bytes, and decodes to the samples ``encode``'s file of the same audio does.

FLAC needs its total length up front and is not streamed. Only the encoded stream is kept
(for ``file``), never the PCM written, so a long stream's memory is its encoded size.
Rates follow ``output_rate``; resampling (Opus at 24 kHz for 22.05 kHz eSpeak) keeps its
state across pieces, so the joins are seamless.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from shared.audio.encode import (
    EncodedAudio,
    OggOpusWriter,
    mp3_encoder,
    output_rate,
    wav_header,
    with_gapless_tag,
)
from shared.audio.formats import OutputFormat, content_type_of
from shared.audio.pcm import SAMPLE_WIDTH
from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import soxr  # type: ignore[import-untyped]  # no type hints shipped
else:
    np = lazy_module("numpy")
    soxr = lazy_module("soxr")

STREAMED_FORMATS = (OutputFormat.PCM, OutputFormat.WAV, OutputFormat.MP3, OutputFormat.OGG_OPUS)
OGG_PAGE_MS = 100.0


class StreamEncoder:
    """Encodes PCM at ``input_rate`` piece by piece into ``format`` at ``sample_rate``."""

    def __init__(self, fmt: OutputFormat, input_rate: int, sample_rate: int) -> None:
        self.format = fmt
        self.input_rate = input_rate
        self.sample_rate = sample_rate
        self.content_type = content_type_of(fmt, sample_rate)
        self._resampler = (
            soxr.ResampleStream(input_rate, sample_rate, 1, dtype="int16", quality="HQ")
            if input_rate != sample_rate
            else None
        )
        self._samples = 0  # written so far, at the output rate
        self._sent = bytearray()  # the encoded stream as sent
        self._finished = False

    def start(self) -> bytes:
        """Return the bytes that open the stream (a header, or nothing)."""
        return self._send(self._opening())

    def write(self, pcm: bytes) -> bytes:
        """Return the encoded bytes ``pcm`` (16-bit little-endian) completes."""
        usable = pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH]
        return self._send(self._encode(self._resampled(usable, last=False)))

    def finish(self) -> bytes:
        """Return the bytes that end the stream (the encoder's buffered audio)."""
        tail = self._resampled(b"", last=True)
        data = self._encode(tail) + self._close()
        self._finished = True
        return self._send(data)

    def file(self) -> EncodedAudio:
        """Return the whole audio as stored (after ``finish``).

        Raises:
            ValueError: the stream holds no samples, or is not finished.
        """
        if not self._finished:
            raise ValueError("the stream is not finished")
        samples = self._samples
        if samples == 0:
            raise ValueError("cannot store empty audio: the stream held no samples")
        return EncodedAudio(
            self._stored(),
            self.format,
            self.content_type,
            self.sample_rate,
            samples / self.sample_rate,
        )

    @property
    def duration_seconds(self) -> float:
        """Return the seconds of audio written so far."""
        return self._samples / self.sample_rate

    def _send(self, data: bytes) -> bytes:
        self._sent.extend(data)
        return data

    def _resampled(self, pcm: bytes, *, last: bool) -> bytes:
        if self._resampler is None:
            converted = pcm
        else:
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
            out = self._resampler.resample_chunk(samples, last=last)
            converted = np.asarray(out, dtype="<i2").tobytes()
        self._samples += len(converted) // SAMPLE_WIDTH
        return converted

    def _opening(self) -> bytes:
        return b""

    def _encode(self, pcm: bytes) -> bytes:
        return pcm

    def _close(self) -> bytes:
        return b""

    def _stored(self) -> bytes:
        # The file as ``encode`` writes it; for raw PCM, the stream itself.
        return bytes(self._sent)


class _WavStream(StreamEncoder):
    def _opening(self) -> bytes:
        return wav_header(self.sample_rate, None)

    def _stored(self) -> bytes:
        # The header with the true sizes, as ``encode`` writes it, over the streamed one
        # (the same length): the samples are copied once.
        header = wav_header(self.sample_rate, self._samples * SAMPLE_WIDTH)
        self._sent[: len(header)] = header
        return bytes(self._sent)


class _Mp3Stream(StreamEncoder):
    def __init__(self, fmt: OutputFormat, input_rate: int, sample_rate: int) -> None:
        super().__init__(fmt, input_rate, sample_rate)
        self._encoder = mp3_encoder(sample_rate)

    def _encode(self, pcm: bytes) -> bytes:
        return bytes(self._encoder.encode(pcm)) if pcm else b""

    def _close(self) -> bytes:
        # lame refuses to flush an encoder that was never given samples.
        return bytes(self._encoder.flush()) if self._samples else b""

    def _stored(self) -> bytes:
        return with_gapless_tag(bytes(self._sent), self._samples)


class _OggOpusStream(StreamEncoder):
    def __init__(self, fmt: OutputFormat, input_rate: int, sample_rate: int) -> None:
        super().__init__(fmt, input_rate, sample_rate)
        self._buffer = io.BytesIO()
        # Pages of OGG_PAGE_MS rather than the muxer's second: each sentence's audio goes
        # out as soon as it is encoded.
        self._writer = OggOpusWriter(self._buffer, sample_rate, page_ms=OGG_PAGE_MS)
        self._taken = 0

    def _encode(self, pcm: bytes) -> bytes:
        self._writer.write(np.frombuffer(pcm, dtype="<i2"))
        return self._take()

    def _close(self) -> bytes:
        self._writer.close()
        return self._take()

    def _take(self) -> bytes:
        with self._buffer.getbuffer() as view:
            data = bytes(view[self._taken :])
        self._taken += len(data)
        return data


_ENCODERS: dict[OutputFormat, type[StreamEncoder]] = {
    OutputFormat.PCM: StreamEncoder,
    OutputFormat.WAV: _WavStream,
    OutputFormat.MP3: _Mp3Stream,
    OutputFormat.OGG_OPUS: _OggOpusStream,
}


def stream_encoder(
    fmt: OutputFormat, input_rate: int, target_rate: int | None = None
) -> StreamEncoder:
    """Return an encoder of PCM at ``input_rate`` into ``fmt`` (see ``output_rate``).

    Raises:
        ValueError: ``fmt`` is not streamed (FLAC) or cannot be written at the rate.
    """
    kind = _ENCODERS.get(fmt)
    if kind is None:
        names = ", ".join(f.value for f in STREAMED_FORMATS)
        raise ValueError(f"{fmt.value} cannot be streamed; stream one of {names}")
    return kind(fmt, input_rate, output_rate(fmt, input_rate, target_rate))
