"""A client's view of its syntheses: job and file history, audio in one round trip, callbacks.

Real functions, real dev tokens, the real eSpeak engine; callbacks reach a real HTTP
server on a loopback port through the in-process task queue.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.bootstrap import get_container
from shared.config import Settings
from shared.errors import InvalidRequestError
from shared.files.model import checksum_of
from shared.providers.base import ErrorCategory, SynthesisRequest, SynthesisResult, provider_error
from shared.providers.registry import ProviderRegistry
from shared.synthesis import CAPABILITY as SYNTHESIS
from shared.synthesis import tasks as synthesis_tasks
from shared.synthesis.callbacks import SIGNATURE_HEADER, check_callback_url, signing_secret
from shared.tasks.base import QueuePolicy, TaskRegistry
from shared.tasks.inprocess import InProcessTaskQueue
from shared.tasks.push_auth import AdminTokenPushVerifier
from shared.tasks.runtime import TaskRuntime
from shared.tasks.scheduling import JobRegistry
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis_fixtures import CountingEspeak
from tests.functions.test_synthesis_jobs import LONG_TEXT

ann = fx.ann
bob = fx.bob
espeak = fx.espeak
synthesis_client = fx.synthesis_client

FAST = QueuePolicy(max_attempts=4, min_backoff=0.05, max_backoff=0.1, max_concurrent=4)


def say(client: Any, headers: dict[str, str], text: str, **fields: Any) -> dict[str, Any]:
    body = {"text": text, "voice": "en-US", "includeTimestamps": False, **fields}
    response = client.post("/synthesize", json=body, headers=headers)
    assert response.status_code in (200, 202), response.get_json()
    return dict(response.get_json())


# -- history ----------------------------------------------------------------------------


def test_jobs_list_the_callers_own_newest_first_by_page_and_status(
    synthesis_client, ann, bob, espeak
):
    made = [say(synthesis_client, ann, f"Sentence number {n}.") for n in range(5)]
    say(synthesis_client, bob, "Not ann's.")
    pending = say(synthesis_client, ann, LONG_TEXT)  # no worker runs here: it stays pending
    assert pending["status"] == "pending"
    first = synthesis_client.get("/synthesis/jobs?limit=4", headers=ann).get_json()
    assert [job["jobId"] for job in first["jobs"]] == [
        pending["jobId"],
        *[job["jobId"] for job in reversed(made)][:3],
    ]
    rest = synthesis_client.get(
        f"/synthesis/jobs?limit=4&cursor={first['nextCursor']}", headers=ann
    ).get_json()
    assert [job["jobId"] for job in rest["jobs"]] == [j["jobId"] for j in made[:2]][::-1]
    assert rest["nextCursor"] is None
    listed = first["jobs"][1]
    assert listed["status"] == "completed"
    assert listed["voice"] == "espeak:en-US"
    assert listed["audioFileId"] == made[-1]["audioFileId"]
    assert listed["createdAt"] <= listed["completedAt"]
    assert "timestamps" not in listed or listed["timestamps"] is None
    completed = synthesis_client.get("/synthesis/jobs?status=COMPLETED", headers=ann).get_json()
    assert len(completed["jobs"]) == 5
    waiting = synthesis_client.get("/synthesis/jobs?status=pending", headers=ann).get_json()
    assert [job["jobId"] for job in waiting["jobs"]] == [pending["jobId"]]
    assert synthesis_client.get("/synthesis/jobs?status=lost", headers=ann).status_code == 400


def test_failed_jobs_are_listed_as_failed(synthesis_client, ann, worker):
    class Broken(CountingEspeak):
        def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
            raise provider_error("espeak", ErrorCategory.PERMANENT, "broken")

    get_container().use_provider_registry(ProviderRegistry.of([Broken()]))
    started = say(synthesis_client, ann, LONG_TEXT)
    deadline = time.monotonic() + 20
    while True:
        failed = synthesis_client.get("/synthesis/jobs?status=failed", headers=ann).get_json()
        if failed["jobs"]:
            break
        assert time.monotonic() < deadline, "the job did not fail"
        time.sleep(0.05)
    [job] = failed["jobs"]
    assert job["jobId"] == started["jobId"]
    assert "broken" in job["error"]
    assert synthesis_client.get("/synthesis/jobs?status=pending", headers=ann).get_json() == {
        "jobs": [],
        "nextCursor": None,
    }


def test_files_list_the_callers_own_newest_first_with_the_same_field_names(
    function_client, synthesis_client, ann, bob
):
    files = function_client("files")
    made = [say(synthesis_client, ann, f"File number {n}.") for n in range(3)]
    say(synthesis_client, bob, "Bob's file.")
    page = files.get("/files?limit=2", headers=ann).get_json()
    assert [f["id"] for f in page["files"]] == [made[2]["audioFileId"], made[1]["audioFileId"]]
    rest = files.get(f"/files?cursor={page['nextCursor']}", headers=ann).get_json()
    assert [f["id"] for f in rest["files"]] == [made[0]["audioFileId"]]
    listed = page["files"][0]
    # A synthesis and its file say size and expiry with the same names.
    assert listed["size"] == made[2]["size"]
    assert listed["expiresAt"] == made[2]["expiresAt"]
    assert listed["contentType"] == "audio/wav"
    assert "fileSize" not in listed
    assert "filePath" not in listed
    info = files.get(f"/files/{made[2]['audioFileId']}/info", headers=ann).get_json()
    assert info["size"] == made[2]["size"]
    assert set(info) == set(listed)


def test_the_download_url_has_its_own_expiry_besides_the_files(synthesis_client, ann):
    body = say(synthesis_client, ann, "Two different expiries.")
    now = datetime.now(UTC)
    url_expiry = datetime.fromisoformat(body["downloadUrlExpiresAt"])
    file_expiry = datetime.fromisoformat(body["expiresAt"])
    assert abs(url_expiry - (now + timedelta(hours=1))) < timedelta(minutes=1)
    assert abs(file_expiry - (now + timedelta(days=30))) < timedelta(minutes=1)
    assert f"expires={int(url_expiry.timestamp())}" in body["downloadUrl"]


# -- the audio in one round trip ----------------------------------------------------------


def test_accept_audio_answers_the_audio_itself(synthesis_client, ann):
    text = "Audio in one round trip."
    response = synthesis_client.post(
        "/synthesize",
        json={"text": text, "voice": "en-US", "outputFormat": "mp3"},
        headers={**ann, "Accept": "audio/*"},
    )
    assert response.status_code == 200
    assert response.mimetype == "audio/mpeg"
    assert response.headers["X-Job-Id"]
    as_json = say(synthesis_client, ann, text, outputFormat="mp3", includeTimestamps=True)
    assert response.headers["X-Audio-File-Id"] != as_json["audioFileId"]
    assert checksum_of(response.data) == as_json["checksum"]
    assert response.headers["X-Cache-Hit"] == "false"
    pcm = synthesis_client.post(
        "/synthesize",
        json={"text": text, "voice": "en-US", "outputFormat": "pcm", "sampleRate": 16_000},
        headers={**ann, "Accept": "audio/L16, application/json;q=0.5"},
    )
    assert pcm.headers["Content-Type"] == "audio/L16;rate=16000;channels=1"
    dialogue = synthesis_client.post(
        "/synthesize/dialogue",
        json={"turns": [{"speaker": "A", "voice": "alloy", "text": text}], "outputFormat": "wav"},
        headers={**ann, "Accept": "audio/wav"},
    )
    assert dialogue.mimetype == "audio/wav"


def test_json_stays_the_default_and_an_unproducible_accept_is_406(synthesis_client, ann):
    for accept in (None, "*/*", "application/json", "application/json, audio/*;q=0.5"):
        headers = {**ann, **({"Accept": accept} if accept else {})}
        response = synthesis_client.post(
            "/synthesize", json={"text": "Still JSON.", "voice": "en-US"}, headers=headers
        )
        assert response.status_code == 200
        assert response.is_json, accept
    refused = synthesis_client.post(
        "/synthesize",
        json={"text": "A wav is not an mp3.", "voice": "en-US", "outputFormat": "wav"},
        headers={**ann, "Accept": "audio/mpeg"},
    )
    assert refused.status_code == 406
    assert refused.get_json()["code"] == "NOT_ACCEPTABLE"


# -- callbacks ----------------------------------------------------------------------------


class Receiver:
    """A real HTTP server recording the callbacks it gets; answers ``statuses`` in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/voice"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} callbacks"
            time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([500])  # the first delivery fails: the queue tries again
    yield server
    server.server.shutdown()


