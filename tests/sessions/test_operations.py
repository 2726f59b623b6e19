"""What operations rely on: probes on the right paths, stored sessions that expire, a
backend that recovers when its speech model loads after all."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import yaml

from session.container import SessionContainer
from shared.sessions.model import ConnectionState, VoiceSession
from shared.sessions.repository import COLLECTION, EXPIRES_AT, SessionRepository
from shared.speech import SpeechRegistry
from shared.speech.whisper import WhisperSpeechToText, bundled_model_dir
from shared.store.sqlite import SqliteDocumentStore
from tests.sessions.support import Client, ServiceThread, counted_by_code
from tests.sessions.support import test_settings as session_settings

ROOT = Path(__file__).resolve().parents[2]


def test_a_stored_session_expires_a_resume_window_after_its_last_activity(tmp_path):
    store = SqliteDocumentStore(tmp_path / "store.sqlite3")
    try:
        repository = SessionRepository(store, resume_window=timedelta(seconds=300))
        session = VoiceSession(backend_id="native-1", user_id="ivy", connection_id="c1")
        repository.create(session)
        document = store.get(COLLECTION, session.id)
        assert document is not None
        assert document.data[EXPIRES_AT] == session.last_activity + timedelta(seconds=300)
        assert repository.get(session.id) == session  # the field is the store's, not the model's
    finally:
        store.close()


def test_cloud_run_waits_for_readyz_and_firestore_expires_stored_sessions():
    run = (ROOT / "infra" / "run.tf").read_text()
    startup = re.search(r"startup_probe \{(.*?)\n      \}", run, re.DOTALL)
    assert startup is not None
    assert re.search(r'http_get \{\s*path = "/readyz"', startup.group(1))
    firestore = (ROOT / "infra" / "firestore.tf").read_text()
    ttl = re.search(r"ttl_collections = toset\(\[(.*?)\]\)", firestore)
    assert ttl is not None
    assert f'"{COLLECTION}"' in ttl.group(1)
    assert 'field      = "expires_at"' in firestore


def readyz(service: ServiceThread) -> int:
    try:
        # Loopback http URL built by the test only.
        with urllib.request.urlopen(f"{service.http}/readyz", timeout=10) as reply:  # noqa: S310
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def readyz_answer(service: ServiceThread) -> tuple[int, dict]:
    try:
        # Loopback http URL built by the test only.
        with urllib.request.urlopen(f"{service.http}/readyz", timeout=10) as reply:  # noqa: S310
            return int(reply.status), json.loads(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_readyz_reports_every_backend_in_use_and_only_the_default_decides_readiness(
    start_service,
):
    # /readyz reported the default backend alone: a backend a session config named
    # (started on first use) did not appear in it at all.
    service = start_service()
    status, answer = readyz_answer(service)
    assert status == 200
    assert (answer["status"], answer["backend"], answer["otherBackends"]) == (
        "healthy",
        "native",
        {},
    )
    assert answer["details"] == {"instanceSessions": 0, "sttBacklog": 0}

    client = Client(service.url, service.token("uma"))
    client.start({"backend": "pipecat"})
    status, answer = readyz_answer(service)
    assert status == 200
    pipecat = answer["otherBackends"]["pipecat"]
    assert (pipecat["status"], pipecat["connection"], pipecat["activeSessions"]) == (
        "healthy",
        "connected",
        1,
    )
    # The default backend runs none of them; the instance counts the session on every one.
    assert answer["activeSessions"] == 0
    assert answer["details"]["instanceSessions"] == 1
    client.close()

    # The backend used on first use goes away: reported unhealthy, and the instance stays
    # ready for every session that names no backend (or the default).
    service.call(service.app.state.service.backends["pipecat"].stop())
    status, answer = readyz_answer(service)
    assert status == 200
    assert answer["status"] == "healthy"
    pipecat = answer["otherBackends"]["pipecat"]
    assert (pipecat["status"], pipecat["connection"]) == ("unhealthy", "disconnected")


def list_backends(service: ServiceThread, token: str) -> tuple[int, str | None]:
    """Return the status of ``GET /v1/backends`` and, when refused, its error body's code."""
    listing = urllib.request.Request(f"{service.http}/v1/backends")  # noqa: S310
    listing.add_header("Authorization", f"Bearer {token}")
    try:
        # Loopback http URL built by the test only.
        with urllib.request.urlopen(listing, timeout=10) as reply:  # noqa: S310
            return int(reply.status), None
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())["code"]


