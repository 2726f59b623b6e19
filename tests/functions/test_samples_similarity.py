"""Similarity search over speaker embeddings: the same voice ranks above other voices.

Three eSpeak voices each say three different sentences; for every sample, the other two
samples of its voice must come before any sample of another voice. Scopes keep users to
their own samples and everyone's public ones.
"""

from __future__ import annotations

import pytest

from tests.functions.conftest import bearer
from tests.functions.samples_fixtures import ready_sample, samples_client, upload, worker
from tests.support.voice_samples import sample_file

__all__ = ["samples_client", "worker"]

VOICES = ("en-US+f3", "en-US+m3", "en-GB-x-rp+klatt")


@pytest.fixture
def library(samples_client, token):
    ann = token("ann")
    voice_of = {}
    for voice in VOICES:
        for index in range(3):
            sample = ready_sample(samples_client, ann, sample_file(voice, index + len(voice)))
            voice_of[sample["id"]] = voice
    return ann, voice_of


def test_samples_of_the_same_voice_rank_above_other_voices(samples_client, library):
    ann, voice_of = library
    for sample_id, voice in voice_of.items():
        response = samples_client.get(f"/samples/{sample_id}/similar?limit=8", headers=bearer(ann))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        ranked = [item["sample"]["id"] for item in body["similar"]]
        assert sample_id not in ranked
        assert len(ranked) == 8
        assert [voice_of[i] for i in ranked[:2]] == [voice, voice], (voice, body["similar"])
        distances = [item["distance"] for item in body["similar"]]
        assert distances == sorted(distances)
        assert all(
            item["similarity"] == pytest.approx(1 - item["distance"]) for item in body["similar"]
        )


def test_the_limit_is_honoured(samples_client, library):
    ann, voice_of = library
    sample_id = next(iter(voice_of))
    body = samples_client.get(f"/samples/{sample_id}/similar?limit=1", headers=bearer(ann))
    assert len(body.get_json()["similar"]) == 1
    for query in ("limit=0", "limit=51", "scope=all", "limit=x"):
        response = samples_client.get(f"/samples/{sample_id}/similar?{query}", headers=bearer(ann))
        assert response.status_code == 400, query


def test_public_scope_searches_public_samples_of_everyone_and_never_private_ones(
    samples_client, token
):
    ann, bob = token("ann"), token("bob")
    bob_public = ready_sample(samples_client, bob, sample_file("en-US+f3", 0), isPublic="true")
    bob_private = ready_sample(samples_client, bob, sample_file("en-US+f3", 1))
    ann_sample = ready_sample(samples_client, ann, sample_file("en-US+f3", 2))

    own = samples_client.get(f"/samples/{ann_sample['id']}/similar", headers=bearer(ann))
    assert own.get_json()["similar"] == []  # Ann has no other sample of her own
    public = samples_client.get(
        f"/samples/{ann_sample['id']}/similar?scope=public", headers=bearer(ann)
    ).get_json()
    assert [item["sample"]["id"] for item in public["similar"]] == [bob_public["id"]]
    assert public["scope"] == "public"

    # Bob makes his sample private: it leaves public searches at once.
    samples_client.patch(
        f"/samples/{bob_public['id']}", json={"isPublic": False}, headers=bearer(bob)
    )
    public = samples_client.get(
        f"/samples/{ann_sample['id']}/similar?scope=public", headers=bearer(ann)
    ).get_json()
    assert public["similar"] == []
    # Ann may search from Bob's sample only while it is public.
    response = samples_client.get(f"/samples/{bob_private['id']}/similar", headers=bearer(ann))
    assert response.status_code == 404


def test_a_sample_not_processed_has_no_neighbours_yet(samples_client, token, monkeypatch):
    from shared.bootstrap import get_container

    ann = token("ann")
    get_container().tasks.stop()  # nothing processes it
    sample = upload(samples_client, ann, sample_file("en-US", 0)).get_json()
    response = samples_client.get(f"/samples/{sample['id']}/similar", headers=bearer(ann))
    assert response.status_code == 409
    assert response.get_json()["code"] == "SAMPLE_NOT_READY"
