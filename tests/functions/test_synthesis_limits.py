"""The audio a request may make is bounded before anything is rendered.

Pauses and slow rates count: a 585-byte SSML request with twenty hour-long breaks once
rendered 5.5 hours of audio in the request thread. Every case here answers at once with a
clear error, without calling the provider.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.bootstrap import get_container
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import say

ann = fx.ann
espeak = fx.espeak
synthesis_client = fx.synthesis_client


def post(client: Any, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post("/synthesize", json={"voice": "espeak:en-US", **body}, headers=headers)


def test_hour_long_breaks_are_refused_before_rendering(synthesis_client, ann, espeak):
    ssml = "<speak>" + "Hi <break time='3600s'/>" * 20 + "</speak>"
    response = post(synthesis_client, ann, {"ssml": ssml})
    assert response.status_code == 400
    assert "longer than 10 s" in response.get_json()["error"]
    assert espeak.calls == 0


def test_legal_breaks_that_add_up_beyond_the_at_once_limit_are_413(synthesis_client, ann, espeak):
    ssml = "<speak>" + "Hi <break time='10s'/>" * 40 + "</speak>"
    response = post(synthesis_client, ann, {"ssml": ssml})
    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == "AUDIO_TOO_LONG"
    assert "answered at once" in body["error"]
    assert espeak.calls == 0


def test_a_slow_prosody_rate_counts(synthesis_client, ann, espeak):
    words = "word " * 700
    ssml = f"<speak><prosody rate='20%'>{words}</prosody></speak>"
    response = post(synthesis_client, ann, {"ssml": ssml})
    assert response.status_code == 413
    assert espeak.calls == 0
    too_slow = post(
        synthesis_client, ann, {"ssml": "<speak><prosody rate='5%'>Hi</prosody></speak>"}
    )
    assert too_slow.status_code == 400


def test_slow_plain_text_beyond_the_at_once_limit_becomes_a_job(synthesis_client, ann, espeak):
    # 1,500 characters (under the async threshold) at a quarter speed: about 7 minutes.
    response = post(synthesis_client, ann, {"text": "Hello there. " * 115, "speed": 0.25})
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "pending"


def test_audio_beyond_the_overall_limit_is_413_even_as_a_job(
    synthesis_client, ann, espeak, monkeypatch
):
    monkeypatch.setattr(get_container().settings, "synthesis_max_audio_seconds", 600.0)
    response = post(synthesis_client, ann, {"text": "Hello there. " * 380, "speed": 0.25})
    assert response.status_code == 413
    assert "the limit is 600 s" in response.get_json()["error"]
    assert espeak.calls == 0


@pytest.mark.parametrize(
    "ssml",
    [
        "<speak>" + "<s>" * 3000 + "deep" + "</s>" * 3000 + "</speak>",
        "<speak><break time='forever'/></speak>",
        "<speak><break strength='eternal'/></speak>",
        "<speak><prosody rate='slowish'>Hi</prosody></speak>",
    ],
)
def test_malformed_or_abusive_ssml_is_400(synthesis_client, ann, espeak, ssml):
    response = post(synthesis_client, ann, {"ssml": ssml})
    assert response.status_code == 400, response.get_json()
    assert espeak.calls == 0


def test_ordinary_ssml_with_breaks_still_speaks(synthesis_client, ann):
    body = say(synthesis_client, ann, text=None, ssml="<speak>One <break time='1s'/> two</speak>")
    assert body["duration"] > 1.0
