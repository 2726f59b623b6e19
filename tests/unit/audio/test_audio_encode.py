"""Encoding PCM to every output format: each file decodes back to the audio that went in."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]  # no type hints shipped

from shared.audio.encode import (
    OPUS_RATES,
    decode_duration,
    encode,
    output_rate,
)
from shared.audio.formats import OutputFormat
from shared.audio.pcm import decode_audio, to_samples

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"
RATES = (8_000, 16_000, 22_050, 24_000, 44_100, 48_000)
FORMATS = tuple(OutputFormat)
# Lossless formats are exact to the sample; Opus trims its pre-skip exactly; our MP3
# carries a LAME gapless tag, so it decodes exactly too (a bare LAME stream is ~50-150 ms long).
TOLERANCE = {
    OutputFormat.WAV: 0.0,
    OutputFormat.FLAC: 0.0,
    OutputFormat.PCM: 0.0,
    OutputFormat.OGG_OPUS: 0.001,
    OutputFormat.MP3: 0.001,
}


def tone(rate: int, seconds: float = 1.0, hz: float = 440.0, amplitude: float = 0.5) -> bytes:
    t = np.arange(round(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude * 32767).astype("<i2").tobytes()


def silence(rate: int, seconds: float = 1.0) -> bytes:
    return bytes(2 * round(rate * seconds))


def dominant_hz(pcm: bytes, rate: int) -> float:
    samples = to_samples(pcm).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("signal", ["silence", "tone"])
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_back_to_the_expected_duration(fmt, rate, signal):
    pcm = tone(rate, 1.3) if signal == "tone" else silence(rate, 1.3)

    encoded = encode(pcm, rate, fmt)

    assert encoded.format is fmt
    assert encoded.duration_seconds == pytest.approx(1.3, abs=1 / rate)
    played = decode_duration(encoded.data, fmt, sample_rate=encoded.sample_rate)
    assert played == pytest.approx(encoded.duration_seconds, abs=TOLERANCE[fmt] + 1e-9)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("fmt", [OutputFormat.MP3, OutputFormat.OGG_OPUS, OutputFormat.FLAC])
def test_a_tone_keeps_its_pitch_through_encoding(fmt, rate):
    encoded = encode(tone(rate, 1.0), rate, fmt)

    decoded, decoded_rate = decode_audio(encoded.data)

    assert decoded_rate == encoded.sample_rate
    assert dominant_hz(decoded, decoded_rate) == pytest.approx(440, abs=3)


@pytest.mark.parametrize("rate", [8_000, 22_050, 48_000])
def test_mp3_has_no_encoder_delay_so_timestamps_line_up(rate):
    pcm = np.zeros(rate, dtype="<i2")
    click = rate // 2
    pcm[click : click + 4] = 30_000

    decoded, _ = decode_audio(encode(pcm.tobytes(), rate, "mp3").data)

    heard = int(np.argmax(np.abs(to_samples(decoded))))
    assert abs(heard - click) / rate < 0.002


@pytest.mark.parametrize(
    ("rate", "expected"), [(8_000, 8_000), (11_025, 12_000), (22_050, 24_000), (44_100, 48_000)]
)
def test_opus_uses_the_nearest_supported_rate_at_or_above_the_input(rate, expected):
    encoded = encode(tone(rate, 0.5), rate, OutputFormat.OGG_OPUS)

    assert encoded.sample_rate == expected
    assert soundfile.info(io.BytesIO(encoded.data)).samplerate == expected
    assert encoded.content_type == "audio/ogg"


def test_a_requested_rate_is_produced_exactly():
    encoded = encode(tone(22_050, 1.0), 22_050, "wav", target_rate=16_000)

    info = soundfile.info(io.BytesIO(encoded.data))
    assert (encoded.sample_rate, info.samplerate, info.subtype) == (16_000, 16_000, "PCM_16")
    assert decode_duration(encoded.data, "wav") == pytest.approx(1.0, abs=1 / 16_000)


def test_opus_refuses_a_rate_it_cannot_run_at():
    with pytest.raises(ValueError, match="ogg_opus supports sample rates"):
        encode(tone(22_050, 0.2), 22_050, "ogg_opus", target_rate=22_050)


def test_output_rate_for_opus_above_48k_is_48k():
    assert output_rate("ogg_opus", 96_000) == max(OPUS_RATES)
    assert output_rate("wav", 96_000) == 96_000


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_audio_is_refused_clearly(fmt):
    with pytest.raises(ValueError, match="cannot encode empty audio"):
        encode(b"", 22_050, fmt)


def test_content_types_and_raw_pcm_bytes():
    pcm = tone(16_000, 0.25)

    assert encode(pcm, 16_000, "pcm").data == pcm
    assert encode(pcm, 16_000, "pcm").content_type == "audio/L16;rate=16000;channels=1"
    assert encode(pcm, 16_000, "mp3").content_type == "audio/mpeg"
    assert encode(pcm, 16_000, "wav").content_type == "audio/wav"
    assert encode(pcm, 16_000, "flac").content_type == "audio/flac"


def test_mp3_bitrate_must_exist_for_the_rate():
    with pytest.raises(ValueError, match="MP3 at 16000 Hz takes a bitrate"):
        encode(tone(16_000, 0.2), 16_000, "mp3", mp3_kbps=320)


def test_mp3_bitrate_sets_the_file_size():
    pcm = tone(24_000, 2.0)

    small = encode(pcm, 24_000, "mp3", mp3_kbps=32).data
    large = encode(pcm, 24_000, "mp3", mp3_kbps=128).data

    assert len(small) == pytest.approx(2.0 * 32_000 / 8, rel=0.1)
    assert len(large) == pytest.approx(2.0 * 128_000 / 8, rel=0.1)


def test_decode_duration_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="not a readable flac file"):
        decode_duration(b"definitely not audio", "flac")
    with pytest.raises(ValueError, match="needs its sample rate"):
        decode_duration(b"\x00\x00", "pcm")


def test_opus_bitrate_sets_the_file_size_and_must_be_in_range():
    pcm = tone(24_000, 2.0)

    default = encode(pcm, 24_000, "ogg_opus").data
    larger = encode(pcm, 24_000, "ogg_opus", opus_kbps=96).data

    assert len(larger) > len(default)
    assert decode_duration(larger, "ogg_opus") == pytest.approx(2.0, abs=0.001)
    with pytest.raises(ValueError, match="opus_kbps"):
        encode(pcm, 24_000, "ogg_opus", opus_kbps=300)


def log_spectrogram(samples: np.ndarray, size: int = 480) -> np.ndarray:
    frames = len(samples) // size
    windowed = samples[: frames * size].reshape(frames, size) * np.hanning(size)
    return np.log10(np.abs(np.fft.rfft(windowed, axis=1)) + 1e-4)


@pytest.mark.parametrize("clip", ["tell-me-a-long-story", "good-morning-how-are-you"])
def test_opus_speech_decodes_back_close_to_what_went_in(clip):
    # Recorded eSpeak speech (tests/data/speech), at the 24 kHz synthesis writes Opus at.
    spoken, rate = soundfile.read(SPEECH / f"{clip}.en-US.16000.flac", dtype="int16")
    pcm = encode(spoken.tobytes(), rate, "pcm", target_rate=24_000).data
    original = to_samples(pcm).astype(np.float64) / 32768

    encoded = encode(pcm, 24_000, "ogg_opus")
    decoded, decoded_rate = soundfile.read(io.BytesIO(encoded.data), dtype="float64")

    assert decoded_rate == 24_000
    assert len(decoded) == len(original)  # pre-skip and end trim exact: timestamps hold
    # Sample-aligned waveform and spectrum both stay close (a delay, a wrong rate, or a
    # starved encode drop these: 12 kbps gives 0.92-0.93 and 0.92, 6 kbps 0.77 and 0.81).
    assert np.corrcoef(original, decoded)[0, 1] > 0.95
    spectra = log_spectrogram(original), log_spectrogram(decoded)
    assert np.corrcoef(spectra[0].ravel(), spectra[1].ravel())[0, 1] > 0.95
    seconds = len(original) / 24_000
    assert len(encoded.data) * 8 / seconds / 1000 < 96  # a speech bitrate, not lossless


def decoded_fidelity(pcm: bytes, data: bytes) -> tuple[float, float]:
    """Return the waveform and log-spectrum correlations of ``data`` decoded against ``pcm``."""
    original = to_samples(pcm).astype(np.float64) / 32768
    decoded, _ = soundfile.read(io.BytesIO(data), dtype="float64")
    assert len(decoded) == len(original)  # the gapless tag holds at every quality
    spectra = log_spectrogram(original), log_spectrogram(decoded)
    return (
        float(np.corrcoef(original, decoded)[0, 1]),
        float(np.corrcoef(spectra[0].ravel(), spectra[1].ravel())[0, 1]),
    )


@pytest.mark.parametrize("clip", ["tell-me-a-long-story", "good-morning-how-are-you"])
@pytest.mark.parametrize("rate", [22_050, 24_000])
def test_mp3_speech_at_the_default_quality_is_as_close_as_lames_near_best(clip, rate):
    spoken, spoken_rate = soundfile.read(SPEECH / f"{clip}.en-US.16000.flac", dtype="int16")
    pcm = encode(spoken.tobytes(), spoken_rate, "pcm", target_rate=rate).data

    wave, spectrum = decoded_fidelity(pcm, encode(pcm, rate, "mp3").data)
    _, near_best = decoded_fidelity(pcm, encode(pcm, rate, "mp3", mp3_quality=2).data)
    _, fast = decoded_fidelity(pcm, encode(pcm, rate, "mp3", mp3_quality=7).data)

    assert wave > 0.99
    # As close as quality 2 (1.6-1.8 x the encode time in bench.encode): 0.9767-0.9796 against
    # 0.9763-0.9792. Quality 7 skips the psychoacoustic model: 0.961-0.965.
    assert spectrum > near_best - 0.003
    assert spectrum > fast + 0.005


def test_mp3_quality_must_be_one_of_lames():
    pcm = tone(24_000, 0.2)
    assert encode(pcm, 24_000, "mp3", mp3_quality=0).data
    for quality in (-1, 10):
        with pytest.raises(ValueError, match="mp3 quality"):
            encode(pcm, 24_000, "mp3", mp3_quality=quality)


@pytest.mark.parametrize("rate", [8_000, 22_050, 48_000])
def test_wav_is_the_canonical_pcm_16_file_libsndfile_writes(rate):
    samples = (np.sin(np.arange(rate // 10) / 7) * 20_000).astype("<i2")
    reference = io.BytesIO()
    soundfile.write(reference, samples, rate, format="WAV", subtype="PCM_16")
    produced = encode(samples.tobytes(), rate, "wav")
    assert produced.data == reference.getvalue()
    decoded, decoded_rate = soundfile.read(io.BytesIO(produced.data), dtype="int16")
    assert decoded_rate == rate
    assert np.array_equal(decoded, samples)


@pytest.mark.parametrize("fmt", ["mp3", "ogg_opus", "flac", "wav"])
def test_long_encodes_report_their_progress_and_write_the_same_audio(fmt):
    pcm = tone(24_000, seconds=35.0)
    seen: list[float] = []
    reported = encode(pcm, 24_000, fmt, on_progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    if fmt in ("mp3", "ogg_opus", "flac"):
        assert len([value for value in seen if 0 < value < 1]) >= 3
    plain = encode(pcm, 24_000, fmt)
    if fmt != "ogg_opus":  # Ogg streams carry a random serial number
        assert reported.data == plain.data
    assert decode_duration(reported.data, fmt) == pytest.approx(35.0, abs=0.05)
