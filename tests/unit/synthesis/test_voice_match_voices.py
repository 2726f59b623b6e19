"""A voice-match model speaks with the eSpeak voice, pitch and speed its training fitted."""

from __future__ import annotations

import numpy as np
import pytest

from shared.audio.prosody import measure_prosody
from shared.providers.base import AudioSettings
from shared.providers.espeak import EspeakProvider
from shared.samples.matched_voice import matched_voice
from shared.synthesis.jobs import voice_of
from shared.synthesis.model import AudioOptions
from shared.synthesis.prepare import Prepared, new_job
from shared.synthesis.render import render_piece
from shared.synthesis.voices import ResolvedVoice, voice_of_model
from shared.voice_models.model import VoiceModel, VoiceModelStatus

TEXT = "We were away a year ago, when the weather was warm and the evenings were long."


def model(**metadata: object) -> VoiceModel:
    return VoiceModel(
        user_id="ann",
        provider="espeak",
        model_path="models/ann/m/model.json",
        status=VoiceModelStatus.COMPLETED,
        metadata=metadata,
    )


def test_a_voice_match_model_resolves_to_its_voice_and_prosody():
    voice = voice_of_model(
        model(trainer="voice-match", voiceId="en-US+f3", language="en-US", pitch=1.2, speed=0.9)
    )
    assert (voice.provider, voice.voice_id, voice.language) == ("espeak", "en-US+f3", "en-US")
    assert (voice.pitch, voice.speed) == (1.2, 0.9)


def test_other_models_keep_the_voices_own_prosody():
    voice = voice_of_model(model(voiceId="en-US+f3", pitch=1.2, speed=0.9))
    assert (voice.pitch, voice.speed) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"trainer": "voice-match", "voiceId": "en-US", "pitch": 9.0, "speed": 0.01}, (2.0, 0.25)),
        ({"trainer": "voice-match", "voiceId": "en-US", "pitch": "high"}, (1.0, 1.0)),
        ({"trainer": "voice-match", "voiceId": "en-US", "pitch": float("nan")}, (1.0, 1.0)),
    ],
)
def test_hand_edited_prosody_is_kept_in_range(metadata, expected):
    found = matched_voice(metadata)
    assert found is not None
    assert (found.pitch, found.speed) == expected
    assert matched_voice({"trainer": "voice-match"}) is None


def test_the_voices_prosody_multiplies_the_requests_within_the_providers_range():
    voice = ResolvedVoice("espeak", "en-US", pitch=1.5, speed=2.0)
    settings = voice.applied_to(AudioSettings(pitch=1.2, speed=3.0))
    assert (settings.pitch, settings.speed) == (pytest.approx(1.8), 4.0)
    plain = AudioSettings(pitch=1.1)
    assert ResolvedVoice("espeak", "en-US").applied_to(plain) is plain


def test_rendering_with_a_voice_match_raises_the_pitch_and_the_pace():
    engine = EspeakProvider(variant_languages=[])

    def measured(voice: ResolvedVoice):
        rendered = render_piece(engine, voice, TEXT, AudioSettings())
        pcm = np.frombuffer(rendered.pcm, dtype="<i2").astype(np.float32) / 32768
        return measure_prosody(pcm, rendered.sample_rate), rendered.duration

    (plain, plain_seconds) = measured(ResolvedVoice("espeak", "en-US"))
    (fitted, fitted_seconds) = measured(ResolvedVoice("espeak", "en-US", pitch=1.5, speed=1.4))
    assert fitted.f0_median_hz > plain.f0_median_hz * 1.15
    assert fitted_seconds < plain_seconds / 1.2


def test_a_long_jobs_chunks_speak_with_the_models_prosody():
    engine = EspeakProvider(variant_languages=[])
    voice = voice_of_model(
        model(trainer="voice-match", voiceId="en-US+f3", language="en-US", pitch=1.3, speed=0.8)
    )
    prepared = Prepared(TEXT, TEXT, False, voice, engine, AudioSettings(), AudioOptions(), "key")
    restored = voice_of(new_job("ann", prepared))
    assert (restored.voice_id, restored.pitch, restored.speed) == ("en-US+f3", 1.3, 0.8)