@pytest.fixture
def worker(espeak: CountingEspeak) -> Iterator[InProcessTaskQueue]:
    container = get_container()
    registry = TaskRegistry()
    synthesis_tasks.register_tasks(registry, lambda: container.deps(SYNTHESIS))
    settings = container.settings
    queue = InProcessTaskQueue(
        store=container.store,
        policies={settings.default_queue: FAST, settings.synthesis_queue: FAST},
        registry=registry,
        poll_interval=0.01,
    )
    container.use_task_runtime(
        TaskRuntime(registry, queue, AdminTokenPushVerifier(container.verifier), JobRegistry([]))
    )
    queue.start()
    yield queue
    queue.stop()


def verified(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    secret = signing_secret(get_container().settings)
    fields = dict(part.split("=", 1) for part in headers[SIGNATURE_HEADER].split(","))
    expected = hmac.new(secret, f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(time.time() - int(fields["t"])) < 60
    return dict(json.loads(body))


def test_a_long_job_calls_back_signed_and_retried_until_it_is_received(
    synthesis_client, ann, receiver, worker
):
    started = say(synthesis_client, ann, LONG_TEXT, callbackUrl=receiver.url)
    assert started["status"] == "pending"
    receiver.wait_for(2)
    (first_headers, first), (headers, body) = receiver.received
    assert first == body  # the same event, delivered again after the 500
    event = verified(headers, body)
    assert event["event"] == "synthesis.completed"
    assert event["job"]["jobId"] == started["jobId"]
    assert event["job"]["status"] == "completed"
    assert event["job"]["audioFileId"]
    # The job as GET /synthesis/jobs/{id} shows it, its file's details included (a receiver
    # need not ask), its timestamps and download URL aside (that GET has them; a URL would
    # differ from one delivery to the next, and may have expired by a late one).
    shown = synthesis_client.get(f"/synthesis/jobs/{started['jobId']}", headers=ann).get_json()
    for field in ("duration", "sampleRate", "size", "checksum", "expiresAt", "billedCharacters"):
        assert event["job"][field] is not None, field
        assert event["job"][field] == shown[field], field
    assert event["job"].get("downloadUrl") is None
    assert event["job"].get("timestamps") is None
    assert first_headers["X-Voice-Delivery"] == headers["X-Voice-Delivery"]
    time.sleep(0.3)
    assert len(receiver.received) == 2  # acknowledged: not sent again


def test_an_answer_at_once_calls_back_too(synthesis_client, ann, worker):
    receiver = Receiver([])
    try:
        done = say(synthesis_client, ann, "Short and called back.", callbackUrl=receiver.url)
        assert done["status"] == "completed"
        receiver.wait_for(1)
        event = verified(*receiver.received[0])
        assert event["job"]["jobId"] == done["jobId"]
    finally:
        receiver.server.shutdown()


def test_bad_callback_urls_are_refused(synthesis_client, ann):
    for url in ("ftp://example.com/x", "not a url", "https://user:pw@example.com/x"):
        response = synthesis_client.post(
            "/synthesize", json={"text": "Hi.", "voice": "en-US", "callbackUrl": url}, headers=ann
        )
        assert response.status_code == 400, url


PRODUCTION = {
    "environment": "production",
    "store": "gcp",
    "blobs": "gcp",
    "tasks": "gcp",
    "auth_mode": "firebase",
    "tasks_service_account": "tasks@p.iam.gserviceaccount.com",
}


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/voice",  # not https
        "https://127.0.0.1/voice",
        "https://10.1.2.3/voice",
        "https://169.254.169.254/computeMetadata/v1/",  # the metadata server
        "https://[::1]/voice",
        "https://localhost/voice",  # resolves to loopback
        "https://internal.example/voice",  # resolves to a private address
        "https://nowhere.invalid/voice",  # does not resolve
    ],
)
def test_production_refuses_callbacks_to_http_or_private_addresses(url):
    settings = Settings(_env_file=None, **PRODUCTION)
    resolved = {"localhost": ["127.0.0.1", "::1"], "internal.example": ["192.168.1.20"]}
    with pytest.raises(InvalidRequestError):
        check_callback_url(url, settings, lambda host: resolved.get(host, []))


def test_production_accepts_https_to_public_addresses():
    settings = Settings(_env_file=None, **PRODUCTION)
    public = {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]}
    url = "https://hooks.example.com/voice?team=7"
    assert check_callback_url(url, settings, lambda host: public.get(host, [])) == url
    locally = Settings(_env_file=None, environment="local")
    assert check_callback_url("http://127.0.0.1:9/x", locally) == "http://127.0.0.1:9/x"
