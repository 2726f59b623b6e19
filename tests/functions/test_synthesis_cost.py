"""A synthesis says what the provider billed for it: characters and cost; a cache hit is free.

The job keeps its bill: shown later (``GET /synthesis/jobs/{id}``, the jobs list) it says
what the answer of the request that made it said.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.bootstrap import get_container, reset_container
from tests.functions import test_synthesis_fixtures as fx
from tests.functions import test_synthesis_jobs as jobs
from tests.functions.test_synthesis import create_model
from tests.functions.test_synthesis_jobs import LONG_TEXT, start, wait

ann = fx.ann
espeak = fx.espeak
synthesis_client = fx.synthesis_client
queue = jobs.queue

# Re-signed at every showing, and sent only with the file's details.
RESIGNED = {"downloadUrl", "downloadUrlExpiresAt"}
FILE_DETAILS = RESIGNED | {"duration", "sampleRate", "size", "checksum", "expiresAt", "timestamps"}

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


def shown_later(client: Any, headers: dict[str, str], job_id: str) -> tuple[dict, dict]:
    """Return the job as ``GET /synthesis/jobs/{id}`` and as its line in the list show it."""
    shown = client.get(f"/synthesis/jobs/{job_id}", headers=headers)
    assert shown.status_code == 200, shown.get_json()
    listed = client.get("/synthesis/jobs?limit=100", headers=headers).get_json()["jobs"]
    (line,) = [job for job in listed if job["jobId"] == job_id]
    return shown.get_json(), line


def assert_shown_as_answered(client: Any, headers: dict[str, str], answer: dict) -> None:
    shown, line = shown_later(client, headers, answer["jobId"])
    assert {k: v for k, v in shown.items() if k not in RESIGNED} == {
        k: v for k, v in answer.items() if k not in RESIGNED
    }
    assert {k: v for k, v in line.items() if k not in FILE_DETAILS} == {
        k: v for k, v in answer.items() if k not in FILE_DETAILS
    }


def test_a_job_shown_later_says_what_its_answer_said(function_client, synthesis_client, ann):
    body = {"text": TEXT, "voice": "espeak:en-US", "outputFormat": "wav"}
    miss = synthesis_client.post("/synthesize", json=body, headers=ann).get_json()
    hit = synthesis_client.post("/synthesize", json=body, headers=ann).get_json()
    assert (miss["billedCharacters"], hit["billedCharacters"]) == (12, 0)
    for answer in (miss, hit):
        assert_shown_as_answered(synthesis_client, ann, answer)
    # A dialogue shows itself as one: its voice, mode and bill for every turn.
    turns = [
        {"speaker": "A", "voice": "espeak:en-US", "text": "Hi there"},
        {"speaker": "B", "voice": "espeak:en-US+f3", "text": "Hello you"},
    ]
    dialogue = synthesis_client.post(
        "/synthesize/dialogue", json={"turns": turns, "outputFormat": "wav"}, headers=ann
    ).get_json()
    assert (dialogue["voice"], dialogue["mode"], dialogue["billedCharacters"]) == (
        "dialogue",
        "segmented",
        17,
    )
    assert_shown_as_answered(synthesis_client, ann, dialogue)
    # A voice model's job names the model, whichever way it is shown.
    model = create_model(function_client("voice_models"), ann, "ann")
    spoken = synthesis_client.post(
        "/synthesize", json={"text": "By my model.", "voice": model["id"]}, headers=ann
    ).get_json()
    assert (spoken["voice"], spoken["billedCharacters"]) == (model["id"], 12)
    assert_shown_as_answered(synthesis_client, ann, spoken)


def test_a_long_job_is_billed_once_done(synthesis_client, ann, queue):
    started = start(synthesis_client, ann, outputFormat="wav")
    assert (started["billedCharacters"], started["cost"]) == (None, None)  # not yet
    done = wait(synthesis_client, ann, started["jobId"])
    assert done["status"] == "completed"
    assert (done["billedCharacters"], done["cost"]) == (len(LONG_TEXT), float(len(LONG_TEXT)))
    _, line = shown_later(synthesis_client, ann, started["jobId"])
    assert (line["billedCharacters"], line["cost"]) == (len(LONG_TEXT), float(len(LONG_TEXT)))
