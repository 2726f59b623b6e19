"""Tenant isolation: no HTTP route lets one user reach another user's data.

Ann creates one of every kind of resource through the public API: her profile, a voice
model (shared with cid) and its backup, syntheses and a long synthesis job with their
audio files (one made public), voice samples (one made public), a lexicon, and a pre-call
sample, caller mapping and call. Then:

- bob, a plain user, calls every route that has path parameters with ann's real ids and
  every method it has: each answer is 403 or 404 and names none of ann's other ids or
  names (the 404 may echo the id bob put in the URL);
- cid, whom ann granted the use of her model, may read it and nothing more;
- bob may read ann's public sample and file, and change neither;
- ann's ids in bodies and queries (a voice, a lexicon, a sample, a backup, ``userId`` or
  ``accountId``) are refused, no listing bob reads shows her resources, bob's syntheses of
  her very texts give him his own job and file, and deleting his account leaves hers;
- afterwards ann (and cid) read everything back: nothing bob or cid did changed it.

Routes with path parameters not swept, because their parameters name no user's data:

- ``GET /tasks/dead-letters/{task_id}``, ``POST /tasks/dead-letters/{task_id}/retry``:
  the platform's dead-lettered tasks (admin routes);
- ``POST /scheduler/jobs/{name}/run`` (admin) and ``POST /scheduler/jobs/{name}/fire``
  (Cloud Scheduler's, push-verified): the platform's scheduled jobs;
- ``GET /console/{name}``: the console's static files (public).

``PUT /precall/samples/{name}`` is swept with ann's sample name: it stores into the
caller's own folder, so bob's upload succeeds, and must land in his folder, not ann's.
``DELETE /precall/samples/{name}``, swept after it, deletes that copy of bob's (204), never
ann's recording, which she reads back at the end.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Callable, Collection
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.bootstrap import get_container
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.conftest import bearer
from tests.functions.precall_support import espeak_wav
from tests.functions.samples_fixtures import ready_sample, samples_client, worker
from tests.functions.test_openapi_statuses import http_routes
from tests.functions.test_synthesis_jobs import LONG_TEXT
from tests.support.voice_samples import sample_file

__all__ = ["samples_client", "worker"]
espeak = fx.espeak

_PARAM = re.compile(r"<(?:[a-z]+:)?([A-Za-z_]+)>")

# The routes whose parameters name no user's data (see the module docstring).
SKIPPED = {
    "/tasks/dead-letters/<task_id>",
    "/tasks/dead-letters/<task_id>/retry",
    "/scheduler/jobs/<name>/run",
    "/scheduler/jobs/<name>/fire",
    "/console/<path:name>",
}
# Routes acting in the caller's own namespace: bob's call succeeds, in his namespace.
OWN_NAMESPACE = {("PUT", "/precall/samples/<name>"), ("DELETE", "/precall/samples/<name>")}
# Which of ann's ids (keys of ``World.ids``) fill each path parameter.
PARAMS = {
    "user_id": ["user", "grantee"],
    "model_id": ["model"],
    "voice_id": ["model"],
    "file_id": ["file", "long file"],
    "job_id": ["job", "long job"],
    "sample_id": ["sample"],
    "lexicon_id": ["lexicon"],
    "version": ["version"],
    "mapping_id": ["mapping"],
    "call_id": ["call", "greeting call"],
    "name": ["precall sample"],
}
# What cid, granted the use of ann's model, may do with it: read it, and its usage.
GRANTED_MODEL = {
    ("GET", "/voice-models/<model_id>"),
    ("GET", "/voice-models/<model_id>/usage-stats"),
}
# What anyone may do with ann's public sample and file: read them.
PUBLIC_READS = {
    ("GET", "/samples/<sample_id>"),
    ("GET", "/samples/<sample_id>/similar"),
    ("GET", "/files/<file_id>/info"),
    ("GET", "/files/audio/<file_id>"),
}
ANN_NUMBER = "+14155550100"
HELLO = "Hello there, how are you today?"
PUBLIC_TEXT = "This one anybody may listen to."
REFUSED = (403, 404)


class World:
    """Ann's resources: ``ids`` by kind, and ``secrets`` (ids and names) others must not see."""

    def __init__(self, clients: Callable[[str], FlaskClient], token: Callable[..., str]) -> None:
        self.client = clients
        self.ann = bearer(token("ann"))
        self.bob = bearer(token("bob"))
        self.cid = bearer(token("cid"))
        self.bobs_sample = ""
        self.ids: dict[str, str] = {"user": "ann", "grantee": "cid", "version": "1"}
        self.secrets: dict[str, str] = {
            "ann's user id": "ann",
            "ann's email": "ann@example.com",
            "ann's first name": "Annika",
            "ann's last name": "Larsdotter",
            "ann's caller number": ANN_NUMBER,
        }

    def keep(self, kind: str, value: str) -> str:
        self.ids[kind] = value
        self.secrets[f"ann's {kind} id"] = value
        return value


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def text_of(response: Any) -> str:
    """Return the response's headers and body as text (ids may hide in either)."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return f"{headers}\n\n{response.get_data().decode('utf-8', 'replace')}"


def mentions(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text) is not None


def leaked(
    world: World, answer: str, sent: str = "", shown: frozenset[str] = frozenset()
) -> list[str]:
    """Return the labels of ann's secrets in ``answer``, but those bob sent or may see."""
    return sorted(
        label
        for label, value in world.secrets.items()
        if label not in shown and mentions(answer, value) and not mentions(sent, value)
    )


