"""What processing learns from a sample's bytes: facts, quality, speaker embedding, prosody.

``analyse_audio`` decodes the file (format told from the bytes: ``shared.audio.decoding``),
checks its duration against the settings' bounds, scores its quality 0..10
(``shared.audio.quality``: signal-to-noise ratio, clipping, silence, bandwidth; the
formula is documented there), embeds the speaker (resemblyzer's d-vector,
``shared.audio.speaker_encoder``) and measures pitch and speaking rate
(``shared.audio.prosody``). Every refusal is a PlatformError whose message says why, fit
to show the user: unsupported content (415), a damaged file (400), a sample rate or a
number of channels a sample cannot have (400), too short (400), too long (413), no speech
(400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.audio.decoding import AudioFacts, DecodedAudio, decode
from shared.audio.prosody import Prosody, measure_prosody
from shared.audio.quality import QualityReport, assess_quality
from shared.audio.speaker_encoder import SpeakerEncoder
from shared.config import Settings
from shared.lazy import lazy_module
from shared.model import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from shared.samples.errors import (
    SampleAudioUnsupportedError,
    SampleTooLongError,
    SampleTooShortError,
)
from shared.samples.model import (
    MAX_SAMPLE_CHANNELS,
    SampleFormat,
    SampleProsody,
    SampleQualityReport,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")


@dataclass(frozen=True)
class Analysis:
    """Everything processing measured of one sample."""

    audio: DecodedAudio
    quality: QualityReport
    prosody: Prosody
    embedding: npt.NDArray[np.float32]

    def facts(self) -> dict[str, object]:
        """Return the sample's fields this analysis sets (see ``VoiceSample.mark_ready``)."""
        return {
            "format": SampleFormat(self.audio.format.value),
            "codec": self.audio.codec,
            "duration": round(self.audio.duration_seconds, 3),
            "sample_rate": self.audio.sample_rate,
            "channels": self.audio.channels,
            "quality": quality_report(self.quality),
            "prosody": prosody_of(self.prosody),
        }


def check_duration(seconds: float, settings: Settings) -> None:
    """Return when ``seconds`` lies within the settings' sample duration bounds.

    Raises SampleTooShortError (400) or SampleTooLongError (413).
    """
    low, high = settings.samples_min_seconds, settings.samples_max_seconds
    if seconds < low:
        raise SampleTooShortError(
            f"The sample lasts {seconds:.1f} s; it must last at least {low:g} s"
        )
    if seconds > high:
        raise SampleTooLongError(
            f"The sample lasts {seconds:.1f} s; it must last at most {high:g} s"
        )


def check_audio(audio: DecodedAudio, settings: Settings) -> None:
    """Return when a sample may hold ``audio``: its duration, sample rate and channels.

    Raises SampleTooShortError, SampleTooLongError or SampleAudioUnsupportedError.
    """
    check_duration(audio.duration_seconds, settings)
    if not MIN_SAMPLE_RATE <= audio.sample_rate <= MAX_SAMPLE_RATE:
        raise SampleAudioUnsupportedError(
            f"The audio has a sample rate of {audio.sample_rate} Hz; "
            f"a sample must have {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"
        )
    if audio.channels > MAX_SAMPLE_CHANNELS:
        raise SampleAudioUnsupportedError(
            f"The audio has {audio.channels} channels; a sample may have at most "
            f"{MAX_SAMPLE_CHANNELS}"
        )


def check_announced(facts: AudioFacts, settings: Settings) -> None:
    """Refuse, from the headers alone, a file whose announced length is out of bounds."""
    check_duration(facts.duration_seconds, settings)


def analyse_audio(data: bytes, settings: Settings, encoder: SpeakerEncoder) -> Analysis:
    """Return the analysis of a sample's bytes.

    Raises UnsupportedAudioFormatError, CorruptAudioError, SampleTooShortError,
    SampleTooLongError, SampleAudioUnsupportedError or NoSpeechError (all fit to show the
    user), or SpeakerEncoderUnavailableError (a deployment without the encoder's weights).
    """
    audio = decode(data)
    check_audio(audio, settings)
    quality = assess_quality(audio.samples, audio.sample_rate)
    embedding = encoder.embed(audio.samples, audio.sample_rate)
    prosody = measure_prosody(audio.samples, audio.sample_rate)
    return Analysis(audio, quality, prosody, embedding)


def quality_report(report: QualityReport) -> SampleQualityReport:
    """Return the stored form of a quality report."""
    return SampleQualityReport(
        snr_db=report.snr_db,
        clipping_ratio=round(report.clipping_ratio, 6),
        silence_ratio=report.silence_ratio,
        bandwidth_hz=report.bandwidth_hz,
        components=dict(report.components),
        problems=list(report.problems),
        usable=report.usable,
    )


def prosody_of(prosody: Prosody) -> SampleProsody:
    """Return the stored form of measured prosody."""

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return SampleProsody(
        f0_median_hz=rounded(prosody.f0_median_hz),
        f0_p10_hz=rounded(prosody.f0_p10_hz),
        f0_p90_hz=rounded(prosody.f0_p90_hz),
        voiced_seconds=round(prosody.voiced_seconds, 3),
        syllables=prosody.syllables,
        speaking_seconds=round(prosody.speaking_seconds, 3),
        syllables_per_second=round(prosody.syllables_per_second, 3),
    )