def test_refused_backend_listings_are_counted_once_by_code(start_service):
    # A bad token on GET /v1/backends was answered 401 but counted nowhere: an operator
    # saw the WebRTC offers' refusals in /metrics, never the listing's.
    service = start_service()
    assert list_backends(service, "not-a-token") == (401, "UNAUTHENTICATED")
    assert list_backends(service, "") == (401, "UNAUTHENTICATED")
    assert list_backends(service, service.token("vic")) == (200, None)
    assert counted_by_code(service, "voice_backends_list_errors_total") == {"UNAUTHENTICATED": 2.0}
    assert counted_by_code(service, "voice_webrtc_offer_errors_total") == {}


def test_a_backend_whose_speech_model_failed_to_load_reconnects_and_becomes_ready(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(bundled_model_dir(), model)
    weights = model / "model.bin"
    with weights.open("r+b") as handle:
        handle.seek(1000)
        original = handle.read(8)
        handle.seek(1000)
        handle.write(b"tampered")  # its SHA-256 no longer matches: Whisper refuses it
    recogniser = WhisperSpeechToText(model_dir=model, workers=1)
    container = SessionContainer(
        session_settings(tmp_path / "data"), speech=SpeechRegistry.of([recogniser])
    )
    service = ServiceThread(container).start()  # returns once the first connect has failed
    try:
        backend = service.app.state.service.backend
        assert backend.connection_state in (ConnectionState.ERROR, ConnectionState.RECONNECTING)
        assert readyz(service) == 503
        with weights.open("r+b") as handle:  # the file is put right
            handle.seek(1000)
            handle.write(original)
        deadline = time.monotonic() + 90
        while readyz(service) != 200:
            assert time.monotonic() < deadline, backend.connection_state
            time.sleep(0.2)
        assert backend.connection_state is ConnectionState.CONNECTED
        client = Client(service.url, service.token("uma"))
        assert client.start()["resumed"] is False
        client.close()
    finally:
        service.stop()
        recogniser.close()


def _after(steps: list[dict], step_id: str) -> set[str]:
    """Return every step that Cloud Build finishes before ``step_id`` starts."""
    ids = [step["id"] for step in steps]
    direct: dict[str, list[str]] = {}
    for index, step in enumerate(steps):
        wait = step.get("waitFor")
        # No waitFor: after every earlier step; "-": at the build's start.
        direct[step["id"]] = ids[:index] if wait is None else [w for w in wait if w != "-"]
    seen: set[str] = set()
    todo = list(direct[step_id])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(direct[current])
    return seen


def test_cloud_run_runs_the_image_cloud_build_built_and_pushed_after_the_tests():
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    steps = build["steps"]
    by_id = {step["id"]: step for step in steps}
    image = "${_SESSION_IMAGE}"
    assert "/voice-sessions:${BUILD_ID}" in build["substitutions"]["_SESSION_IMAGE"]
    assert (
        f'docker build -f session/Dockerfile -t "{image}" .'
        in by_id["session-image-build"]["args"][-1]
    )
    push = by_id["session-image-push"]["args"][-1]
    assert f'docker push "{image}"' in push
    assert f'echo "session_image = \\"{image}\\"" > infra/session.auto.tfvars' in push
    assert {"test", "session-image-build"} <= _after(steps, "session-image-push")
    assert "session-image-push" in _after(steps, "terraform-plan")
    assert "terraform-plan" in _after(steps, "terraform-apply")
    run = (ROOT / "infra" / "run.tf").read_text()
    assert re.search(r"containers \{\s*image = var\.session_image\s", run)
