"""A synthesis says what the provider billed for it: characters and cost; a cache hit is free."""

from __future__ import annotations

import pytest

from shared.bootstrap import get_container, reset_container
from tests.functions import test_synthesis_fixtures as fx

ann = fx.ann
espeak = fx.espeak
synthesis_client = fx.synthesis_client

TEXT = "Twelve chars"  # 12 characters


@pytest.fixture(autouse=True)
def priced(platform, monkeypatch):
    # One dollar per character makes the arithmetic visible.
    monkeypatch.setenv("VOICE_SYNTHESIS_PRICE_PER_MILLION_CHARS", '{"espeak": 1000000}')
    reset_container()
    assert get_container().settings.synthesis_price_per_million_chars == {"espeak": 1_000_000.0}


def test_a_miss_is_billed_and_a_hit_is_free(synthesis_client, ann, espeak):
    body = {"text": TEXT, "voice": "espeak:en-US", "outputFormat": "wav"}
    first = synthesis_client.post("/synthesize", json=body, headers=ann).get_json()
    assert (first["cacheHit"], first["billedCharacters"], first["cost"]) == (False, 12, 12.0)
    again = synthesis_client.post("/synthesize", json=body, headers=ann).get_json()
    assert (again["cacheHit"], again["billedCharacters"], again["cost"]) == (True, 0, 0.0)


def test_a_dialogue_is_billed_for_every_turn(synthesis_client, ann, espeak):
    body = {
        "turns": [
            {"speaker": "A", "voice": "espeak:en-US", "text": "Hi there"},  # 8
            {"speaker": "B", "voice": "espeak:en-US", "text": "Hello you"},  # 9
        ],
        "outputFormat": "wav",
    }
    result = synthesis_client.post("/synthesize/dialogue", json=body, headers=ann).get_json()
    assert result["billedCharacters"] == 17
    assert result["cost"] == 17.0
