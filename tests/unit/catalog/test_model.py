"""Voice catalog (seed 000): profiles, language tags, the sync job state machine, dialogue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.catalog.model import MAX_SYNC_RETRIES, VoiceSyncJob, VoiceSyncStatus
from shared.errors import InvalidStateTransitionError
from shared.model import equivalent_languages, normalize_language_tag
from shared.providers.voices import AgeGroup, DialogueTurn, Gender, VoiceProfile
from shared.synthesis.model import SynthesisMode

NOW = datetime(2026, 1, 22, 3, 0, tzinfo=UTC)


def make_profile(**overrides: object) -> VoiceProfile:
    fields: dict[str, object] = {
        "provider": "azure",
        "voice_id": "zh-TW-HsiaoChenNeural",
        "display_name": "HsiaoChen",
        "language": "zh-TW",
    }
    fields.update(overrides)
    return VoiceProfile.model_validate(fields)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("zh-tw", "zh-TW"),
        ("en_us", "en-US"),
        ("EN-us", "en-US"),
        (" fr ", "fr"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("sr_latn_rs", "sr-Latn-RS"),
        ("en-US-x-Twain", "en-US-x-twain"),
        ("yue", "yue"),
    ],
)
def test_language_tags_are_normalised(raw, expected):
    assert normalize_language_tag(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "e", "english-", "en--US", "en US", "12-US", "en-toolongsubtag"]
)
def test_malformed_language_tags_are_rejected(raw):
    with pytest.raises(ValueError, match="BCP-47"):
        normalize_language_tag(raw)


@pytest.mark.parametrize(
    ("tag", "others"),
    [
        ("zh", ("cmn", "yue")),  # bare Chinese: Mandarin first, then Cantonese
        ("zh-CN", ("cmn-CN",)),
        ("zh-TW", ("cmn-TW",)),
        ("zh-Hans", ("cmn-Hans",)),
        ("zh-HK", ("yue-HK",)),  # Chinese in Hong Kong and Macau is Cantonese
        ("zh-Hant-MO", ("yue-Hant-MO",)),
        ("cmn", ("zh",)),
        ("cmn-CN", ("zh-CN",)),
        ("yue-HK", ("zh-HK",)),
        ("yue", ()),  # no bare tag names Cantonese alone
        ("en-US", ()),
        ("fr", ()),
    ],
)
def test_chinese_is_tagged_as_the_macrolanguage_and_as_its_languages(tag, others):
    assert equivalent_languages(tag) == others


def test_profile_normalises_language_and_labels():
    profile = make_profile(
        language="zh_tw", styles=[" News", "news", "Cheerful"], tags=["Warm", "Warm", "TW"]
    )
    assert profile.language == "zh-TW"
    assert profile.styles == ("news", "cheerful")
    assert profile.tags == ("Warm", "TW")


def test_profile_id_defaults_to_provider_and_voice_id():
    assert make_profile().id == "azure:zh-TW-HsiaoChenNeural"


def test_profile_accepts_consistent_id():
    profile = make_profile(id="azure:zh-TW-HsiaoChenNeural")
    assert profile.voice_id == "zh-TW-HsiaoChenNeural"


@pytest.mark.parametrize(
    "bad_id",
    ["zh-TW-HsiaoChenNeural", "gcp:zh-TW-HsiaoChenNeural", "azure:other", "azure-zh-TW"],
)
def test_profile_rejects_id_not_matching_provider_and_voice(bad_id):
    with pytest.raises(ValidationError, match="provider:voice_id"):
        make_profile(id=bad_id)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("provider", "Azure"),
        ("provider", "az:ure"),
        ("provider", ""),
        ("voice_id", ""),
        ("display_name", ""),
        ("language", "not a language"),
        ("gender", "other"),
        ("age_group", "teen"),
        ("styles", ["ok", "  "]),
    ],
)
def test_profile_rejects_invalid_values(field, value):
    with pytest.raises(ValidationError):
        make_profile(**{field: value})


def test_profile_is_immutable_and_deprecation_returns_a_copy():
    profile = make_profile()
    with pytest.raises(ValidationError):
        profile.is_deprecated = True  # type: ignore[misc]  # frozen: must fail at runtime too
    deprecated = profile.deprecated()
    assert deprecated.is_deprecated
    assert not profile.is_deprecated
    assert deprecated.id == profile.id


def test_profile_round_trips_camel_case():
    profile = make_profile(
        gender="female",
        age_group="adult",
        use_cases=["Narration"],
        sample_audio_url="https://example.com/a.mp3",
        synced_at=NOW,
        supports_multi_speaker=True,
    )
    api = profile.to_api()
    assert api["id"] == "azure:zh-TW-HsiaoChenNeural"
    assert api["voiceId"] == "zh-TW-HsiaoChenNeural"
    assert api["displayName"] == "HsiaoChen"
    assert api["ageGroup"] == "adult"
    assert api["gender"] == "female"
    assert api["useCases"] == ["narration"]
    assert api["sampleAudioUrl"] == "https://example.com/a.mp3"
    assert api["isDeprecated"] is False
    assert api["syncedAt"] == "2026-01-22T03:00:00Z"
    assert api["supportsMultiSpeaker"] is True
    assert VoiceProfile.model_validate(api) == profile
    assert profile.gender is Gender.FEMALE
    assert profile.age_group is AgeGroup.ADULT


def test_enums_hold_the_seed_values():
    assert [g.value for g in Gender] == ["male", "female", "neutral"]
    assert [a.value for a in AgeGroup] == ["child", "young", "adult", "senior"]
    assert [m.value for m in SynthesisMode] == ["native", "segmented"]
    assert [s.value for s in VoiceSyncStatus] == ["pending", "running", "completed", "failed"]


def apply(job: VoiceSyncJob, action: str) -> VoiceSyncJob:
    if action == "start":
        return job.start(NOW)
    if action == "complete":
        return job.complete(added=3, updated=2, deprecated=1, now=NOW)
    if action == "fail":
        return job.fail("provider timed out", NOW)
    return job.retry()


ALLOWED = {
    (VoiceSyncStatus.PENDING, "start"): VoiceSyncStatus.RUNNING,
    (VoiceSyncStatus.RUNNING, "complete"): VoiceSyncStatus.COMPLETED,
    (VoiceSyncStatus.RUNNING, "fail"): VoiceSyncStatus.FAILED,
    (VoiceSyncStatus.FAILED, "retry"): VoiceSyncStatus.PENDING,
}


@pytest.mark.parametrize("status", list(VoiceSyncStatus))
@pytest.mark.parametrize("action", ["start", "complete", "fail", "retry"])
def test_sync_job_allows_exactly_the_seed_transitions(status, action):
    job = VoiceSyncJob(status=status)
    expected = ALLOWED.get((status, action))
    if expected is None:
        with pytest.raises(InvalidStateTransitionError):
            apply(job, action)
    else:
        assert apply(job, action).status is expected
    assert job.status is status


def test_sync_job_records_run_details():
    running = VoiceSyncJob(provider="azure").start(NOW)
    assert running.started_at == NOW
    done = running.complete(added=3, updated=2, deprecated=1, now=NOW)
    assert (done.voices_added, done.voices_updated, done.voices_deprecated) == (3, 2, 1)
    assert done.completed_at == NOW
    failed = VoiceSyncJob().start(NOW).fail("boom", NOW)
    assert failed.error_message == "boom"
    assert failed.can_retry


def test_sync_job_rejects_negative_counts():
    with pytest.raises(ValidationError):
        VoiceSyncJob().start(NOW).complete(added=-1, updated=0, deprecated=0, now=NOW)


def test_sync_job_retries_at_most_three_times():
    job = VoiceSyncJob()
    for attempt in range(1, MAX_SYNC_RETRIES + 1):
        job = job.start(NOW).fail("boom", NOW).retry()
        assert job.retry_count == attempt
        assert job.status is VoiceSyncStatus.PENDING
    failed = job.start(NOW).fail("boom", NOW)
    assert not failed.can_retry
    with pytest.raises(InvalidStateTransitionError, match="retries"):
        failed.retry()


@pytest.mark.parametrize("count", [-1, 4])
def test_sync_job_retry_count_is_bounded(count):
    with pytest.raises(ValidationError):
        VoiceSyncJob(retry_count=count)


def test_sync_job_serializes_camel_case():
    api = VoiceSyncJob(provider="gcp").to_api()
    assert api["status"] == "pending"
    assert api["retryCount"] == 0
    assert api["voicesAdded"] == 0
    assert VoiceSyncJob.model_validate({"retry_count": 2}).retry_count == 2


def test_dialogue_turn_requires_text():
    turn = DialogueTurn.model_validate({"speaker": "A", "voice": "azure:v1", "text": " Hello "})
    assert turn.text == "Hello"
    bad_fields: list[dict[str, object]] = [
        {"text": ""},
        {"text": "   "},
        {"speaker": ""},
        {"voice": ""},
        {"extra": 1},
    ]
    for bad in bad_fields:
        with pytest.raises(ValidationError):
            DialogueTurn.model_validate({"speaker": "A", "voice": "azure:v1", "text": "hi"} | bad)
