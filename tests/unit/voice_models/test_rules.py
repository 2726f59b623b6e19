"""Voice-model rules without I/O: model and backup paths, next-best ranking, expiry dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import AccessDeniedError, InvalidBackupPathError, InvalidModelPathError
from shared.voice_models.activation import next_best
from shared.voice_models.artifacts import model_object_name
from shared.voice_models.backups import backup_object_name
from shared.voice_models.deps import Caller
from shared.voice_models.model import (
    CLEANUP_MIN_AGE,
    VoiceModel,
    VoiceModelStatus,
    cleanup_eligible_at,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def model(**fields):
    base = {"user_id": "ann", "provider": "xtts-v2", "model_path": "models/ann/m.pth"}
    return VoiceModel.model_validate(base | fields)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("models/ann/m.pth", "models/ann/m.pth"),
        ("gs://voice-models/models/ann/x/y.pth", "models/ann/x/y.pth"),
    ],
)
def test_model_paths_under_the_owners_prefix(path, name):
    assert model_object_name(path, user_id="ann", bucket="voice-models") == name


@pytest.mark.parametrize(
    "path",
    [
        "models/bob/m.pth",
        "models/annabel/m.pth",
        "models/ann/",
        "models/ann/../bob/m.pth",
        "gs://other/models/ann/m.pth",
        "gs://voice-models/deleted/ann/m.pth",
        "/models/ann/m.pth",
        "models/ann//m.pth",
    ],
)
def test_model_paths_elsewhere_are_refused(path):
    with pytest.raises(InvalidModelPathError):
        model_object_name(path, user_id="ann", bucket="voice-models")


def test_backup_paths_must_be_the_owners_own():
    name = backup_object_name("gs://b1/backups/ann/backup_1.json", owner="ann", bucket="b1")
    assert name == "backups/ann/backup_1.json"
    with pytest.raises(AccessDeniedError):
        backup_object_name("backups/bob/backup_1.json", owner="ann", bucket="b1")
    for bad in ("backups/ann/../bob/x.json", "backups/ann/x.txt", "gs://b2/backups/ann/x.json"):
        with pytest.raises(InvalidBackupPathError):
            backup_object_name(bad, owner="ann", bucket="b1")


def test_next_best_ranks_quality_then_use_then_newest():
    old = model(quality_score=0.7, created_at=NOW - timedelta(days=2))
    new = model(quality_score=0.7, created_at=NOW)
    best = model(quality_score=0.9, status=VoiceModelStatus.FAILED)
    gone = model(quality_score=0.95, deleted_at=NOW)
    assert next_best([old, new, best, gone], {}) == new
    assert next_best([old, new], {old.id: 3}) == old
    assert next_best([best, gone], {}) is None


def test_eligibility_date_is_the_later_of_age_and_disuse():
    created = NOW - timedelta(days=100)
    m = model(created_at=created)
    assert cleanup_eligible_at(m, None) == created + CLEANUP_MIN_AGE
    late_use = created + CLEANUP_MIN_AGE
    assert cleanup_eligible_at(m, late_use) == late_use + timedelta(days=30)


def test_callers_act_for_themselves_unless_admin():
    assert Caller("ann").acting_for(None) == "ann"
    assert Caller("ann").acting_for("ann") == "ann"
    assert Caller("root", is_admin=True).acting_for("bob") == "bob"
    with pytest.raises(AccessDeniedError):
        Caller("ann").acting_for("bob")
