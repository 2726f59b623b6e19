"""Uploaded audio: the format told from the bytes, decoded to mono, damage refused clearly."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile

from shared import errors
from shared.audio.decoding import (
    AudioFormat,
    CorruptAudioError,
    UnsupportedAudioFormatError,
    decode,
    probe,
    sniff_format,
)
from shared.http import status_for
from tests.support.speech import lame_mp3, speak

RATE = 22_050


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speak("Hello there, this is a short voice sample.")


def encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def id3_tag(payload: bytes = b"TIT2\x00\x00\x00\x06\x00\x00\x03Voice") -> bytes:
    size = len(payload)
    synchsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + synchsafe + payload


@pytest.fixture(scope="module")
def files(speech) -> dict[str, bytes]:
    stereo = np.stack([speech, np.zeros_like(speech)], axis=1)
    at_48k = speak("Hello there, this is a short voice sample.", sample_rate=48_000)
    return {
        "wav": encoded(speech, RATE, "WAV", "PCM_16"),
        "wav_float_stereo": encoded(stereo, RATE, "WAV", "FLOAT"),
        "flac": encoded(speech, RATE, "FLAC"),
        "flac_stereo": encoded(stereo, RATE, "FLAC"),
        "ogg_vorbis": encoded(speech, RATE, "OGG", "VORBIS"),
        "ogg_opus": encoded(at_48k, 48_000, "OGG", "OPUS"),
        "mp3_lame": lame_mp3(speech),
        "mp3_id3": id3_tag() + lame_mp3(speech),
        "mp3_libsndfile": encoded(speech, RATE, "MP3", "MPEG_LAYER_III"),
    }


EXPECTED = {
    "wav": (AudioFormat.WAV, "PCM_16", RATE, 1),
    "wav_float_stereo": (AudioFormat.WAV, "FLOAT", RATE, 2),
    "flac": (AudioFormat.FLAC, "PCM_16", RATE, 1),
    "flac_stereo": (AudioFormat.FLAC, "PCM_16", RATE, 2),
    "ogg_vorbis": (AudioFormat.OGG, "VORBIS", RATE, 1),
    "ogg_opus": (AudioFormat.OGG, "OPUS", 48_000, 1),
    "mp3_lame": (AudioFormat.MP3, "MPEG_LAYER_III", RATE, 1),
    "mp3_id3": (AudioFormat.MP3, "MPEG_LAYER_III", RATE, 1),
    "mp3_libsndfile": (AudioFormat.MP3, "MPEG_LAYER_III", RATE, 1),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_format_is_recognised_from_its_bytes_and_decoded_with_its_facts(files, speech, name):
    audio_format, codec, rate, channels = EXPECTED[name]
    seconds = len(speech) / RATE

    decoded = decode(files[name])

    assert sniff_format(files[name]) is audio_format
    assert (decoded.format, decoded.codec, decoded.sample_rate) == (audio_format, codec, rate)
    assert decoded.channels == channels
    assert decoded.samples.ndim == 1
    assert decoded.samples.dtype == np.float32
    # Lossy codecs add encoder delay and padding (lameenc writes no gapless Info frame).
    assert decoded.duration_seconds == pytest.approx(seconds, abs=0.1)
    facts = probe(files[name])
    assert (facts.format, facts.sample_rate, facts.channels) == (audio_format, rate, channels)
    assert facts.duration_seconds == pytest.approx(seconds, abs=0.1)


@pytest.mark.parametrize("name", ["wav", "flac"])
def test_lossless_files_decode_to_their_samples(files, speech, name):
    decoded = decode(files[name])

    np.testing.assert_allclose(decoded.samples, speech, atol=1 / 32768)


def test_stereo_is_averaged_to_mono(files, speech):
    decoded = decode(files["flac_stereo"])

    np.testing.assert_allclose(decoded.samples, speech / 2, atol=1 / 32768)


@pytest.mark.parametrize("name", ["ogg_vorbis", "mp3_lame", "mp3_id3"])
def test_lossy_files_keep_the_speech_level(files, speech, name):
    decoded = decode(files[name])

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x**2)))

    assert rms(decoded.samples) == pytest.approx(rms(speech), rel=0.1)


def test_a_tag_in_front_of_flac_is_skipped(files):
    assert sniff_format(id3_tag() + files["flac"]) is AudioFormat.FLAC


NOT_AUDIO = {
    "empty": b"",
    "text": b"Hello, this is not audio at all." * 10,
    "png": b"\x89PNG\r\n\x1a\n" + bytes(200),
    "m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + bytes(200),
    "aac_adts": b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(200),
    "riff_avi": b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(200),
    "lone_sync_word": b"\xff\xfb\x90\x64" + b"\x55" * 1000,
    "id3_without_audio": id3_tag() + b"just text after the tag" * 5,
}


@pytest.mark.parametrize("name", sorted(NOT_AUDIO))
def test_other_content_is_refused_as_unsupported(name):
    with pytest.raises(UnsupportedAudioFormatError) as caught:
        decode(NOT_AUDIO[name])

    assert status_for(caught.value) == 415
    assert "wav, mp3, flac or ogg" in caught.value.message


def test_the_file_name_plays_no_part_a_wav_is_a_wav_whatever_it_was_called(files):
    # The API takes bytes only; a renamed mp3 is still told apart from the wav.
    assert sniff_format(files["mp3_lame"]) is AudioFormat.MP3
    assert sniff_format(files["wav"]) is AudioFormat.WAV


def damaged(files: dict[str, bytes]) -> dict[str, bytes]:
    wav = files["wav"]
    return {
        "wav_truncated": wav[: len(wav) // 2],
        "wav_header_only": wav[:44],
        "wav_garbage_after_header": wav[:12] + b"\x13\x37" * 400,
        "flac_truncated": files["flac"][: len(files["flac"]) // 2],
        "flac_garbage": b"fLaC" + bytes(range(256)) * 4,
        "ogg_truncated": files["ogg_vorbis"][: len(files["ogg_vorbis"]) // 2],
        "ogg_garbage": b"OggS" + bytes(range(256)) * 4,
        "opus_truncated": files["ogg_opus"][:200],
    }


@pytest.mark.parametrize(
    "name",
    [
        "wav_truncated",
        "wav_header_only",
        "wav_garbage_after_header",
        "flac_truncated",
        "flac_garbage",
        "ogg_truncated",
        "ogg_garbage",
        "opus_truncated",
    ],
)
def test_damaged_files_are_refused_as_corrupt(files, name):
    data = damaged(files)[name]

    with pytest.raises(CorruptAudioError) as caught:
        decode(data)

    assert isinstance(caught.value, errors.InvalidRequestError)
    assert status_for(caught.value) == 400


def test_a_wav_written_while_streaming_without_its_final_size_still_decodes(files, speech):
    wav = bytearray(files["wav"])
    data_at = wav.index(b"data")
    wav[data_at + 4 : data_at + 8] = struct.pack("<I", 0xFFFFFFFF)

    decoded = decode(bytes(wav))

    assert decoded.frames == len(speech)


def test_a_cut_mp3_decodes_what_it_holds(files, speech):
    mp3 = files["mp3_lame"]

    decoded = decode(mp3[: len(mp3) // 2])

    assert 0.3 < decoded.duration_seconds / (len(speech) / RATE) < 0.7
