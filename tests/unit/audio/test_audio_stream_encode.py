"""Encoding PCM a piece at a time: every prefix of the stream plays, the stored file is
the whole audio in the format ``encode`` writes."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]

from shared.audio.encode import decode_duration, encode
from shared.audio.formats import OutputFormat
from shared.audio.pcm import decode_audio, resample
from shared.audio.stream_encode import OGG_PAGE_MS, stream_encoder

RATE = 22_050


def tone(seconds: float, frequency: float = 220.0) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * frequency * t) * 8000).astype("<i2").tobytes()


def streamed(fmt: OutputFormat, pieces: list[bytes]) -> tuple[list[bytes], object]:
    encoder = stream_encoder(fmt, RATE)
    chunks = [encoder.start() + encoder.write(pieces[0])]
    chunks += [encoder.write(piece) for piece in pieces[1:]]
    chunks.append(encoder.finish())
    return chunks, encoder.file()


@pytest.mark.parametrize("fmt", [OutputFormat.MP3, OutputFormat.OGG_OPUS])
def test_each_prefix_of_a_compressed_stream_decodes_and_grows(fmt):
    chunks, _ = streamed(fmt, [tone(0.5)] * 4)
    played = []
    for count in range(1, len(chunks) + 1):
        samples, rate = soundfile.read(io.BytesIO(b"".join(chunks[:count])), dtype="int16")
        played.append(len(samples) / rate)
    assert played == sorted(played)
    # Most of the first piece is audible before the second is written: held back are the
    # open Ogg page (up to OGG_PAGE_MS) and the resampler's and encoder's delay.
    assert played[0] >= 0.5 - OGG_PAGE_MS / 1000 - 0.15
    assert played[-1] == pytest.approx(2.0, abs=0.07)


def test_stored_mp3_is_the_streamed_frames_behind_the_gapless_tag():
    chunks, stored = streamed(OutputFormat.MP3, [tone(0.5)] * 4)
    stream = b"".join(chunks)
    assert stored.data.endswith(stream)
    assert stored.data[: len(stored.data) - len(stream)].find(b"Info") >= 0
    # Gapless: exactly the samples written, as encode's own files decode.
    assert decode_duration(stored.data, "mp3") == pytest.approx(2.0, abs=1 / RATE)


def test_wav_streams_with_unknown_sizes_and_is_stored_with_true_ones():
    pieces = [tone(0.25), tone(0.25, 330.0)]
    chunks, stored = streamed(OutputFormat.WAV, pieces)
    stream = b"".join(chunks)
    assert struct.unpack_from("<I", stream, 4)[0] == 0xFFFFFFFF
    assert struct.unpack_from("<I", stream, 40)[0] == 0xFFFFFFFF
    assert stream[44:] == b"".join(pieces)
    assert stored.data == encode(b"".join(pieces), RATE, "wav").data


def test_resampling_across_pieces_is_seamless():
    # One resampler runs across the pieces: the result is the whole audio resampled at
    # once, the join included (piecewise resampling would click there).
    whole = tone(1.0)
    encoder = stream_encoder(OutputFormat.PCM, RATE, 24_000)
    out = encoder.write(whole[: 10_001 * 2]) + encoder.write(whole[10_001 * 2 :]) + encoder.finish()
    at_once = np.frombuffer(resample(whole, RATE, 24_000), dtype="<i2").astype(int)
    pieces = np.frombuffer(out, dtype="<i2").astype(int)
    assert len(pieces) == pytest.approx(len(at_once), abs=2)
    common = min(len(pieces), len(at_once))
    assert np.abs(pieces[:common] - at_once[:common]).max() < 80  # of 8000: filter rounding
    ogg = stream_encoder(OutputFormat.OGG_OPUS, RATE)
    ogg.start()
    ogg.write(whole[:20_000])
    ogg.write(whole[20_000:])
    ogg.finish()
    assert ogg.file().sample_rate == 24_000
    assert decode_duration(ogg.file().data, "ogg_opus") == pytest.approx(1.0, abs=0.002)


def test_flac_is_not_streamed():
    with pytest.raises(ValueError, match="flac cannot be streamed"):
        stream_encoder(OutputFormat.FLAC, RATE)


def test_a_stream_without_samples_stores_nothing():
    encoder = stream_encoder(OutputFormat.MP3, RATE)
    encoder.start()
    encoder.finish()
    with pytest.raises(ValueError, match="no samples"):
        encoder.file()


def test_streamed_opus_is_encodes_opus_in_shorter_pages():
    # The same encoder and settings as a stored file (libopus through PyAV): at an Opus
    # rate nothing is resampled, and the stream decodes to the samples encode's file does;
    # its pages are shorter, so there are more of them.
    t = np.arange(24_000 * 2) / 24_000
    pcm = (np.sin(2 * np.pi * 180 * t) * 9000).astype("<i2").tobytes()
    encoder = stream_encoder(OutputFormat.OGG_OPUS, 24_000)
    stream = encoder.start() + b"".join(
        encoder.write(pcm[start : start + 9_000]) for start in range(0, len(pcm), 9_000)
    )
    stream += encoder.finish()
    whole = encode(pcm, 24_000, OutputFormat.OGG_OPUS)
    assert encoder.file().data == stream
    assert decode_audio(stream) == decode_audio(whole.data)
    assert stream.count(b"OggS") > 3 * whole.data.count(b"OggS")
