"""ElevenLabs instant cloning as a provider-side trainer, against a fake in its wire format.

The fake ElevenLabs server (``tests.support.fake_elevenlabs_cloning``) takes the multipart
``POST /v1/voices/add`` as the real API does and then speaks with the new voice. The test
checks what went over the wire (the key header, the name, every sample's bytes with its
content type), that the model completes with the cloned voice, that refusals fail the
model with the reason, and that a retried task never clones twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import BytesIO

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from functions.training_completed import training_completed
from shared.bootstrap import get_container, reset_container
from shared.samples import CAPABILITY as SAMPLES
from shared.samples.processing import process_sample
from shared.samples.training.run import run_training
from tests.functions.conftest import bearer
from tests.functions.test_training import folder, get_model, metadata_event, models_bucket, train
from tests.support.fake_elevenlabs_cloning import ClonedVoices, cloning_app
from tests.support.fake_http import FakeHttpServer, Recorded
from tests.support.fake_tts_servers import ELEVENLABS_KEY
from tests.support.voice_samples import sample_file


class FlakyTts:
    """The fake ElevenLabs app, its text-to-speech failing ``failures`` times with 503."""

    def __init__(self, failures: int = 0) -> None:
        self.voices = ClonedVoices()
        self.app = cloning_app(self.voices)
        self.failures = failures

    def __call__(self, request: Request) -> Response:
        if "text-to-speech" in request.path and self.failures > 0:
            self.failures -= 1
            return Response('{"detail": "busy"}', status=503, mimetype="application/json")
        response: Response = self.app(request)
        return response


@pytest.fixture
def fake() -> Iterator[tuple[FakeHttpServer, FlakyTts]]:
    tts = FlakyTts()
    with FakeHttpServer(tts) as server:
        yield server, tts


@pytest.fixture
def platform_with_elevenlabs(platform, monkeypatch, fake) -> None:
    server, _ = fake
    monkeypatch.setenv("VOICE_PROVIDERS", "espeak,elevenlabs")
    monkeypatch.setenv("VOICE_ELEVENLABS_BASE_URL", server.url)
    monkeypatch.setenv("VOICE_ELEVENLABS_API_KEY", ELEVENLABS_KEY)
    reset_container()


@pytest.fixture
def clients(platform_with_elevenlabs, function_client):
    return function_client("samples"), function_client("voice_models")


def ready_samples(samples, token: str, count: int = 2) -> list[dict]:
    """Samples processed by running the task directly (no worker in these tests)."""
    created = []
    for index, fmt in zip(range(count), ("wav", "flac", "mp3"), strict=False):
        response = samples.post(
            "/samples",
            data={"file": (BytesIO(sample_file("en-US+f2", index, fmt=fmt)), "a")},
            headers=bearer(token),
            content_type="multipart/form-data",
        )
        assert response.status_code == 201, response.get_json()
        sample = response.get_json()
        process_sample(get_container().deps(SAMPLES), sample["id"])
        created.append(samples.get(f"/samples/{sample['id']}", headers=bearer(token)).get_json())
    return created


def voice_adds(server: FakeHttpServer) -> list[Recorded]:
    return [r for r in server.requests if r.path == "/v1/voices/add"]


def parsed_form(recorded: Recorded) -> Request:
    builder = EnvironBuilder(
        method="POST", data=recorded.body, content_type=recorded.headers["Content-Type"]
    )
    return Request(builder.get_environ())


def test_instant_cloning_sends_the_samples_and_completes_with_the_cloned_voice(
    clients, token, fake
):
    server, _ = fake
    samples, voice_models = clients
    ann = token("ann")
    ready = ready_samples(samples, ann)
    container = get_container()
    container.tasks.stop()  # the test runs the training task itself

    response = train(samples, ann, [s["id"] for s in ready], provider="elevenlabs", name="Ann")
    assert response.status_code == 202, response.get_json()
    model_id = response.get_json()["id"]
    run_training(container.deps(SAMPLES), model_id)

    (add,) = voice_adds(server)
    assert add.method == "POST"
    assert add.headers["Xi-Api-Key"] == ELEVENLABS_KEY
    form = parsed_form(add)
    assert form.form["name"] == "Ann"
    assert json.loads(form.form["labels"]) == {"language": "en-US"}
    uploaded = form.files.getlist("files")
    assert [f.mimetype for f in uploaded] == ["audio/wav", "audio/flac"]
    bucket = container.settings.samples_bucket
    assert [f.read() for f in uploaded] == [
        container.blobs.get(bucket, s["filePath"]) for s in ready
    ]
    artifact = json.loads(
        container.blobs.get(models_bucket(), folder("ann", model_id) + "metadata.json")
    )
    assert artifact["status"] == "completed"
    voice_id = artifact["voice"]["voiceId"]
    spoken = [r for r in server.requests if r.path.startswith(f"/v1/text-to-speech/{voice_id}")]
    assert len(spoken) == 3  # the test sentences measured its quality

    training_completed(metadata_event("ann", model_id))

    model = get_model(voice_models, ann, model_id)
    assert (model["status"], model["provider"], model["isActive"]) == (
        "completed",
        "elevenlabs",
        True,
    )
    assert model["metadata"]["voiceId"] == voice_id
    assert model["metadata"]["trainer"] == "elevenlabs-instant"
    assert model["naturalness"] == 0.9


def test_a_refused_key_fails_the_model_with_the_reason(clients, token, fake):
    server, _ = fake
    samples, voice_models = clients
    ann = token("ann")
    ready = ready_samples(samples, ann, 1)
    get_container().tasks.stop()
    model_id = train(samples, ann, [ready[0]["id"]], provider="elevenlabs").get_json()["id"]
    server.fail_next(401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})

    outcome = run_training(get_container().deps(SAMPLES), model_id)

    assert outcome.startswith("failed: ElevenLabs refused")
    training_completed(metadata_event("ann", model_id))
    model = get_model(voice_models, ann, model_id)
    assert model["status"] == "failed"
    assert "ElevenLabs refused to clone the voice" in model["metadata"]["trainingError"]


def test_a_retried_training_clones_the_voice_once(clients, token, fake):
    server, tts = fake
    samples, voice_models = clients
    ann = token("ann")
    ready = ready_samples(samples, ann, 1)
    get_container().tasks.stop()
    model_id = train(samples, ann, [ready[0]["id"]], provider="elevenlabs").get_json()["id"]
    deps = get_container().deps(SAMPLES)
    tts.failures = 1  # the voice is created, then measuring it meets a 503

    with pytest.raises(Exception, match="503"):
        run_training(deps, model_id)
    assert run_training(deps, model_id).startswith("trained")

    assert len(voice_adds(server)) == 1
    training_completed(metadata_event("ann", model_id))
    assert get_model(voice_models, ann, model_id)["status"] == "completed"
