"""Training a voice model from samples, and its completion by the storage event.

``POST /voice-models/train`` answers 202 with a pending model; the embedded worker runs the
voice-match trainer, which writes the artifacts and, last, ``metadata.json``. The event of
that object is built as Eventarc sends it and handed to ``training-completed`` directly
(as Google's storage-trigger samples test theirs): the model completes, gets the seed's
quality score and follows the activation rules. External trainers are stood in for by
writing the same artifact layout by hand.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from io import BytesIO
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from functions.training_completed import training_completed
from shared.blobs.events import finalized_event
from shared.bootstrap import get_container
from shared.model import utcnow
from shared.samples import CAPABILITY as SAMPLES
from shared.samples.training.reconcile import TRAINING_GRACE, reconcile_training
from shared.samples.training.run import run_training
from shared.voice_models.model import VoiceModel, VoiceModelStatus, quality_score_from_components
from shared.voice_models.repository import VOICE_MODELS
from tests.functions.conftest import bearer
from tests.functions.samples_fixtures import ready_sample, samples_client, worker
from tests.support.voice_samples import sample_file

__all__ = ["samples_client", "worker"]

VOICE = "en-US+f4"


@pytest.fixture
def voice_models(function_client, worker):
    return function_client("voice_models")


@pytest.fixture
def ann_samples(samples_client, token) -> tuple[str, list[str]]:
    ann = token("ann")
    ids = [ready_sample(samples_client, ann, sample_file(VOICE, i))["id"] for i in range(3)]
    return ann, ids


def models_bucket() -> str:
    return get_container().settings.models_bucket


def folder(user_id: str, model_id: str) -> str:
    return f"models/{user_id}/{model_id}/"


def wait_for_object(name: str, timeout: float = 120.0) -> None:
    blobs = get_container().blobs
    deadline = time.monotonic() + timeout
    while not blobs.exists(models_bucket(), name):
        assert time.monotonic() < deadline, f"{name} never appeared"
        time.sleep(0.1)


def metadata_event(user_id: str, model_id: str, **attributes: Any) -> CloudEvent:
    info = get_container().blobs.info(models_bucket(), folder(user_id, model_id) + "metadata.json")
    event = finalized_event(info)
    for key, value in attributes.items():
        event[key] = value
    return event


def get_model(client, token: str, model_id: str) -> dict[str, Any]:
    response = client.get(f"/voice-models/{model_id}", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def train(client, token: str, sample_ids: list[str], **body: Any):
    return client.post(
        "/voice-models/train",
        json={"sampleIds": sample_ids, "provider": "espeak", "name": "My voice", **body},
        headers=bearer(token),
    )


def write_artifact(user_id: str, model_id: str, document: Any) -> None:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    get_container().blobs.put(
        models_bucket(),
        folder(user_id, model_id) + "metadata.json",
        data,
        content_type="application/json",
    )


def test_training_answers_202_and_the_storage_event_completes_and_activates_the_model(
    samples_client, voice_models, ann_samples
):
    ann, sample_ids = ann_samples
    response = train(samples_client, ann, sample_ids)

    assert response.status_code == 202, response.get_json()
    pending = response.get_json()
    assert (pending["status"], pending["isActive"], pending["provider"]) == (
        "pending",
        False,
        "espeak",
    )
    assert pending["modelPath"] == folder("ann", pending["id"]) + "model.json"
    assert pending["metadata"]["training"]["sampleIds"] == sample_ids

    wait_for_object(folder("ann", pending["id"]) + "metadata.json")
    blobs = get_container().blobs
    names = {i.name for i in blobs.list(models_bucket(), folder("ann", pending["id"])).items}
    assert {f"{folder('ann', pending['id'])}{n}" for n in ("model.json", "preview.wav")} <= names
    artifact = json.loads(
        blobs.get(models_bucket(), folder("ann", pending["id"]) + "metadata.json")
    )
    assert artifact["status"] == "completed"
    assert set(artifact["qualityComponents"]) == {
        "similarity",
        "naturalness",
        "clarity",
        "consistency",
    }
    assert artifact["metrics"]["naturalnessMeasured"] is False
    # Not completed until the storage event says so: the trainer never touches the model.
    assert get_model(voice_models, ann, pending["id"])["status"] == "training"

    training_completed(metadata_event("ann", pending["id"]))

    model = get_model(voice_models, ann, pending["id"])
    components = artifact["qualityComponents"]
    assert model["status"] == "completed"
    assert model["isActive"] is True  # the user's first model
    assert model["qualityScore"] == pytest.approx(quality_score_from_components(**components))
    assert model["similarity"] == components["similarity"]
    assert model["metadata"]["trainer"] == "voice-match"
    assert model["metadata"]["voiceId"] == artifact["voice"]["voiceId"]
    assert model["metadata"]["pitch"] == artifact["voice"]["pitch"]
    assert model["metadata"]["speed"] == artifact["voice"]["speed"]
    assert model["sizeBytes"] > 0
    # The samples are one eSpeak voice: it is the table's nearest, and the chosen voice is
    # the candidate that came closest once its pitch and speed were fitted.
    candidates = artifact["metrics"]["candidates"]
    assert max(candidates, key=lambda c: c["tableCosine"])["voiceId"] == VOICE
    best = max(candidates, key=lambda c: c["fittedCosine"])
    assert (best["voiceId"], best["pitch"], best["speed"]) == (
        artifact["voice"]["voiceId"],
        artifact["voice"]["pitch"],
        artifact["voice"]["speed"],
    )
    assert artifact["metrics"]["matchCosine"] > 0.85
    assert artifact["metrics"]["targetF0Hz"] == pytest.approx(
        artifact["metrics"]["achievedF0Hz"], rel=0.1
    )
    assert components["similarity"] > 0.8


def test_the_same_event_twice_changes_nothing(samples_client, voice_models, ann_samples):
    ann, sample_ids = ann_samples
    model_id = train(samples_client, ann, sample_ids).get_json()["id"]
    wait_for_object(folder("ann", model_id) + "metadata.json")
    event = metadata_event("ann", model_id)
    training_completed(event)
    first = get_model(voice_models, ann, model_id)
    training_completed(event)
    assert get_model(voice_models, ann, model_id) == first


def test_stale_foreign_and_malformed_events_are_acknowledged_and_ignored(
    voice_models, token, worker
):
    ann = token("ann")
    model = {"id": pending_model("ann")}
    write_artifact("ann", model["id"], {"status": "failed", "reason": "late"})
    training_completed(metadata_event("ann", model["id"], time="2020-01-01T00:00:00.000Z"))
    assert get_model(voice_models, ann, model["id"])["status"] == "pending"

    blobs = get_container().blobs
    other = blobs.put(
        models_bucket(),
        f"models/ann/{model['id']}/weights.bin",
        b"w",
        content_type="application/octet-stream",
    )
    training_completed(finalized_event(other))
    training_completed(
        CloudEvent(
            {
                "type": "google.cloud.storage.object.v1.finalized",
                "source": "//storage.googleapis.com/projects/_/buckets/b",
            },
            None,
        )
    )
    assert get_model(voice_models, ann, model["id"])["status"] == "pending"


@pytest.mark.parametrize(
    "artifact",
    [b"{not json", b"[]", {"status": "done"}, {"status": "completed"}, b'{"status": NaN}'],
)
def test_an_unreadable_artifact_fails_the_model_once_and_is_acknowledged(
    voice_models, token, worker, artifact
):
    ann = token("ann")
    model = {"id": pending_model("ann", "espeak")}
    write_artifact("ann", model["id"], artifact)

    training_completed(metadata_event("ann", model["id"]))  # returns: acknowledged

    failed = get_model(voice_models, ann, model["id"])
    assert failed["status"] == "failed"
    assert failed["metadata"]["trainingError"] == "The trainer's metadata.json could not be read"


def test_a_failed_training_fails_the_model_with_the_trainers_reason(voice_models, token, worker):
    ann = token("ann")
    model = {"id": pending_model("ann")}
    write_artifact("ann", model["id"], {"status": "failed", "reason": "CUDA out of memory"})
    training_completed(metadata_event("ann", model["id"]))
    failed = get_model(voice_models, ann, model["id"])
    assert (failed["status"], failed["metadata"]["trainingError"]) == (
        "failed",
        "CUDA out of memory",
    )


def test_a_failed_training_of_the_active_model_hands_activation_to_the_next_best(
    voice_models, function_client, token, worker
):
    ann = token("ann")
    body = {"provider": "espeak", "modelPath": "models/ann/done.bin", "qualityScore": 0.5}
    done = voice_models.post("/voice-models", json=body, headers=bearer(ann)).get_json()
    training = pending_model("ann")
    activation = function_client("voice_model_activation")
    activated = activation.post(f"/voice-models/{training}/activate", headers=bearer(ann))
    assert activated.status_code == 200, activated.get_json()
    write_artifact("ann", training, {"status": "failed", "reason": "CUDA out of memory"})
    training_completed(metadata_event("ann", training))
    failed = get_model(voice_models, ann, training)
    assert (failed["status"], failed["isActive"]) == ("failed", False)
    assert get_model(voice_models, ann, done["id"])["isActive"] is True
    active = activation.get("/voice-models/user/me/active", headers=bearer(ann)).get_json()
    assert active["model"]["id"] == done["id"]


def external_result(similarity: float) -> dict[str, Any]:
    """What an external trainer (XTTS, say) writes for a model it trained."""
    return {
        "status": "completed",
        "provider": "xtts-v2",
        "trainer": "xtts-finetune",
        "voice": {"voiceId": "speaker-7", "language": "en-US"},
        "qualityComponents": {
            "similarity": similarity,
            "naturalness": 0.9,
            "clarity": 0.9,
            "consistency": 0.9,
        },
        "metrics": {"epochs": 12},
        "files": ["model.pth"],
        "sampleRate": 24000,
    }


def pending_model(user_id: str, provider: str = "xtts-v2") -> str:
    """Store a pending model as ``POST /voice-models/train`` does (not activated)."""
    model = VoiceModel(
        user_id=user_id,
        provider=provider,
        model_path="models/x/model.pth",
        status=VoiceModelStatus.PENDING,
    )
    get_container().store.create(VOICE_MODELS, model.id, model.to_document())
    return model.id


def test_a_result_whose_event_never_came_is_applied_by_the_sweep(voice_models, token, worker):
    ann = token("ann")
    model_id = pending_model("ann")
    write_artifact("ann", model_id, external_result(0.9))
    training_completed(metadata_event("ann", model_id, time="2020-01-01T00:00:00.000Z"))
    assert get_model(voice_models, ann, model_id)["status"] == "pending"  # the event dropped
    waiting = pending_model("ann")  # no result yet: left to its trainer
    deps = get_container().deps(SAMPLES)
    # Within the grace its event may still come; past it, the sweep applies the result.
    assert reconcile_training(deps, utcnow()) == []
    later = utcnow() + TRAINING_GRACE + timedelta(seconds=1)
    assert reconcile_training(deps, later) == [model_id]
    model = get_model(voice_models, ann, model_id)
    assert (model["status"], model["provider"], model["isActive"]) == ("completed", "xtts-v2", True)
    assert reconcile_training(deps, later) == []  # settled: nothing to do again
    training_completed(metadata_event("ann", model_id))  # the event, late: changes nothing
    assert get_model(voice_models, ann, model_id) == model
    assert get_model(voice_models, ann, waiting)["status"] == "pending"


def test_the_sweep_runs_as_a_scheduled_job(voice_models, function_client, token, worker):
    ann = token("ann")
    model = VoiceModel(
        user_id="ann",
        provider="xtts-v2",
        model_path="models/x/model.pth",
        status=VoiceModelStatus.TRAINING,
        updated_at=utcnow() - TRAINING_GRACE - timedelta(minutes=1),
    )
    get_container().store.create(VOICE_MODELS, model.id, model.to_document())
    write_artifact("ann", model.id, external_result(0.9))  # and its event never comes
    admin = bearer(token("root", admin=True))
    run = function_client("tasks").post("/scheduler/jobs/training-reconcile/run", headers=admin)
    assert run.status_code == 202, run.get_json()
    deadline = time.monotonic() + 30
    while get_model(voice_models, ann, model.id)["status"] != "completed":
        assert time.monotonic() < deadline, "the scheduled sweep never applied the result"
        time.sleep(0.05)


def test_activation_rules_apply_on_completion(voice_models, function_client, token, worker):
    ann = token("ann")
    first, second, third = pending_model("ann"), pending_model("ann"), pending_model("ann")
    for model_id, similarity in ((first, 0.5), (second, 0.5), (third, 1.0)):
        write_artifact("ann", model_id, external_result(similarity))
        training_completed(metadata_event("ann", model_id))
        assert get_model(voice_models, ann, model_id)["status"] == "completed"
        if model_id == first:  # the user's first usable model
            assert get_model(voice_models, ann, first)["isActive"] is True
    # 0.4*0.5 + 0.3*0.9 + 0.2*0.9 + 0.1*0.9 = 0.74: not above 0.8, so the second stays
    # inactive; with similarity 1.0 the third scores 0.94 and takes over.
    assert get_model(voice_models, ann, second)["isActive"] is False
    assert get_model(voice_models, ann, first)["isActive"] is False
    third_model = get_model(voice_models, ann, third)
    assert (third_model["isActive"], third_model["qualityScore"]) == (True, 0.94)
    active = function_client("voice_model_activation").get(
        "/voice-models/user/ann/active", headers=bearer(ann)
    )
    assert active.get_json()["model"]["id"] == third


def test_training_requests_are_checked(samples_client, token, ann_samples, monkeypatch):
    ann, sample_ids = ann_samples
    bob = token("bob")
    unprocessed_id = "nope"

    def expect(response, status: int, code: str) -> None:
        assert response.status_code == status, response.get_json()
        assert response.get_json()["code"] == code

    expect(train(samples_client, bob, sample_ids), 404, "SAMPLE_NOT_FOUND")
    expect(train(samples_client, ann, [unprocessed_id]), 404, "SAMPLE_NOT_FOUND")
    expect(train(samples_client, ann, sample_ids, provider="xtts-v2"), 422, "TRAINER_NOT_AVAILABLE")
    expect(
        train(samples_client, ann, sample_ids, provider="elevenlabs"),
        422,
        "PROVIDER_NOT_CONFIGURED",
    )
    expect(train(samples_client, ann, []), 400, "VALIDATION_ERROR")
    expect(train(samples_client, ann, sample_ids, provider="gpt"), 400, "VALIDATION_ERROR")
    monkeypatch.setattr(get_container().settings, "training_max_samples", 2)
    expect(train(samples_client, ann, sample_ids), 400, "VALIDATION_ERROR")

    get_container().tasks.stop()
    waiting = samples_client.post(
        "/samples",
        data={"file": (BytesIO(sample_file(VOICE, 4)), "x.wav")},
        headers=bearer(ann),
        content_type="multipart/form-data",
    ).get_json()
    expect(train(samples_client, ann, [waiting["id"]]), 409, "SAMPLE_NOT_READY")
    monkeypatch.setattr(get_container().settings, "training_max_samples", 20)
    monkeypatch.setattr(get_container().settings, "rate_limit_model_creates_per_hour", 5)
    for _ in range(5):
        assert train(samples_client, ann, sample_ids).status_code == 202
    expect(train(samples_client, ann, sample_ids), 429, "RATE_LIMITED")


def test_the_training_task_is_idempotent_and_fails_for_good_when_samples_go(
    samples_client, voice_models, ann_samples
):
    ann, sample_ids = ann_samples
    container = get_container()
    container.tasks.stop()  # the test runs the task itself
    model_id = train(samples_client, ann, sample_ids).get_json()["id"]
    samples_client.delete(f"/samples/{sample_ids[1]}", headers=bearer(ann))
    deps = container.deps(SAMPLES)

    outcome = run_training(deps, model_id)

    assert outcome.startswith("failed: Sample")
    artifact = json.loads(
        container.blobs.get(models_bucket(), folder("ann", model_id) + "metadata.json")
    )
    assert artifact == {**artifact, "status": "failed"}
    assert "deleted" in artifact["reason"]
    assert run_training(deps, model_id).startswith("nothing to do")
    training_completed(metadata_event("ann", model_id))
    assert get_model(voice_models, ann, model_id)["status"] == "failed"
    assert run_training(deps, model_id).startswith("nothing to do")
