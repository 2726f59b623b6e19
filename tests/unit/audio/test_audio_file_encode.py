"""Encoding a file a piece at a time: the bytes (or, resampled, the sound) ``encode`` writes."""

from __future__ import annotations

import numpy as np
import pytest

from shared.audio.encode import encode
from shared.audio.file_encode import file_encoder
from shared.audio.formats import OutputFormat
from shared.audio.pcm import decode_audio

RATE = 22_050


def speechlike(seconds: float, rate: int = RATE) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    wave = np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * 9000
    return (wave + rng.standard_normal(len(t)) * 400).astype("<i2").tobytes()


def in_pieces(fmt: OutputFormat, pcm: bytes, rate: int, target: int | None = None):
    encoder = file_encoder(fmt, rate, target)
    encoder.start()
    # Odd-sized pieces, some not a whole Opus or MP3 frame, one empty.
    for start, end in [(0, 10_001), (10_001, 10_001), (10_001, 300_000), (300_000, len(pcm))]:
        encoder.write(pcm[start * 2 : end * 2])
    encoder.finish()
    return encoder.file()


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = np.mean((reference - other) ** 2)
    return float(10 * np.log10(np.mean(reference**2) / max(noise, 1e-12)))


@pytest.mark.parametrize(
    "fmt", [OutputFormat.PCM, OutputFormat.WAV, OutputFormat.MP3, OutputFormat.FLAC]
)
def test_a_file_encoded_in_pieces_is_encodes_file_byte_for_byte(fmt):
    pcm = speechlike(20.0)
    whole = encode(pcm, RATE, fmt)
    pieces = in_pieces(fmt, pcm, RATE)
    assert pieces.data == whole.data
    assert (pieces.content_type, pieces.sample_rate) == (whole.content_type, whole.sample_rate)
    assert pieces.duration_seconds == whole.duration_seconds


def test_opus_in_pieces_decodes_to_encodes_samples():
    # At an Opus rate nothing is resampled: the same encoder settings give the same sound
    # (the Ogg stream's serial number differs from file to file, so the bytes do not).
    pcm = speechlike(20.0, 24_000)
    whole = encode(pcm, 24_000, OutputFormat.OGG_OPUS)
    pieces = in_pieces(OutputFormat.OGG_OPUS, pcm, 24_000)
    assert decode_audio(pieces.data) == decode_audio(whole.data)
    assert pieces.duration_seconds == whole.duration_seconds
    assert pieces.content_type == whole.content_type


@pytest.mark.parametrize(
    ("fmt", "target", "least_snr_db"),
    [
        (OutputFormat.OGG_OPUS, None, 30.0),  # 22.05 -> 24 kHz; measured 45 dB
        (OutputFormat.WAV, 16_000, 60.0),  # a sample value or two apart: about 70 dB
    ],
)
def test_resampled_in_pieces_sounds_as_encodes_file(fmt, target, least_snr_db):
    # Streamed resampling keeps its state across pieces; one-shot resampling of the whole
    # differs from it by a sample value or two, so the files match in sound, not in bytes.
    pcm = speechlike(20.0)
    whole = encode(pcm, RATE, fmt, target_rate=target)
    pieces = in_pieces(fmt, pcm, RATE, target)
    assert pieces.sample_rate == whole.sample_rate != RATE
    assert pieces.duration_seconds == whole.duration_seconds
    ours, rate = decode_audio(pieces.data)
    theirs, _ = decode_audio(whole.data)
    assert rate == whole.sample_rate
    assert len(ours) == len(theirs)
    a = np.frombuffer(ours, "<i2").astype(np.float64)
    b = np.frombuffer(theirs, "<i2").astype(np.float64)
    assert snr_db(b, a) >= least_snr_db


def test_a_file_without_samples_is_refused():
    encoder = file_encoder(OutputFormat.FLAC, RATE)
    encoder.start()
    encoder.finish()
    with pytest.raises(ValueError, match="no samples"):
        encoder.file()