def wait_for_job(world: World, job_id: str) -> dict[str, Any]:
    synthesis = world.client("synthesis")
    deadline = time.monotonic() + 30
    while True:
        job = ok(synthesis.get(f"/synthesis/jobs/{job_id}", headers=world.ann))
        if job["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return dict(job)
        time.sleep(0.05)


def build_world(world: World, token: Callable[..., str]) -> None:
    """Create one of each of ann's resources through the public HTTP API."""
    ann, client = world.ann, world.client
    body = {"email": "ann@example.com", "firstName": "Annika", "lastName": "Larsdotter"}
    ok(client("users").post("/users", json=body, headers=ann), 201)
    ok(client("users").post("/users", json={"email": "bob@example.com"}, headers=world.bob), 201)

    model: dict[str, Any] = {
        "name": "Velvet studio voice",
        "provider": "espeak",
        "modelPath": "models/ann/studio/model.pth",
        "qualityScore": 0.9,
        "metadata": {"language": "en-US"},
    }
    voice_models = client("voice_models")
    created = ok(voice_models.post("/voice-models", json=model, headers=ann), 201)
    model_id = world.keep("model", created["id"])
    world.secrets["ann's model name"] = model["name"]
    share = {"targetUserIds": ["cid"]}
    ok(voice_models.post(f"/voice-models/{model_id}/share", json=share, headers=ann))
    backup = ok(voice_models.post("/voice-models/user/ann/backup", headers=ann), 201)
    world.keep("backup", backup["backupPath"])

    synthesis = client("synthesis")
    said = ok(synthesis.post("/synthesize", json={"text": HELLO, "voice": model_id}, headers=ann))
    world.keep("job", said["jobId"])
    world.keep("file", said["audioFileId"])
    public = {"text": PUBLIC_TEXT, "voice": "espeak:en-US"}
    said = ok(synthesis.post("/synthesize", json=public, headers=ann))
    world.keep("public job", said["jobId"])
    world.keep("public file", said["audioFileId"])
    ok(client("files").patch(f"/files/{said['audioFileId']}", json={"isPublic": True}, headers=ann))
    long = {"text": LONG_TEXT, "voice": "espeak:en-US"}
    long_job = world.keep(
        "long job", ok(synthesis.post("/synthesize", json=long, headers=ann), 202)["jobId"]
    )
    done = wait_for_job(world, long_job)
    assert done["status"] == "completed", done
    world.keep("long file", done["audioFileId"])

    samples = client("samples")
    sample = ready_sample(samples, token("ann"), sample_file("en-US+f3"), name="Morning take")
    world.keep("sample", sample["id"])
    world.secrets["ann's sample name"] = sample["name"]
    public_sample = ready_sample(
        samples, token("ann"), sample_file("en-US+f3", 2), name="Harbour take", isPublic="true"
    )
    world.keep("public sample", public_sample["id"])
    world.secrets["ann's public sample name"] = public_sample["name"]
    world.bobs_sample = ready_sample(samples, token("bob"), sample_file("en-US+f3", 1))["id"]

    lexicon: dict[str, Any] = {
        "name": "Street names",
        "language": "en-US",
        "rules": [{"grapheme": "Nguyen", "alias": "win"}],
    }
    made = ok(client("lexicons").post("/lexicons", json=lexicon, headers=ann), 201)
    world.keep("lexicon", made["id"])
    world.secrets["ann's lexicon name"] = lexicon["name"]

    # The clone of a call would build the voice-match table (a minute): it stays queued.
    get_container().tasks.stop()
    precall = client("precall")
    world.ids["precall sample"] = "annika-voice.wav"
    stored = precall.put(
        "/precall/samples/annika-voice.wav",
        data=espeak_wav("en-US+f3"),
        content_type="audio/wav",
        headers=ann,
    )
    sample_url = world.keep("precall sample url", ok(stored)["voiceSampleUrl"])
    mapping = {"callerId": ANN_NUMBER, "voiceSampleUrl": sample_url, "voiceName": "Marigold"}
    made = ok(precall.post("/precall/mappings", json=mapping, headers=ann), 201)
    world.keep("mapping", made["id"])
    world.secrets["ann's mapping voice name"] = mapping["voiceName"]
    webhook = {"callerId": ANN_NUMBER, "greetingCallId": "greeting-annika-1"}
    call = ok(precall.post("/precall/calls", json=webhook, headers=ann), 202)["call"]
    world.keep("call", call["id"])
    world.keep("greeting call", call["callId"])


def body_for(world: World, method: str, rule: str) -> dict[str, Any] | None:
    """Return a body the route accepts, changing what it would change if the caller could."""
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("PUT", "/voice-models/<model_id>"): {"name": "Bob was here"},
        ("POST", "/voice-models/<model_id>/share"): {"targetUserIds": ["bob"]},
        ("POST", "/voice-models/user/<user_id>/restore"): {"backupPath": world.ids["backup"]},
        ("PATCH", "/files/<file_id>"): {"isPublic": True},
        ("PATCH", "/samples/<sample_id>"): {"name": "Bob was here", "isPublic": True},
        ("PATCH", "/lexicons/<lexicon_id>"): {"name": "Bob was here"},
        ("PUT", "/precall/mappings/<mapping_id>"): {"voiceName": "Bob"},
        ("POST", "/precall/calls/<call_id>/transfer"): {"agentCallId": "bob-agent-1"},
        ("POST", "/precall/calls/<call_id>/end"): {"status": "completed", "transcript": "Bob"},
    }
    return bodies.get((method, rule))


