"""Settings: embedded defaults locally, and production refusing unsafe choices."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import Settings

SAFE_PRODUCTION = {
    "store": "gcp",
    "blobs": "gcp",
    "tasks": "gcp",
    "auth_mode": "firebase",
    "tasks_service_account": "tasks@proj.iam.gserviceaccount.com",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("K_SERVICE", "VOICE_ENVIRONMENT", "VOICE_STORE", "VOICE_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_embedded_and_local():
    settings = Settings(_env_file=None)
    assert (settings.store, settings.blobs, settings.tasks) == ("embedded",) * 3
    assert settings.auth_mode == "dev"
    assert not settings.is_production


def test_environment_variables_use_the_voice_prefix(monkeypatch):
    monkeypatch.setenv("VOICE_PROJECT", "my-proj")
    monkeypatch.setenv("VOICE_GATEWAY_PORT", "9090")
    settings = Settings(_env_file=None)
    assert settings.project == "my-proj"
    assert settings.gateway_port == 9090


@pytest.mark.parametrize("embedded", ["store", "blobs", "tasks"])
def test_production_refuses_embedded_adapters(embedded):
    with pytest.raises(ValidationError, match="embedded adapters"):
        Settings(
            _env_file=None, environment="production", **{**SAFE_PRODUCTION, embedded: "embedded"}
        )


def test_production_refuses_dev_auth():
    with pytest.raises(ValidationError, match="dev auth"):
        Settings(
            _env_file=None, environment="production", **{**SAFE_PRODUCTION, "auth_mode": "dev"}
        )


def test_a_cloud_run_service_is_production_whatever_the_variable_says(monkeypatch):
    monkeypatch.setenv("K_SERVICE", "users")
    with pytest.raises(ValidationError, match="Refusing unsafe configuration"):
        Settings(_env_file=None, environment="local")
    assert Settings(_env_file=None, **SAFE_PRODUCTION).is_production


def test_safe_production_settings_are_accepted():
    settings = Settings(_env_file=None, environment="production", **SAFE_PRODUCTION)
    assert settings.is_production


def test_production_cloud_tasks_need_a_service_account_for_oidc():
    with pytest.raises(ValidationError, match="VOICE_TASKS_SERVICE_ACCOUNT"):
        Settings(
            _env_file=None,
            environment="production",
            **{**SAFE_PRODUCTION, "tasks_service_account": None},
        )


def test_the_public_base_url_follows_the_gateway_unless_set(monkeypatch):
    monkeypatch.setenv("VOICE_GATEWAY_PORT", "8094")
    assert Settings(_env_file=None).public_base_url == "http://127.0.0.1:8094"
    monkeypatch.setenv("VOICE_PUBLIC_BASE_URL", "https://voice.example.com")
    assert Settings(_env_file=None).public_base_url == "https://voice.example.com"
