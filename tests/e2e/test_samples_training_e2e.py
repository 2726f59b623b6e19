"""Samples to a trained voice, end to end, through the gateway as ``make run`` starts it.

A real gateway process on a free port: samples of one eSpeak voice go in (two by
multipart, one through a signed upload URL whose storage event the gateway delivers),
a model is trained, the gateway delivers the ``metadata.json`` storage event to
``training-completed``, and the model is completed and active. Synthesizing with no
voice named then speaks with it, and that audio's speaker embedding is closer to the
samples' than the default voice's is.

The voice-match table is built in this process (or taken from its memory) and put in the
gateway's storage first, as an operator would warm it, so the test does not wait for the
gateway to build it again.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import soundfile

from shared.audio.speaker_encoder import default_encoder
from shared.auth import build_dev_verifier
from shared.config import Settings
from tests.support.processes import free_port, http_ok
from tests.support.voice_samples import sample_file, warm_voice_table

ROOT = Path(__file__).resolve().parents[2]
VOICE = "en-US+f2"
TEXT = "Good evening. This is the voice you trained, reading a sentence it never heard."


@pytest.fixture
def gateway(tmp_path):
    port = free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_") and k != "K_SERVICE"}
    env.update(
        {
            "VOICE_DATA_DIR": str(data_dir),
            "VOICE_GATEWAY_PORT": str(port),
            "VOICE_PROVIDERS": "espeak",
            "VOICE_TASKS_POLL_SECONDS": "0.1",
        }
    )
    settings = Settings(_env_file=None, data_dir=data_dir, gateway_port=port)
    warm_voice_table(settings)
    token = build_dev_verifier(settings).mint("ann")
    log = (tmp_path / "gateway.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.gateway"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not http_ok(f"{base}/healthz"):
        assert process.poll() is None, (tmp_path / "gateway.log").read_text()
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.1)
    yield base, {"Authorization": f"Bearer {token}"}
    process.terminate()
    process.wait(30)


def wait_until(fetch, done, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.2)


def embedding_of(wav: bytes) -> np.ndarray:
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return default_encoder().embed(samples, rate)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def synthesize(base: str, auth: dict[str, str], **body: Any) -> bytes:
    def attempt() -> requests.Response:
        return requests.post(
            f"{base}/synthesize",
            json={"text": TEXT, "outputFormat": "wav", **body},
            headers=auth,
            timeout=60,
        )

    # The gateway syncs the eSpeak catalog in the background on its first start.
    response = wait_until(attempt, lambda r: r.status_code != 404, timeout=60)
    assert response.status_code == 200, response.text
    audio = requests.get(response.json()["downloadUrl"], timeout=30)
    assert audio.status_code == 200
    return audio.content


def test_samples_train_a_voice_that_speaks_closer_to_them_than_the_default(gateway):
    base, auth = gateway
    files = [sample_file(VOICE, index) for index in range(3)]
    ids = []
    for index, data in enumerate(files[:2]):
        response = requests.post(
            f"{base}/samples",
            files={"file": (f"take{index}.wav", data, "audio/wav")},
            data={"name": f"Take {index}"},
            headers=auth,
            timeout=30,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    # The third through a signed URL: the gateway delivers its storage event.
    asked = requests.post(
        f"{base}/samples/upload-url",
        json={"contentType": "audio/wav", "sizeBytes": len(files[2])},
        headers=auth,
        timeout=30,
    ).json()
    put = requests.put(
        asked["upload"]["url"], data=files[2], headers=asked["upload"]["headers"], timeout=30
    )
    assert put.status_code == 200, put.text
    ids.append(asked["sample"]["id"])
    for sample_id in ids:
        sample = wait_until(
            lambda i=sample_id: requests.get(
                f"{base}/samples/{i}", headers=auth, timeout=10
            ).json(),
            lambda s: s["status"] in ("ready", "failed"),
        )
        assert sample["status"] == "ready", sample

    response = requests.post(
        f"{base}/voice-models/train",
        json={"sampleIds": ids, "provider": "espeak", "name": "Ann's voice"},
        headers=auth,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    model_id = response.json()["id"]
    model = wait_until(
        lambda: requests.get(f"{base}/voice-models/{model_id}", headers=auth, timeout=10).json(),
        lambda m: m["status"] in ("completed", "failed"),
    )
    assert model["status"] == "completed", model
    assert model["isActive"] is True
    assert model["metadata"]["trainer"] == "voice-match"

    trained = embedding_of(synthesize(base, auth))  # no voice: the active model speaks
    default = embedding_of(synthesize(base, auth, voice="espeak:en-US"))
    mean = np.mean([embedding_of(data) for data in files], axis=0)
    assert cosine(trained, mean) > cosine(default, mean) + 0.1
    assert cosine(trained, mean) > 0.8