def filled(rule: str, values: list[str]) -> str:
    """Return ``rule`` with its parameters replaced by ``values``, in order."""
    remaining = iter(values)
    return _PARAM.sub(lambda _: next(remaining), rule)


def sweep(
    world: World,
    caller: dict[str, str],
    *,
    only: set[str] | None = None,
    ids: dict[str, list[str]] | None = None,
    granted: Collection[tuple[str, str]] = (),
    shown: frozenset[str] = frozenset(),
) -> tuple[set[tuple[str, str]], list[str]]:
    """Call each route with path parameters (those naming ``only``) as ``caller``.

    Every call is refused (403 or 404) unless ``granted``, which answers 2xx; no answer
    names a secret of ann's the caller did not send, bar ``shown`` in granted answers.
    Returns the routes swept (method, rule) and the problems seen.
    """
    params = {**PARAMS, **(ids or {})}
    problems: list[str] = []
    swept: set[tuple[str, str]] = set()
    for target, route in http_routes():
        names = _PARAM.findall(route.rule)
        if not names or route.rule in SKIPPED or (only and not only & set(names)):
            continue
        unknown = [name for name in names if name not in params]
        assert unknown == [], f"{route.rule}: map {unknown} to ann's ids in PARAMS, or skip it"
        swept.update((method, route.rule) for method in route.methods)
        for kinds in itertools.product(*(params[name] for name in names)):
            path = filled(route.rule, [world.ids[kind] for kind in kinds])
            for method in route.methods:
                kwargs: dict[str, Any] = {"headers": caller}
                body = body_for(world, method, route.rule)
                own = (method, route.rule) in OWN_NAMESPACE
                if own and method == "PUT":
                    kwargs.update(data=espeak_wav("en-US+m3"), content_type="audio/wav")
                elif body is not None or route.body_required:
                    kwargs["json"] = body or {}
                response = world.client(target).open(path, method=method, **kwargs)
                answer = text_of(response)
                status = response.status_code
                where = f"{method} {path} ({route.rule}) -> {status}"
                allowed = (method, route.rule) in granted or own
                if allowed and not 200 <= status < 300:
                    problems.append(f"{where}: refused what it may do: {answer[-300:]}")
                if not allowed and status not in REFUSED:
                    problems.append(f"{where}: not refused: {answer[-300:]}")
                if own:
                    seen = leaked(world, answer)  # bob's own upload names nothing of ann's
                elif 200 <= status < 300:
                    seen = leaked(world, answer, shown=shown if allowed else frozenset())
                else:
                    seen = leaked(world, answer, sent=path + str(kwargs.get("json", "")))
                if seen:
                    problems.append(f"{where}: shows {seen}: {answer[-300:]}")
    return swept, problems


