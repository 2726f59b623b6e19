"""Encoding a long audio file a piece at a time, into the bytes ``encode`` writes.

``file_encoder`` returns a ``StreamEncoder`` (``shared.audio.stream_encode``) for every
format, for work that is stored rather than streamed, such as a long job's assembly: only
the encoded file grows, the PCM passes through a piece at a time. pcm, wav and mp3 are the
streamed encoders (their ``file`` is ``encode``'s bytes). ogg_opus is ``encode``'s
``OggOpusWriter`` with its one-second pages (the streamed encoder's are shorter); flac is
libsndfile writing into a seekable buffer, which a file allows and a stream does not (its
header is written at the end). These two return nothing from ``write`` and ``finish``: the
file is whole only at the end. Resampling keeps
its state across pieces; it differs from ``encode``'s one-shot resampling by a sample value
or two at most, so only resampled output is not byte for byte ``encode``'s.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from shared.audio.encode import OggOpusWriter, output_rate
from shared.audio.formats import OutputFormat
from shared.audio.stream_encode import StreamEncoder, stream_encoder
from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import soundfile  # type: ignore[import-untyped]  # no type hints shipped
else:
    np = lazy_module("numpy")
    soundfile = lazy_module("soundfile")


class _OggOpusFile(StreamEncoder):
    def __init__(self, fmt: OutputFormat, input_rate: int, sample_rate: int) -> None:
        super().__init__(fmt, input_rate, sample_rate)
        self._buffer = io.BytesIO()
        self._writer = OggOpusWriter(self._buffer, sample_rate)  # encode's pages, a second

    def _encode(self, pcm: bytes) -> bytes:
        self._writer.write(np.frombuffer(pcm, dtype="<i2"))
        return b""

    def _close(self) -> bytes:
        self._writer.close()
        return b""

    def _stored(self) -> bytes:
        return self._buffer.getvalue()


class _FlacFile(StreamEncoder):
    def __init__(self, fmt: OutputFormat, input_rate: int, sample_rate: int) -> None:
        super().__init__(fmt, input_rate, sample_rate)
        self._buffer = io.BytesIO()
        self._writer = soundfile.SoundFile(
            self._buffer, "w", sample_rate, 1, "PCM_16", format="FLAC"
        )

    def _encode(self, pcm: bytes) -> bytes:
        if pcm:
            self._writer.write(np.frombuffer(pcm, dtype="<i2"))
        return b""

    def _close(self) -> bytes:
        self._writer.close()
        return b""

    def _stored(self) -> bytes:
        return self._buffer.getvalue()


_FILE_ENCODERS: dict[OutputFormat, type[StreamEncoder]] = {
    OutputFormat.OGG_OPUS: _OggOpusFile,
    OutputFormat.FLAC: _FlacFile,
}


def file_encoder(
    fmt: OutputFormat | str, input_rate: int, target_rate: int | None = None
) -> StreamEncoder:
    """Return an encoder of PCM at ``input_rate`` into a ``fmt`` file (see ``output_rate``).

    Raises:
        ValueError: ``fmt`` is unknown or cannot be written at the rate.
    """
    kind = OutputFormat(fmt)
    encoder = _FILE_ENCODERS.get(kind)
    if encoder is None:
        return stream_encoder(kind, input_rate, target_rate)
    return encoder(kind, input_rate, output_rate(kind, input_rate, target_rate))
