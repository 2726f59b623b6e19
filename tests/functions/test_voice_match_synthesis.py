"""A voice-match model speaks with the eSpeak voice, pitch and speed its training fitted.

Its voice is the variant the trainer chose (listed in the catalog or not), and its fitted
pitch and speed are the model's own settings: used unless a request sets its own.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from shared.audio.prosody import measure_prosody
from shared.bootstrap import get_container
from shared.samples.matched_voice import matched_voice
from shared.voice_models.model import VoiceModel, VoiceModelStatus
from shared.voice_models.repository import VOICE_MODELS
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import fetch

ann = fx.ann
espeak = fx.espeak
synthesis_client = fx.synthesis_client

TEXT = "We were away a year ago, when the weather was warm and the evenings were long."


def voice_match_model(voice_id: str, language: str, pitch: float, speed: float) -> str:
    model = VoiceModel(
        user_id="ann",
        provider="espeak",
        model_path="models/ann/m/model.json",
        status=VoiceModelStatus.COMPLETED,
        metadata={
            "trainer": "voice-match",
            "voiceId": voice_id,
            "language": language,
            "pitch": pitch,
            "speed": speed,
        },
    )
    get_container().store.create(VOICE_MODELS, model.id, model.to_document())
    return model.id


def spoken(client, headers, **body) -> tuple[float, float]:
    """Return the median pitch (Hz) and the duration (s) of what the request made."""
    response = client.post(
        "/synthesize", json={"text": TEXT, "outputFormat": "wav", **body}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    samples, rate = soundfile.read(io.BytesIO(fetch(response.get_json()["downloadUrl"])))
    prosody = measure_prosody(np.asarray(samples, dtype=np.float32), rate)
    assert prosody.f0_median_hz is not None
    return prosody.f0_median_hz, len(samples) / rate


def test_the_fitted_pitch_and_speed_are_the_models_own_settings(synthesis_client, ann):
    plain_f0, plain_seconds = spoken(synthesis_client, ann, voice="espeak:en-US+f3")
    model_id = voice_match_model("en-US+f3", "en-US", pitch=1.5, speed=1.4)

    fitted_f0, fitted_seconds = spoken(synthesis_client, ann, voice=model_id)
    asked_f0, asked_seconds = spoken(synthesis_client, ann, voice=model_id, pitch=1.0, speed=1.0)

    assert fitted_f0 > plain_f0 * 1.15
    assert fitted_seconds < plain_seconds / 1.2
    # A request's own values stand over the model's.
    assert asked_f0 == pytest.approx(plain_f0, rel=0.05)
    assert asked_seconds == pytest.approx(plain_seconds, rel=0.05)


def test_the_trainers_voice_need_not_be_listed_in_the_catalog(synthesis_client, ann):
    # The catalog lists variants for en-US only here; the trainer may pick any eSpeak
    # voice of the samples' language.
    model_id = voice_match_model("fr+f3", "fr-FR", pitch=1.0, speed=1.0)
    f0, seconds = spoken(synthesis_client, ann, voice=model_id)
    assert f0 > 150  # f3 is a female variant
    assert seconds > 1


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
    assert matched_voice({"voiceId": "en-US", "pitch": 1.2}) is None