def probe_ids_in_bodies_and_queries(world: World) -> list[str]:
    """Bob names ann's ids in bodies and queries: each is refused and shows nothing of hers."""
    ids = world.ids
    model, lexicon, sample, url = (
        ids["model"],
        ids["lexicon"],
        ids["sample"],
        ids["precall sample url"],
    )
    with_model = {"text": HELLO, "voice": model}
    with_lexicon = {"text": HELLO, "voice": "espeak:en-US", "lexiconIds": [f"{lexicon}@1"]}
    turn = {"speaker": "A", "voice": model, "text": HELLO}
    new_model = {"provider": "espeak", "modelPath": "models/ann/bob.pth", "qualityScore": 0.99}
    # (function, method, path, body, the statuses that refuse it)
    probes: list[tuple[str, str, str, dict[str, Any] | None, tuple[int, ...]]] = [
        ("synthesis", "POST", "/synthesize", with_model, REFUSED),
        ("synthesis", "POST", "/synthesize", with_lexicon, REFUSED),
        ("synthesis", "POST", "/synthesize/stream", with_model, REFUSED),
        ("synthesis", "POST", "/synthesize/dialogue", {"turns": [turn]}, REFUSED),
        ("openai_speech", "POST", "/v1/audio/speech", {"input": HELLO, "voice": model}, REFUSED),
        (
            "openai_speech",
            "POST",
            "/v1/audio/speech",
            {"input": HELLO, "voice": "en-US", "lexicon_ids": [lexicon]},
            REFUSED,
        ),
        ("voice_models", "POST", "/voice-models", {**new_model, "userId": "ann"}, REFUSED),
        ("voice_models", "POST", "/voice-models/select-best", {"userId": "ann"}, REFUSED),
        ("voice_models", "GET", "/voice-models/expiring?userId=ann", None, REFUSED),
        ("voice_models", "GET", f"/voice-models/{model}?userId=ann", None, REFUSED),
        ("voice_models", "GET", f"/voice-models/{model}/export?userId=ann", None, REFUSED),
        ("voice_models", "DELETE", f"/voice-models/{model}", {"userId": "ann"}, REFUSED),
        ("voice_models", "PUT", f"/voice-models/{model}", {"userId": "ann", "name": "B"}, REFUSED),
        (
            "voice_models",
            "POST",
            "/voice-models/user/bob/restore",
            {"backupPath": ids["backup"], "overwriteExisting": True},
            REFUSED,
        ),
        (
            "voice_model_activation",
            "POST",
            f"/voice-models/{model}/deactivate",
            {"userId": "ann"},
            REFUSED,
        ),
        (
            "samples",
            "POST",
            "/voice-models/train",
            {"sampleIds": [sample], "provider": "espeak"},
            REFUSED,
        ),
        (
            "precall",
            "POST",
            "/precall/mappings",
            {"callerId": "+14155550111", "sampleId": sample, "voiceName": "B"},
            REFUSED,
        ),
        (
            "precall",
            "POST",
            "/precall/mappings",
            {"callerId": "+14155550112", "voiceSampleUrl": url, "voiceName": "B"},
            (*REFUSED, 400),  # 400 SAMPLE_LOCATION_NOT_ALLOWED: not in bob's folder
        ),
        (
            "precall",
            "POST",
            "/precall/mappings",
            {
                "callerId": "+14155550113",
                "voiceSampleUrl": url,
                "voiceName": "B",
                "accountId": "ann",
            },
            REFUSED,
        ),
        ("precall", "GET", "/precall/mappings?accountId=ann", None, REFUSED),
        (
            "precall",
            "DELETE",
            f"/precall/samples/{ids['precall sample']}?accountId=ann",
            None,
            REFUSED,
        ),
        ("precall", "GET", f"/precall/mappings/{ids['mapping']}?accountId=ann", None, REFUSED),
        ("precall", "PUT", f"/precall/mappings/{ids['mapping']}", {"accountId": "ann"}, REFUSED),
        ("precall", "DELETE", f"/precall/mappings/{ids['mapping']}", {"accountId": "ann"}, REFUSED),
        ("precall", "GET", f"/precall/calls/{ids['call']}?accountId=ann", None, REFUSED),
        (
            "precall",
            "POST",
            f"/precall/calls/{ids['call']}/end",
            {"status": "failed", "accountId": "ann"},
            REFUSED,
        ),
        ("precall", "GET", "/precall/analytics?accountId=ann", None, REFUSED),
        (
            "precall",
            "POST",
            "/precall/calls",
            {"callerId": ANN_NUMBER, "greetingCallId": ids["greeting call"]},
            REFUSED,
        ),
        (
            "precall",
            "POST",
            "/precall/calls",
            {"callerId": ANN_NUMBER, "greetingCallId": "bob-1", "accountId": "ann"},
            REFUSED,
        ),
    ]
    problems = []
    for target, method, path, body, refused in probes:
        response = world.client(target).open(path, method=method, headers=world.bob, json=body)
        answer = text_of(response)
        where = f"{method} {path} {body} -> {response.status_code}"
        if response.status_code not in refused:
            problems.append(f"{where}: not refused: {answer[-300:]}")
        seen = leaked(world, answer, sent=path + str(body))
        if seen:
            problems.append(f"{where}: shows {seen}: {answer[-300:]}")
    # Compare answers 200 whatever it is given, listing unreadable ids as not found.
    compared = world.client("voice_models").post(
        "/voice-models/compare", json={"modelIds": [model]}, headers=world.bob
    )
    if compared.status_code != 200 or compared.get_json() != {"models": [], "notFound": [model]}:
        problems.append(f"POST /voice-models/compare shows ann's model: {text_of(compared)}")
    return problems


