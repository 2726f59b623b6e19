"""Voice models (seed 001): validation, quality formula, requests and camelCase output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.model import new_id
from shared.voice_models.model import (
    ModelShare,
    TTSProvider,
    VoiceModel,
    VoiceModelCreate,
    VoiceModelPublic,
    VoiceModelStatus,
    VoiceModelUpdate,
    VoiceModelUsageStats,
    quality_score_from_components,
)
from shared.voice_models.schemas import ModelShareCreate, VoiceModelAnalytics

NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def make_model(**overrides: object) -> VoiceModel:
    fields: dict[str, object] = {
        "user_id": f"user-{new_id()}",
        "provider": "xtts-v2",
        "model_path": "gs://bucket/models/u/model.pth",
        "sample_rate": 22050,
        "quality_score": 0.85,
    }
    fields.update(overrides)
    return VoiceModel.model_validate(fields)


def test_provider_values_are_the_seed_names():
    assert {provider.value for provider in TTSProvider} == {
        "xtts-v2",
        "google-cloud-tts",
        "openai-tts",
        "espeak",
        "elevenlabs",
    }


def test_quality_formula_weights_components():
    assert quality_score_from_components(1, 0, 0, 0) == pytest.approx(0.4)
    assert quality_score_from_components(0, 1, 0, 0) == pytest.approx(0.3)
    assert quality_score_from_components(0, 0, 1, 0) == pytest.approx(0.2)
    assert quality_score_from_components(0, 0, 0, 1) == pytest.approx(0.1)
    assert quality_score_from_components(0.9, 0.8, 0.7, 0.6) == pytest.approx(0.80)
    assert quality_score_from_components(1, 1, 1, 1) == 1.0


@pytest.mark.parametrize("bad", [-0.1, 1.2, float("nan")])
def test_quality_formula_rejects_components_outside_unit_range(bad):
    with pytest.raises(ValueError, match="similarity"):
        quality_score_from_components(bad, 0.5, 0.5, 0.5)


def test_model_defaults():
    model = make_model()
    assert model.status is VoiceModelStatus.PENDING
    assert model.is_active is False
    assert model.version == 1
    assert model.deleted_at is None
    assert model.is_deleted is False
    assert model.id != make_model().id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quality_score", 1.2),
        ("quality_score", -0.01),
        ("similarity", 1.5),
        ("consistency", -1),
        ("sample_rate", 0),
        ("sample_rate", 7999),
        ("sample_rate", 192001),
        ("provider", "festival"),
        ("status", "archived"),
        ("model_path", ""),
        ("user_id", ""),
        ("version", 0),
    ],
)
def test_model_rejects_invalid_values(field, value):
    with pytest.raises(ValidationError):
        make_model(**{field: value})


def test_model_rejects_invalid_assignment():
    model = make_model()
    with pytest.raises(ValidationError):
        model.quality_score = 1.2


def test_model_serializes_camel_case_and_accepts_both_spellings():
    model = VoiceModel.model_validate(
        {
            "userId": "user-1",
            "provider": "openai-tts",
            "modelPath": "gs://b/m",
            "sampleRate": 24000,
            "qualityScore": 0.7,
            "isActive": True,
            "createdAt": "2024-01-15T10:30:00Z",
        }
    )
    api = model.to_api()
    assert api["userId"] == "user-1"
    assert api["modelPath"] == "gs://b/m"
    assert api["sampleRate"] == 24000
    assert api["qualityScore"] == 0.7
    assert api["isActive"] is True
    assert api["provider"] == "openai-tts"
    assert api["createdAt"] == "2024-01-15T10:30:00Z"
    assert "deletedAt" in api
    assert "user_id" not in api
    assert model.to_document()["user_id"] == "user-1"


def test_naive_datetimes_are_taken_as_utc():
    model = make_model(created_at=datetime(2024, 1, 15, 10, 30))
    assert model.created_at.tzinfo is UTC


def test_soft_deleted_model():
    assert make_model(deleted_at=NOW).is_deleted


def test_auto_activation_needs_quality_above_point_eight():
    assert make_model(quality_score=0.81).qualifies_for_auto_activation()
    assert not make_model(quality_score=0.8).qualifies_for_auto_activation()


def test_cleanup_needs_every_criterion():
    old = NOW - timedelta(days=200)
    stale = NOW - timedelta(days=31)
    eligible = make_model(created_at=old, quality_score=0.4, is_active=False)
    assert eligible.is_eligible_for_cleanup(last_used_at=stale, now=NOW)
    assert eligible.is_eligible_for_cleanup(last_used_at=None, now=NOW)
    assert not eligible.is_eligible_for_cleanup(last_used_at=NOW - timedelta(days=5), now=NOW)
    assert not make_model(
        created_at=NOW - timedelta(days=90), quality_score=0.4
    ).is_eligible_for_cleanup(last_used_at=None, now=NOW)
    assert not make_model(created_at=old, quality_score=0.5).is_eligible_for_cleanup(
        last_used_at=None, now=NOW
    )
    assert not make_model(
        created_at=old, quality_score=0.4, is_active=True
    ).is_eligible_for_cleanup(last_used_at=None, now=NOW)


def test_public_view_carries_the_seed_fields():
    model = make_model(metadata={"version": "1.0"})
    public = VoiceModelPublic.from_entity(model).to_api()
    assert public["id"] == model.id
    assert public["metadata"] == {"version": "1.0"}
    assert set(public) >= {
        "id",
        "userId",
        "provider",
        "modelPath",
        "sampleRate",
        "qualityScore",
        "isActive",
        "status",
        "metadata",
        "createdAt",
        "updatedAt",
        "deletedAt",
    }


def test_create_accepts_the_seed_example_body():
    body = VoiceModelCreate.model_validate(
        {
            "userId": "user-123",
            "provider": "xtts-v2",
            "modelPath": "gs://bucket/models/user-123/model.pth",
            "sampleRate": 22050,
            "qualityScore": 0.85,
            "metadata": {"version": "1.0", "trainingDuration": "15min"},
        }
    )
    assert body.resolved_quality_score() == 0.85
    assert body.metadata["trainingDuration"] == "15min"


def test_create_without_user_leaves_owner_to_the_token():
    body = VoiceModelCreate(provider=TTSProvider.ESPEAK, model_path="p", quality_score=0.5)
    assert body.user_id is None


def test_create_computes_score_from_components():
    body = VoiceModelCreate.model_validate(
        {
            "provider": "xtts-v2",
            "modelPath": "p",
            "qualityComponents": {
                "similarity": 0.9,
                "naturalness": 0.8,
                "clarity": 0.7,
                "consistency": 0.6,
            },
        }
    )
    assert body.resolved_quality_score() == pytest.approx(0.8)


def test_create_needs_a_quality():
    with pytest.raises(ValidationError, match="qualityScore or qualityComponents"):
        VoiceModelCreate.model_validate({"provider": "xtts-v2", "modelPath": "p"})


def test_create_refuses_score_disagreeing_with_components():
    components = {"similarity": 1, "naturalness": 1, "clarity": 1, "consistency": 1}
    with pytest.raises(ValidationError, match="does not match"):
        VoiceModelCreate.model_validate(
            {
                "provider": "xtts-v2",
                "modelPath": "p",
                "qualityScore": 0.2,
                "qualityComponents": components,
            }
        )


@pytest.mark.parametrize(
    "override",
    [
        {"qualityScore": 1.2},
        {"sampleRate": 100},
        {"provider": "nope"},
        {"modelPath": "   "},
        {"unknownField": 1},
        {"qualityComponents": {"similarity": 2, "naturalness": 1, "clarity": 1, "consistency": 1}},
    ],
)
def test_create_rejects_bad_bodies(override):
    body = {"provider": "xtts-v2", "modelPath": "p", "qualityScore": 0.5} | override
    with pytest.raises(ValidationError):
        VoiceModelCreate.model_validate(body)


def test_update_needs_at_least_one_change():
    with pytest.raises(ValidationError, match="at least one"):
        VoiceModelUpdate.model_validate({})
    with pytest.raises(ValidationError, match="at least one"):
        VoiceModelUpdate.model_validate({"userId": "user-123"})


def test_update_reports_only_the_fields_sent():
    update = VoiceModelUpdate.model_validate(
        {"userId": "user-123", "qualityScore": 0.9, "metadata": {"updated": True}}
    )
    assert update.changes() == {"metadata": {"updated": True}, "quality_score": 0.9}


@pytest.mark.parametrize(
    "body", [{"qualityScore": 1.2}, {"qualityScore": None}, {"metadata": None}, {"bogus": 1}]
)
def test_update_rejects_bad_values(body):
    with pytest.raises(ValidationError):
        VoiceModelUpdate.model_validate(body)


def test_usage_stats_serialize_like_the_seed():
    stats = VoiceModelUsageStats(
        model_id="model-123",
        usage_count=45,
        total_cost=8.75,
        average_latency=650,
        last_used=NOW,
        quality_rating=4.2,
    )
    assert stats.to_api() == {
        "modelId": "model-123",
        "usageCount": 45,
        "characters": 0,
        "requestedCharacters": 0,
        "totalCost": 8.75,
        "averageLatency": 650.0,
        "lastUsed": "2026-01-15T10:30:00Z",
        "qualityRating": 4.2,
    }


@pytest.mark.parametrize(
    "override", [{"usage_count": -1}, {"total_cost": -0.5}, {"quality_rating": 5.1}]
)
def test_usage_stats_reject_negative_or_out_of_range(override):
    with pytest.raises(ValidationError):
        VoiceModelUsageStats.model_validate({"model_id": "m"} | override)


def test_analytics_serialize_like_the_seed():
    analytics = VoiceModelAnalytics(
        total_models=5,
        active_models=1,
        models_by_provider={TTSProvider.XTTS_V2: 3, TTSProvider.OPENAI_TTS: 2},
        average_quality_score=0.82,
        total_usage_count=150,
        total_cost=25.5,
        storage_used_mb=250,
        last_used=NOW,
    )
    assert analytics.to_api() == {
        "totalModels": 5,
        "activeModels": 1,
        "modelsByProvider": {"xtts-v2": 3, "openai-tts": 2},
        "averageQualityScore": 0.82,
        "totalUsageCount": 150,
        "totalCost": 25.5,
        "storageUsedMb": 250.0,
        "lastUsed": "2026-01-15T10:30:00Z",
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"total_models": 1, "active_models": 2},
        {"total_models": 1, "models_by_provider": {"espeak": 2}},
        {"total_models": -1},
        {"average_quality_score": 1.2},
    ],
)
def test_analytics_reject_inconsistent_counts(fields):
    with pytest.raises(ValidationError):
        VoiceModelAnalytics.model_validate(fields)


def test_share_grants_use_to_another_user():
    share = ModelShare(model_id="m", owner_id="user-123", target_user_id="user-456")
    assert share.to_api()["permission"] == "use"
    assert share.to_api()["targetUserId"] == "user-456"


@pytest.mark.parametrize(
    "fields",
    [
        {"target_user_id": "user-123"},
        {"target_user_id": "user-456", "permission": "edit"},
    ],
)
def test_share_rejects_self_share_and_other_permissions(fields):
    with pytest.raises(ValidationError):
        ModelShare.model_validate({"model_id": "m", "owner_id": "user-123"} | fields)


def test_share_request_matches_the_seed_body():
    body = ModelShareCreate.model_validate(
        {"ownerId": "user-123", "targetUserIds": ["user-456", "user-789"], "permissions": "use"}
    )
    assert body.target_user_ids == ["user-456", "user-789"]
    with pytest.raises(ValidationError):
        ModelShareCreate.model_validate({"targetUserIds": []})
