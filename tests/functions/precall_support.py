"""Helpers of the pre-call tests: eSpeak-made samples, tokens with accounts, polling."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Callable
from typing import Any

import numpy as np

from shared.bootstrap import get_container
from shared.providers.base import AudioSettings, SynthesisRequest
from shared.providers.espeak import EspeakProvider
from shared.store import Query
from tests.functions.conftest import bearer

SAMPLE_TEXT = (
    "Hello, this is a short recording of my voice. I call about my order from last week, "
    "and I would like to know when it arrives."
)
_ESPEAK = EspeakProvider(variant_languages=["en-us"])


def espeak_wav(voice: str = "en-US+f3", text: str = SAMPLE_TEXT, pitch: float = 1.0) -> bytes:
    """Return ``text`` spoken by an eSpeak voice (at ``pitch``) as a WAV file (about 7 s)."""
    request = SynthesisRequest(text=text, voice_id=voice, settings=AudioSettings(pitch=pitch))
    result = _ESPEAK.synthesize(request)
    return wav_file(result.pcm, result.sample_rate)


def wav_file(pcm: bytes, rate: int) -> bytes:
    """Return 16-bit mono PCM as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def silence_wav(seconds: float, rate: int = 16_000) -> bytes:
    """Return a WAV of digital silence."""
    return wav_file(np.zeros(int(seconds * rate), dtype="<i2").tobytes(), rate)


def put_sample(account: str, name: str, data: bytes) -> str:
    """Store ``data`` in our samples bucket under the account's folder; return its URL."""
    settings = get_container().settings
    path = f"precall/{account}/{name}"
    get_container().blobs.put(settings.samples_bucket, path, data, content_type="audio/wav")
    return f"gs://{settings.samples_bucket}/{path}"


def headers_for(token: Callable[..., str], user: str, account: str | None = None) -> dict[str, str]:
    """Return the Authorization header of ``user`` acting for ``account``."""
    return bearer(token(user, account_id=account) if account else token(user))


def ok(response: Any, status: int = 200) -> Any:
    """Return the JSON of ``response`` after checking its status."""
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def wait_for_clone(client: Any, headers: dict[str, str], call_id: str, timeout: float = 60) -> Any:
    """Poll ``GET /precall/calls/{id}`` until its clone is settled; return the call."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = ok(client.get(f"/precall/calls/{call_id}", headers=headers))
        if call["cloneState"] != "pending":
            return call
        time.sleep(0.05)
    raise AssertionError(f"the clone of call {call_id} did not settle")


def documents(collection: str, **equal: Any) -> list[dict[str, Any]]:
    """Return the stored documents of ``collection`` whose fields equal ``equal``."""
    query = Query(collection)
    for field, value in equal.items():
        query = query.where(field, "==", value)
    return [{**d.data, "id": d.id} for d in get_container().store.stream(query)]