def bobs_own_requests(world: World) -> list[str]:
    """Bob's listings, and his syntheses of ann's very texts, show nothing of hers."""
    reads = [
        ("users", "/users/me"),
        ("voice_models", "/voice-models?limit=100"),
        ("voice_models", "/voice-models/user/me?limit=100"),
        ("voice_models", "/voice-models/user/bob?limit=100"),
        ("voice_models", "/voice-models/user/bob/shared"),
        ("voice_models", "/voice-models/user/bob/analytics"),
        ("voice_models", "/voice-models/expiring"),
        ("voice_model_activation", "/voice-models/user/bob/active"),
        ("voices", "/voices?limit=100"),
        ("voices", "/voices/providers"),
        ("openai_speech", "/v1/audio/voices"),
        ("files", "/files?limit=100"),
        ("synthesis", "/synthesis/jobs?limit=100"),
        ("samples", "/samples?limit=100"),
        ("lexicons", "/lexicons?limit=100"),
        ("precall", "/precall/mappings?limit=100"),
        ("precall", "/precall/analytics"),
        ("samples", f"/samples/{world.bobs_sample}/similar?scope=own"),
    ]
    problems = []
    for target, path in reads:
        response = world.client(target).get(path, headers=world.bob)
        seen = leaked(world, text_of(response))
        if response.status_code != 200 or seen:
            problems.append(
                f"GET {path} -> {response.status_code} shows {seen}: {text_of(response)}"
            )
    # Everyone's public samples are listed: ann's public one, and none of her private ones.
    public = world.ids["public sample"]
    for path in (
        "/samples?limit=100&scope=public",
        f"/samples/{world.bobs_sample}/similar?scope=public",
    ):
        response = world.client("samples").get(path, headers=world.bob)
        seen = leaked(
            world,
            text_of(response),
            shown=frozenset(
                {"ann's user id", "ann's public sample id", "ann's public sample name"}
            ),
        )
        if response.status_code != 200 or seen or public not in text_of(response):
            problems.append(
                f"GET {path} -> {response.status_code} shows {seen}: {text_of(response)}"
            )
    # The same texts and voices as ann's: bob gets his own job and file (or only audio).
    speeches = [
        ("synthesis", "/synthesize", {"text": HELLO, "voice": "espeak:en-US"}),
        ("synthesis", "/synthesize", {"text": PUBLIC_TEXT, "voice": "espeak:en-US"}),
        ("synthesis", "/synthesize", {"text": LONG_TEXT, "voice": "espeak:en-US"}),
        ("openai_speech", "/v1/audio/speech", {"input": PUBLIC_TEXT, "voice": "espeak:en-US"}),
    ]
    for target, path, body in speeches:
        response = world.client(target).post(path, json=body, headers=world.bob)
        seen = leaked(world, text_of(response))
        if response.status_code not in (200, 202) or seen:
            problems.append(f"POST {path} -> {response.status_code} shows {seen}")
    return problems


