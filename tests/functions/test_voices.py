"""The voices function over HTTP: catalog listing, providers, and admin-started syncs.

The function is built by functions-framework from ``functions/voices.py`` (main.py does not
export it yet). Syncs run for real through the in-process task queue: eSpeak NG (its
languages plus the variants of en-US) and a fake provider whose list the tests change.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import pytest

from shared.bootstrap import get_container
from shared.catalog.tasks import daily_sync_job, register_voice_sync_tasks
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from shared.providers.voices import AgeGroup, Gender
from shared.tasks.base import QueuePolicy, TaskRegistry
from shared.tasks.inprocess import InProcessTaskQueue
from shared.tasks.push_auth import AdminTokenPushVerifier
from shared.tasks.runtime import TaskRuntime
from shared.tasks.scheduling import JobRegistry
from tests.functions.conftest import bearer
from tests.support.fake_provider import FakeProvider, make_voice, make_voices

ROOT = Path(__file__).resolve().parents[2]
FAST = QueuePolicy(max_attempts=4, min_backoff=0.01, max_backoff=0.05, max_concurrent=4)
ESPEAK_VOICES = 141 + 104  # every language, plus every variant of en-US


@pytest.fixture(scope="module")
def espeak():
    return EspeakProvider(variant_languages=["en-us"])


@pytest.fixture
def acme():
    return FakeProvider("acme", make_voices("acme", 30))


@pytest.fixture
def client(platform, function_client, espeak, acme):
    container = get_container()
    providers = ProviderRegistry.of([espeak, acme])
    container.use_provider_registry(providers)
    registry = TaskRegistry()
    queue_name = container.settings.sync_queue
    queue = InProcessTaskQueue(
        store=container.store, policies={queue_name: FAST}, registry=registry, poll_interval=0.02
    )
    register_voice_sync_tasks(
        registry, providers=lambda: providers, queue=lambda: queue, queue_name=queue_name
    )
    runtime = TaskRuntime(
        registry,
        queue,
        AdminTokenPushVerifier(container.verifier),
        JobRegistry([daily_sync_job(container.settings)]),
    )
    container.use_task_runtime(runtime)
    queue.start()
    yield ByPath(catalog=function_client("voices"), sync=function_client("sync_voices"))
    queue.stop()


class ByPath:
    """Sends each request to the function that serves its path, as the gateway does."""

    def __init__(self, *, catalog, sync):
        self._catalog, self._sync = catalog, sync

    def _pick(self, path):
        return self._sync if path.startswith("/voices/sync") else self._catalog

    def get(self, path, **kwargs):
        return self._pick(path).get(path, **kwargs)

    def post(self, path, **kwargs):
        return self._pick(path).post(path, **kwargs)


@pytest.fixture
def admin(token):
    return bearer(token("root", admin=True))


@pytest.fixture
def user(token):
    return bearer(token("ann"))


def start(client, admin, provider=None):
    body = {"provider": provider} if provider else None
    response = client.post("/voices/sync", json=body, headers=admin)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["jobs"]


def wait(client, admin, job_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/voices/sync/jobs/{job_id}", headers=admin).get_json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


def sync(client, admin, provider=None):
    return [wait(client, admin, job["id"]) for job in start(client, admin, provider)]


def list_all(client, headers, **params):
    voices, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/voices", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        voices.extend(body["voices"])
        cursor = body["nextCursor"]
        if cursor is None:
            return voices


# -- sync over HTTP ---------------------------------------------------------------------------


def test_admin_sync_of_espeak_answers_202_with_pending_jobs(client, admin):
    jobs = start(client, admin, "espeak")
    assert len(jobs) == 1
    job = jobs[0]
    assert job["provider"] == "espeak"
    assert job["status"] in ("pending", "running", "completed")
    assert {
        "voicesAdded",
        "voicesUpdated",
        "voicesDeprecated",
        "retryCount",
        "errorMessage",
    } <= set(job)
    assert {"createdAt", "startedAt", "completedAt"} <= set(job)
    done = wait(client, admin, job["id"])
    assert done["status"] == "completed"
    assert (done["voicesAdded"], done["voicesUpdated"], done["voicesDeprecated"]) == (
        ESPEAK_VOICES,
        0,
        0,
    )
    assert done["retryCount"] == 0
    assert done["errorMessage"] is None
    assert done["completedAt"].endswith("Z")


def test_sync_without_body_syncs_every_provider_and_second_run_reports_zeros(client, admin):
    first = sync(client, admin)
    assert sorted(job["provider"] for job in first) == ["acme", "espeak"]
    second = sync(client, admin)
    for job in second:
        assert job["status"] == "completed"
        assert (job["voicesAdded"], job["voicesUpdated"], job["voicesDeprecated"]) == (0, 0, 0)


def test_sync_needs_an_admin(client, user):
    response = client.post("/voices/sync", headers=user)
    assert response.status_code == 403
    assert client.get("/voices/sync/jobs", headers=user).status_code == 403


def test_sync_of_a_provider_that_is_not_enabled_is_404(client, admin):
    response = client.post("/voices/sync", json={"provider": "watson"}, headers=admin)
    assert response.status_code == 404
    assert response.get_json()["code"] == "PROVIDER_NOT_FOUND"
    assert client.get("/voices/sync/jobs", headers=admin).get_json()["jobs"] == []


def test_sync_jobs_list_newest_first_with_cursor(client, admin):
    first = sync(client, admin, "acme")[0]
    second = sync(client, admin, "acme")[0]
    page = client.get("/voices/sync/jobs", query_string={"limit": 1}, headers=admin).get_json()
    assert [job["id"] for job in page["jobs"]] == [second["id"]]
    rest = client.get(
        "/voices/sync/jobs", query_string={"limit": 1, "cursor": page["nextCursor"]}, headers=admin
    ).get_json()
    assert [job["id"] for job in rest["jobs"]] == [first["id"]]
    missing = client.get("/voices/sync/jobs/nope", headers=admin)
    assert missing.status_code == 404
    assert missing.get_json()["code"] == "VOICE_SYNC_JOB_NOT_FOUND"


def test_failed_job_reports_its_error_and_retries(client, admin, acme):
    from shared.providers.base import ErrorCategory

    acme.fail_with(ErrorCategory.TRANSIENT, times=5)
    [job] = sync(client, admin, "acme")
    assert job["status"] == "failed"
    assert job["retryCount"] == 3
    assert job["errorMessage"] == "acme transient failure"


# -- the catalog ------------------------------------------------------------------------------


def test_listing_needs_a_token(client):
    assert client.get("/voices").status_code == 401


def test_list_filters_and_paginates(client, admin, user):
    sync(client, admin)
    female_us = list_all(
        client, user, provider="espeak", language="en-us", gender="female", limit=7
    )
    assert female_us, "eSpeak has female en-US variants"
    assert all(
        v["provider"] == "espeak" and v["language"] == "en-US" and v["gender"] == "female"
        for v in female_us
    )
    ids = [v["id"] for v in female_us]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    seniors = list_all(client, user, provider="espeak", ageGroup="senior")
    assert {v["voiceId"] for v in seniors} >= {"en-US+grandma"}
    assert all(v["ageGroup"] == "senior" for v in seniors)
    # A bare language matches every region of it.
    english = list_all(client, user, language="en", provider="espeak", limit=100)
    assert {v["language"] for v in english} >= {"en-US", "en-GB"}


def test_style_and_use_case_filters(client, admin, user, acme):
    acme.voices = [
        make_voice("acme", 1, styles=("cheerful", "customer-service"), use_cases=("narration",)),
        make_voice("acme", 2, styles=("calm",), use_cases=("narration", "assistant")),
        make_voice("acme", 3, styles=("cheerful",), use_cases=("assistant",)),
    ]
    sync(client, admin, "acme")
    both = list_all(client, user, style="cheerful", useCase="assistant")
    assert [v["voiceId"] for v in both] == ["voice-0003"]
    hyphen = list_all(client, user, style="Customer-Service")
    assert [v["voiceId"] for v in hyphen] == ["voice-0001"]


def test_deprecated_voices_are_hidden_unless_asked_for(client, admin, user, acme):
    sync(client, admin, "acme")
    acme.voices = acme.voices[1:]
    [job] = sync(client, admin, "acme")
    assert job["voicesDeprecated"] == 1
    visible = list_all(client, user, provider="acme")
    everything = list_all(client, user, provider="acme", includeDeprecated="true")
    assert len(visible) == 29
    assert len(everything) == 30
    gone = next(v for v in everything if v["isDeprecated"])
    assert gone["voiceId"] == "voice-0000"
    still_there = client.get(f"/voices/{gone['id']}", headers=user)
    assert still_there.status_code == 200
    assert still_there.get_json()["isDeprecated"] is True


def test_get_one_voice(client, admin, user):
    sync(client, admin, "espeak")
    response = client.get("/voices/" + quote("espeak:en-US+grandma"), headers=user)
    assert response.status_code == 200
    voice = response.get_json()
    assert voice["id"] == "espeak:en-US+grandma"
    assert voice["displayName"] == "English (America) (grandma)"
    assert (voice["gender"], voice["ageGroup"]) == (Gender.FEMALE.value, AgeGroup.SENIOR.value)
    assert voice["supportsMultiSpeaker"] is False
    assert voice["syncedAt"].endswith("Z")
    assert {"styles", "useCases", "sampleAudioUrl", "tags", "metadata", "description"} <= set(voice)
    missing = client.get("/voices/espeak:nope", headers=user)
    assert missing.status_code == 404
    assert missing.get_json()["code"] == "VOICE_NOT_FOUND"


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"gender": "robot"},
        {"ageGroup": "baby"},
        {"colour": "red"},
        {"language": "!!"},
    ],
)
def test_bad_list_queries_are_400(client, user, query):
    response = client.get("/voices", query_string=query, headers=user)
    assert response.status_code == 400
    assert response.get_json()["code"] == "VALIDATION_ERROR"


def test_providers_summary(client, admin, user):
    before = {
        p["name"]: p for p in client.get("/voices/providers", headers=user).get_json()["providers"]
    }
    assert before["acme"]["voiceCount"] == 0
    assert before["acme"]["lastJobStatus"] is None
    [job] = sync(client, admin, "espeak")
    providers = {
        p["name"]: p for p in client.get("/voices/providers", headers=user).get_json()["providers"]
    }
    assert list(providers) == ["espeak", "acme"]
    espeak = providers["espeak"]
    assert espeak["voiceCount"] == ESPEAK_VOICES
    assert espeak["lastJobStatus"] == "completed"
    assert espeak["lastJobId"] == job["id"]
    assert espeak["lastSyncedAt"] == job["completedAt"]
    caps = espeak["capabilities"]
    assert caps["ssml"] is True
    assert caps["timing"] == "word"
    assert caps["multiSpeaker"] is False
    assert "en-US" in caps["languages"]


# -- finding voices ---------------------------------------------------------------------------


def test_voice_ids_and_enum_values_are_case_insensitive(client, admin, user):
    sync(client, admin, "espeak")
    for spelling in ("espeak:en-us", "ESPEAK:EN-US", "espeak:en-US"):
        response = client.get("/voices/" + quote(spelling), headers=user)
        assert response.status_code == 200, (spelling, response.get_json())
        assert response.get_json()["id"] == "espeak:en-US"
    grandma = client.get("/voices/" + quote("espeak:EN-us+Grandma"), headers=user)
    assert grandma.get_json()["id"] == "espeak:en-US+grandma"
    female = list_all(client, user, provider="ESPEAK", language="EN-us", gender="Female")
    assert female
    assert all(v["gender"] == "female" for v in female)
    assert list_all(client, user, ageGroup="SENIOR", provider="espeak")
    # A bare language matches every region of it; a whole tag, in any case, only itself.
    english = {v["language"] for v in list_all(client, user, language="EN", limit=100)}
    assert {"en-US", "en-GB", "en-GB-x-rp"} <= english
    british = {v["language"] for v in list_all(client, user, language="en-gb", limit=100)}
    assert british == {"en-GB"}


def test_search_matches_display_names_and_labels_by_word_prefix(client, admin, user, acme):
    acme.voices = [
        make_voice("acme", 1, display_name="Rachel Calm", styles=("customer-service",)),
        make_voice("acme", 2, display_name="Adam Deep", tags=("Narrator",)),
        make_voice("acme", 3, display_name="Ráchel Élan"),
    ]
    sync(client, admin)
    assert [v["id"] for v in list_all(client, user, search="rach")] == ["acme:voice-0001"]
    assert [v["id"] for v in list_all(client, user, search="narr")] == ["acme:voice-0002"]
    assert [v["id"] for v in list_all(client, user, search="Customer Serv")] == ["acme:voice-0001"]
    assert [v["id"] for v in list_all(client, user, search="élan")] == ["acme:voice-0003"]
    english = list_all(client, user, search="english america", provider="espeak")
    assert "espeak:en-US" in {v["id"] for v in english}
    assert all("America" in v["displayName"] for v in english)
    grandma = list_all(client, user, search="grandma", language="en-US")
    assert [v["id"] for v in grandma] == ["espeak:en-US+grandma"]
    assert list_all(client, user, search="zzzz") == []
    bad = client.get("/voices", query_string={"search": "!!"}, headers=user)
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("name", lambda v: (v["displayName"].casefold(), v["id"])),
        ("language", lambda v: (v["language"], v["displayName"].casefold(), v["id"])),
        ("provider", lambda v: (v["provider"], v["displayName"].casefold(), v["id"])),
        ("id", lambda v: v["id"]),
    ],
)
def test_lists_sort_by_name_language_provider_or_id_across_pages(client, admin, user, sort, key):
    sync(client, admin)
    voices = list_all(client, user, sort=sort.upper(), limit=37)
    assert len(voices) == ESPEAK_VOICES + 30
    assert voices == sorted(voices, key=key)
    assert len({v["id"] for v in voices}) == len(voices)
    english = list_all(client, user, sort=sort, language="en", limit=100)
    assert english == sorted(english, key=key)
    assert {v["language"].split("-")[0] for v in english} == {"en"}


def test_a_sort_over_too_many_voices_asks_for_a_narrower_query(client, admin, user, monkeypatch):
    from shared.catalog import listing

    sync(client, admin, "acme")
    monkeypatch.setattr(listing, "MAX_SORTED", 10)
    response = client.get("/voices", query_string={"sort": "name"}, headers=user)
    assert response.status_code == 400
    assert "narrow the query" in response.get_json()["error"]
    assert (
        client.get(
            "/voices", query_string={"sort": "name", "search": "voice 3"}, headers=user
        ).status_code
        == 200
    )
    wrong = client.get("/voices", query_string={"sort": "name", "cursor": "bm9wZTo1"}, headers=user)
    assert wrong.status_code == 400


def test_catalog_metadata_keys_are_camel_case(client, admin, user):
    sync(client, admin)
    for voice in list_all(client, user, limit=100):
        for key in voice["metadata"]:
            assert "_" not in key, (voice["id"], key)
    grandma = client.get("/voices/" + quote("espeak:en-US+grandma"), headers=user).get_json()
    assert grandma["metadata"]["espeakVariant"] == "grandma"
    assert grandma["metadata"]["espeakIdentifier"] == "gmw/en-US"
