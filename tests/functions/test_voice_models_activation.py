"""The voice_model_activation function: activation rules, and one active model under races."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from shared.bootstrap import get_container
from shared.store import Query
from tests.functions import test_voice_models as base
from tests.functions.conftest import bearer
from tests.functions.test_voice_models import active_ids, create

# The fixtures of test_voice_models, shared by name.
client, activation, generous_limits = base.client, base.activation, base.generous_limits


def test_first_model_and_high_quality_models_are_activated_on_creation(client, token):
    ann = token("ann")
    first = create(client, ann, "ann", qualityScore=0.3)
    assert first["isActive"] is True
    middling = create(client, ann, "ann", qualityScore=0.8)
    assert middling["isActive"] is False
    assert active_ids(client, ann, "ann") == [first["id"]]
    high = create(client, ann, "ann", qualityScore=0.81)
    assert high["isActive"] is True
    assert active_ids(client, ann, "ann") == [high["id"]]
    failed = create(client, ann, "ann", qualityScore=0.99, status="failed")
    assert failed["isActive"] is False
    assert create(client, token("bob"), "bob", qualityScore=0.1)["isActive"] is True


def test_the_first_usable_model_is_activated_after_a_failed_one(client, activation, token):
    # A failed model is no model to speak with: the next one created is the user's first.
    ann = token("ann")
    failed = create(client, ann, "ann", qualityScore=0.5, status="failed")
    assert failed["isActive"] is False
    usable = create(client, ann, "ann", qualityScore=0.5)
    assert usable["isActive"] is True
    active = activation.get("/voice-models/user/ann/active", headers=bearer(ann)).get_json()
    assert active["model"]["id"] == usable["id"]
    assert create(client, ann, "ann", qualityScore=0.5)["isActive"] is False


def test_marking_the_active_model_failed_hands_activation_to_the_next_best(
    client, activation, token
):
    ann = token("ann")
    best = create(client, ann, "ann", qualityScore=0.9)
    runner_up = create(client, ann, "ann", qualityScore=0.7)
    response = client.put(
        f"/voice-models/{best['id']}", json={"status": "failed"}, headers=bearer(ann)
    )
    assert response.status_code == 200
    assert (response.get_json()["status"], response.get_json()["isActive"]) == ("failed", False)
    assert active_ids(client, ann, "ann") == [runner_up["id"]]
    active = activation.get("/voice-models/user/ann/active", headers=bearer(ann)).get_json()
    assert active["model"]["id"] == runner_up["id"]
    assert client.get(f"/voice-models/{best['id']}", headers=bearer(ann)).get_json() == (
        response.get_json()
    )
    # The last usable one failing leaves none active rather than a failed one.
    client.put(f"/voice-models/{runner_up['id']}", json={"status": "failed"}, headers=bearer(ann))
    assert active_ids(client, ann, "ann") == []
    assert activation.get("/voice-models/user/ann/active", headers=bearer(ann)).get_json() == {
        "userId": "ann",
        "model": None,
    }


def test_activation_rules_and_their_error_codes(client, activation, token):
    ann = token("ann")
    first = create(client, ann, "ann")
    second = create(client, ann, "ann")
    failed = create(client, ann, "ann", status="failed")
    doomed = create(client, ann, "ann")
    client.delete(f"/voice-models/{doomed['id']}", headers=bearer(ann))

    response = activation.post(
        f"/voice-models/{second['id']}/activate", json={"userId": "ann"}, headers=bearer(ann)
    )
    assert response.status_code == 200
    assert response.get_json()["isActive"] is True
    assert active_ids(client, ann, "ann") == [second["id"]]

    def code(path, **kwargs):
        response = activation.post(path, headers=bearer(ann), **kwargs)
        return response.status_code, response.get_json()["code"]

    assert code(f"/voice-models/{second['id']}/activate") == (409, "VOICE_MODEL_ALREADY_ACTIVE")
    assert code(f"/voice-models/{doomed['id']}/activate") == (409, "VOICE_MODEL_DELETED")
    assert code(f"/voice-models/{failed['id']}/activate") == (409, "VOICE_MODEL_FAILED")
    assert code(f"/voice-models/{first['id']}/deactivate") == (409, "VOICE_MODEL_NOT_ACTIVE")
    assert code(f"/voice-models/{first['id']}/activate", json={"userId": "bob"}) == (
        403,
        "ACCESS_DENIED",
    )

    active = activation.get("/voice-models/user/ann/active", headers=bearer(ann)).get_json()
    assert active["model"]["id"] == second["id"]
    response = activation.post(f"/voice-models/{second['id']}/deactivate", headers=bearer(ann))
    assert response.status_code == 200
    assert response.get_json()["isActive"] is False
    assert activation.get("/voice-models/user/ann/active", headers=bearer(ann)).get_json() == {
        "userId": "ann",
        "model": None,
    }
    assert (
        activation.get("/voice-models/user/ann/active", headers=bearer(token("bob"))).status_code
        == 403
    )


def test_shared_models_can_be_used_but_never_changed(client, activation, token):
    ann, bob = token("ann"), token("bob")
    model = create(client, ann, "ann")
    other = create(client, ann, "ann")
    shared = client.post(
        f"/voice-models/{other['id']}/share",
        json={"targetUserIds": ["bob"], "permissions": "use"},
        headers=bearer(ann),
    )
    assert shared.status_code == 200
    assert client.get(f"/voice-models/{other['id']}", headers=bearer(bob)).status_code == 200
    for response in (
        activation.post(f"/voice-models/{other['id']}/activate", headers=bearer(bob)),
        client.put(f"/voice-models/{other['id']}", json={"name": "mine"}, headers=bearer(bob)),
        client.delete(f"/voice-models/{other['id']}", headers=bearer(bob)),
        client.get(f"/voice-models/{other['id']}/export", headers=bearer(bob)),
    ):
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["code"] == "ACCESS_DENIED"
    assert active_ids(client, ann, "ann") == [model["id"]]


def test_exactly_one_active_model_under_twenty_racing_requests(client, activation, token):
    ann = token("ann")
    seeded = [create(client, ann, "ann", qualityScore=0.5 + i * 0.05)["id"] for i in range(6)]
    rng = random.Random(7)
    requests = (
        [("activate", model_id) for model_id in rng.choices(seeded, k=8)]
        + [("create", 0.9), ("create", 0.95), ("create", 0.4), ("create", 0.85), ("create", 0.3)]
        + [("delete", model_id) for model_id in (*seeded[:3], seeded[0], seeded[4])]
        + [("activate", seeded[5]), ("activate", seeded[1])]
    )
    rng.shuffle(requests)
    assert len(requests) == 20
    store = get_container().store
    active_query = (
        Query("voice_models").where("user_id", "==", "ann").where("is_active", "==", True)
    )
    seen_active: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen_active.append(store.count(active_query))

    def send(request):
        kind, argument = request
        if kind == "create":
            return create(client, ann, "ann", expect=201, qualityScore=argument)["id"] and 201
        if kind == "delete":
            return client.delete(f"/voice-models/{argument}", headers=bearer(ann)).status_code
        return activation.post(f"/voice-models/{argument}/{kind}", headers=bearer(ann)).status_code

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(send, requests))
    finally:
        stop.set()
        watcher.join()

    assert set(statuses) <= {200, 201, 404, 409}, statuses
    assert max(seen_active) <= 1
    live = client.get("/voice-models/user/ann?limit=100", headers=bearer(ann)).get_json()["models"]
    actives = [m["id"] for m in live if m["isActive"]]
    assert len(actives) == 1, live
    pointer = store.get("voice_model_active", "ann")
    assert pointer is not None
    assert pointer.data["model_id"] == actives[0]
    assert store.count(active_query) == 1


def test_the_gateway_sends_activation_paths_to_their_own_function(platform):
    from local.gateway import Gateway

    gateway = Gateway(get_container())
    routes = {
        "/voice-models": "voice-models",
        "/voice-models/abc": "voice-models",
        "/voice-models/user/ann": "voice-models",
        "/voice-models/user/ann/analytics": "voice-models",
        "/voice-models/abc/share/bob": "voice-models",
        "/voice-models/abc/activate": "voice-model-activation",
        "/voice-models/abc/deactivate": "voice-model-activation",
        "/voice-models/user/ann/active": "voice-model-activation",
    }
    assert {path: gateway.function_for(path) for path in routes} == routes