def anns_view(world: World) -> dict[str, Any]:
    """Everything of ann's as she (and cid, her model's grantee) reads it."""
    ids, ann = world.ids, world.ann
    reads = {
        "profile": ("users", "/users/me", ann),
        "model": ("voice_models", f"/voice-models/{ids['model']}", ann),
        "models": ("voice_models", "/voice-models/user/ann?limit=100", ann),
        "active": ("voice_model_activation", "/voice-models/user/ann/active", ann),
        "usage": ("voice_models", f"/voice-models/{ids['model']}/usage-stats", ann),
        "shared with cid": ("voice_models", "/voice-models/user/cid/shared", world.cid),
        "files": ("files", "/files?limit=100", ann),
        "jobs": ("synthesis", "/synthesis/jobs?limit=100", ann),
        "samples": ("samples", "/samples?limit=100", ann),
        "lexicon": ("lexicons", f"/lexicons/{ids['lexicon']}", ann),
        "lexicon v2": ("lexicons", f"/lexicons/{ids['lexicon']}/versions/2", ann),
        "mapping": ("precall", f"/precall/mappings/{ids['mapping']}", ann),
        "call": ("precall", f"/precall/calls/{ids['call']}", ann),
    }
    view: dict[str, Any] = {}
    for name, (target, path, headers) in reads.items():
        response = world.client(target).get(path, headers=headers)
        view[name] = (response.status_code, _without_volatile(response.get_json()))
    for listed in view["files"][1]["files"]:
        if listed["id"] == ids["public file"]:  # bob may download it: that counts
            del listed["downloadCount"], listed["lastAccessedAt"]
    for kind in ("file", "long file", "public file"):
        # From byte 1: a later range of a player, not a download that would be counted.
        path = f"/files/audio/{ids[kind]}"
        audio = world.client("files").get(path, headers={**ann, "Range": "bytes=1-"})
        view[kind] = (audio.status_code, hashlib.sha256(audio.data).hexdigest())
    settings = get_container().settings
    stored = get_container().blobs.get(settings.samples_bucket, "precall/ann/annika-voice.wav")
    view["precall sample"] = hashlib.sha256(stored).hexdigest()
    return view


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    """Return where ``after`` differs from ``before``, one line per changed value."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for key in sorted(set(before) | set(after), key=str)
            for line in differences(before.get(key), after.get(key), f"{where}.{key}")
        ]
    lists = isinstance(before, list | tuple) and isinstance(after, list | tuple)
    if lists and len(before) == len(after):
        return [
            line
            for index, (old, new) in enumerate(zip(before, after, strict=True))
            for line in differences(old, new, f"{where}[{index}]")
        ]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


def _without_volatile(value: Any) -> Any:
    # Signed download URLs are minted afresh by every read, an error's id and time too.
    if isinstance(value, dict):
        return {
            k: _without_volatile(v)
            for k, v in value.items()
            if k not in ("downloadUrl", "downloadUrlExpiresAt", "requestId", "timestamp")
        }
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


@pytest.fixture
def world(samples_client, espeak, function_client, token) -> World:
    clients: dict[str, FlaskClient] = {"samples": samples_client}

    def client(target: str) -> FlaskClient:
        if target not in clients:
            clients[target] = function_client(target)
        return clients[target]

    built = World(client, token)
    build_world(built, token)
    return built


def test_no_route_lets_a_user_reach_another_users_data(world):
    before = anns_view(world)

    swept, problems = sweep(world, world.bob)
    _, grantee = sweep(
        world,
        world.cid,
        only={"model_id"},
        ids={"user_id": ["user"]},  # giving up her own grant is hers to do (and is tested)
        granted=GRANTED_MODEL,
        shown=frozenset({"ann's user id", "ann's model id", "ann's model name"}),
    )
    _, public = sweep(
        world,
        world.bob,
        only={"sample_id", "file_id"},
        ids={"sample_id": ["public sample"], "file_id": ["public file"]},
        granted=PUBLIC_READS,
        shown=frozenset(
            {"ann's user id", "ann's public sample id", "ann's public sample name"}
            | {"ann's public file id", "ann's public job id"}
        ),
    )
    problems += grantee + public
    problems += probe_ids_in_bodies_and_queries(world)
    problems += bobs_own_requests(world)
    assert problems == [], "\n".join(problems)
    with_ids = {
        (method, route.rule)
        for _, route in http_routes()
        for method in route.methods
        if _PARAM.search(route.rule) and route.rule not in SKIPPED
    }
    assert swept == with_ids
    assert len(swept) >= 37  # every route with ids but the 5 skipped

    # Bob leaves: his account's deletion takes nothing of ann's with it.
    assert world.client("users").delete("/users/me", headers=world.bob).status_code == 204
    after = anns_view(world)
    assert differences(before, after) == [], "\n".join(differences(before, after))
