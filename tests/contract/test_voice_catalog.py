"""The catalog repositories and a full provider sync, unchanged over both store adapters.

Every query the catalog sends must work on Firestore without a composite index (all
filters are equalities) and give the same answers on SQLite.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.catalog.model import VoiceSyncJob, VoiceSyncStatus
from shared.catalog.repository import VoiceFilters, VoiceRepository
from shared.catalog.sync import sync_provider_voices
from shared.catalog.sync_repository import VoiceSyncJobRepository
from shared.providers.voices import AgeGroup, Gender
from tests.support.fake_provider import FakeProvider, make_voice, make_voices

NOW = datetime(2026, 1, 22, 3, 0, tzinfo=UTC)


def stamped(voices, when=NOW):
    return [voice.model_copy(update={"synced_at": when}) for voice in voices]


def ids(voices):
    return [voice.voice_id for voice in voices]


def test_upsert_counts_added_updated_deprecated_and_ignores_synced_at(store):
    repository = VoiceRepository(store)
    voices = make_voices("acme", 4)
    assert vars(repository.upsert(stamped(voices))) == {"added": 4, "updated": 0, "deprecated": 0}
    later = NOW + timedelta(days=1)
    assert vars(repository.upsert(stamped(voices, later))) == {
        "added": 0,
        "updated": 0,
        "deprecated": 0,
    }
    assert repository.require("acme:voice-0000").synced_at == later
    changed = [
        voices[0].model_copy(update={"description": "new words"}),
        voices[1].deprecated(),
        voices[2],
    ]
    counts = repository.upsert(stamped(changed, later))
    assert vars(counts) == {"added": 0, "updated": 1, "deprecated": 1}


def test_filters_match_on_both_adapters(store):
    repository = VoiceRepository(store)
    repository.upsert(
        stamped(
            [
                make_voice(
                    "acme",
                    1,
                    language="en-US",
                    gender=Gender.FEMALE,
                    age_group=AgeGroup.YOUNG,
                    styles=("cheerful", "news-cast"),
                    use_cases=("narration",),
                ),
                make_voice(
                    "acme",
                    2,
                    language="en-GB",
                    gender=Gender.MALE,
                    age_group=AgeGroup.SENIOR,
                    styles=("calm",),
                    use_cases=("narration", "assistant"),
                ),
                make_voice(
                    "acme",
                    3,
                    language="zh-TW",
                    gender=Gender.FEMALE,
                    age_group=None,
                    styles=("cheerful",),
                    use_cases=("assistant",),
                ),
                make_voice(
                    "other",
                    4,
                    language="en-US",
                    gender=Gender.FEMALE,
                    age_group=AgeGroup.YOUNG,
                    styles=(),
                    use_cases=(),
                ).deprecated(),
            ]
        )
    )

    def find(**filters):
        found, cursor = repository.find(VoiceFilters(**filters), limit=50)
        assert cursor is None
        return ids(found)

    assert find(provider="acme") == ["voice-0001", "voice-0002", "voice-0003"]
    assert find(language="en-US") == ["voice-0001"]
    assert find(language="en") == ["voice-0001", "voice-0002"]
    assert find(language="en", include_deprecated=True) == [
        "voice-0001",
        "voice-0002",
        "voice-0004",
    ]
    assert find(gender=Gender.FEMALE, age_group=AgeGroup.YOUNG) == ["voice-0001"]
    assert find(style="cheerful", use_case="assistant") == ["voice-0003"]
    assert find(style="news-cast") == ["voice-0001"]
    assert find(provider="acme", use_case="narration", gender=Gender.MALE) == ["voice-0002"]
    assert find(provider="other") == []
    assert repository.count("acme") == 3
    assert repository.count("other", include_deprecated=True) == 1


def test_chinese_is_found_under_any_of_its_codes_on_both_adapters(store):
    # Google tags Mandarin cmn-CN and Cantonese yue-HK; apps ask for zh, zh-CN, zh-HK.
    repository = VoiceRepository(store)
    voices = [
        make_voice("acme", index, language=language, gender=Gender.FEMALE)
        for index, language in ((1, "cmn-CN"), (2, "yue-HK"), (3, "zh-TW"), (4, "en-US"))
    ]
    repository.upsert(voices)

    def find(language: str) -> list[str]:
        found, _ = repository.find(VoiceFilters(language=language), limit=50)
        return ids(found)

    assert find("zh") == ["voice-0001", "voice-0002", "voice-0003"]
    assert find("zh-CN") == ["voice-0001"]
    assert find("zh-HK") == ["voice-0002"]
    assert find("cmn-TW") == ["voice-0003"]
    assert find("yue") == ["voice-0002"]
    assert find("en") == ["voice-0004"]


def test_listing_pages_with_cursors(store):
    repository = VoiceRepository(store)
    repository.upsert(stamped(make_voices("acme", 25)))
    seen, cursor = [], None
    while True:
        page, cursor = repository.find(VoiceFilters(provider="acme"), limit=10, cursor=cursor)
        seen.extend(ids(page))
        if cursor is None:
            break
    assert seen == [f"voice-{i:04d}" for i in range(25)]


def test_full_sync_deprecates_and_restores(store):
    provider = FakeProvider("acme", make_voices("acme", 6))
    first = sync_provider_voices(store=store, provider=provider, now=NOW)
    assert vars(first.counts) == {"added": 6, "updated": 0, "deprecated": 0}
    provider.voices = provider.voices[2:]
    second = sync_provider_voices(store=store, provider=provider, now=NOW)
    assert vars(second.counts) == {"added": 0, "updated": 0, "deprecated": 2}
    provider.voices = make_voices("acme", 6)
    third = sync_provider_voices(store=store, provider=provider, now=NOW)
    assert vars(third.counts) == {"added": 0, "updated": 2, "deprecated": 0}
    assert VoiceRepository(store).count("acme") == 6


def test_concurrent_upserts_add_each_voice_once(store):
    voices = stamped(make_voices("acme", 40))
    results = []

    def upsert() -> None:
        results.append(VoiceRepository(store).upsert(voices))

    threads = [threading.Thread(target=upsert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.added for r in results) == [0, 40]
    assert VoiceRepository(store).count("acme") == 40


def test_sync_jobs_transition_and_list_newest_first(store):
    jobs = VoiceSyncJobRepository(store)
    older = VoiceSyncJob(provider="acme", created_at=NOW)
    newer = VoiceSyncJob(provider="acme", created_at=NOW + timedelta(minutes=1))
    assert jobs.add(older)
    assert jobs.add(newer)
    assert not jobs.add(older), "a job id is created once"
    jobs.transition(newer.id, lambda j: j.start(NOW))
    done = jobs.transition(
        newer.id,
        lambda j: j.complete(added=3, updated=1, deprecated=0, now=NOW),
        languages=["en-US"],
    )
    assert done.status is VoiceSyncStatus.COMPLETED
    assert done.voices_added == 3
    assert jobs.require(newer.id) == done
    page, cursor = jobs.list_recent(limit=1)
    assert ids_of(page) == [newer.id]
    rest, _ = jobs.list_recent(limit=5, cursor=cursor)
    assert ids_of(rest) == [older.id]
    state = jobs.provider_states(["acme", "nobody"])
    assert list(state) == ["acme"]
    assert state["acme"]["last_job_id"] == newer.id
    assert state["acme"]["last_job_status"] == "completed"
    assert state["acme"]["languages"] == ["en-US"]
    # The older job finishing later records its sync time but is not "the last job".
    jobs.transition(older.id, lambda j: j.start(NOW))
    later = NOW + timedelta(hours=1)
    jobs.transition(older.id, lambda j: j.complete(added=0, updated=0, deprecated=0, now=later))
    state = jobs.provider_states(["acme"])["acme"]
    assert state["last_job_id"] == newer.id
    assert state["last_synced_at"] == later


def ids_of(jobs):
    return [job.id for job in jobs]


@pytest.mark.parametrize("count", [501])
def test_more_than_one_batch(store, count):
    provider = FakeProvider("bulk", make_voices("bulk", count))
    result = sync_provider_voices(store=store, provider=provider, now=NOW)
    assert result.counts.added == count
    assert VoiceRepository(store).count("bulk") == count


def test_ids_in_any_case_and_search_words_on_both_adapters(store):
    repository = VoiceRepository(store)
    repository.upsert(
        stamped(
            [
                make_voice("acme", 1, voice_id="en-US+Rachel", display_name="Rachel (America)"),
                make_voice("acme", 2, display_name="Adam", tags=("Narrator",)),
                make_voice("acme", 3, display_name="Zoë Fischer"),
            ]
        )
    )
    assert repository.require("ACME:en-us+rachel").id == "acme:en-US+Rachel"
    assert repository.get("acme:nobody") is None

    def found(*words):
        voices, _ = repository.find(VoiceFilters(search=words), limit=10)
        return [voice.id for voice in voices]

    assert found("rach", "amer") == ["acme:en-US+Rachel"]
    assert found("narrator") == ["acme:voice-0002"]
    assert found("zoë") == ["acme:voice-0003"]
    assert found("rach", "adam") == []
