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


def test_voice_model_rate_limits_are_the_seeds_in_production_and_generous_elsewhere():
    production = Settings(_env_file=None, environment="production", **SAFE_PRODUCTION)
    assert (
        production.rate_limit_model_creates_per_hour,
        production.rate_limit_model_updates_per_hour,
        production.rate_limit_analytics_per_hour,
        production.rate_limit_backups_per_day,
    ) == (5, 20, 60, 2)
    local = Settings(_env_file=None)
    assert local.rate_limit_model_creates_per_hour >= 1000
    assert local.rate_limit_backups_per_day >= 100
    chosen = Settings(
        _env_file=None,
        environment="production",
        rate_limit_model_creates_per_hour=9,
        **SAFE_PRODUCTION,
    )
    assert chosen.rate_limit_model_creates_per_hour == 9


def test_the_public_base_url_is_where_the_gateway_listens_unless_set(monkeypatch):
    monkeypatch.delenv("VOICE_PUBLIC_BASE_URL", raising=False)
    assert Settings(_env_file=None, gateway_port=8093).public_base_url == "http://127.0.0.1:8093"
    assert (
        Settings(_env_file=None, gateway_host="0.0.0.0", gateway_port=9000).public_base_url  # noqa: S104
        == "http://127.0.0.1:9000"
    )
    given = Settings(_env_file=None, gateway_port=8093, public_base_url="https://voice.example")
    assert given.public_base_url == "https://voice.example"


def test_every_setting_is_read_by_the_platform():
    """A setting nothing reads misleads whoever sets it: each field is used outside tests."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = [
        path
        for folder in ("shared", "functions", "local", "bench", "session")
        for path in (root / folder).rglob("*.py")
        if path.name != "config.py" or path.parent.name != "shared"
    ]
    text = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    # ``is_production`` reads cloud_service; the rest must appear by name somewhere.
    unread = [
        name
        for name in Settings.model_fields
        if name != "cloud_service" and not re.search(rf"\b{name}\b", text)
    ]
    assert unread == []


def test_samples_awaiting_upload_outlive_their_upload_url():
    settings = Settings(_env_file=None)
    assert settings.samples_awaiting_upload_max_seconds == 24 * 3600
    assert settings.samples_awaiting_upload_max_seconds > settings.samples_upload_url_seconds
    with pytest.raises(ValidationError, match="must be longer than VOICE_SAMPLES_UPLOAD_URL"):
        Settings(
            _env_file=None,
            samples_upload_url_seconds=7200,
            samples_awaiting_upload_max_seconds=7200,
        )


def test_variables_are_read_in_any_case_and_aliases_stand_for_their_setting(monkeypatch):
    monkeypatch.setenv("voice_project", "lower-case")
    monkeypatch.delenv("VOICE_SESSIONS_PORT", raising=False)
    monkeypatch.setenv("PORT", "9191")  # Cloud Run's, when VOICE_SESSIONS_PORT is unset
    settings = Settings(_env_file=None)
    assert settings.project == "lower-case"
    assert settings.sessions_port == 9191
    monkeypatch.setenv("VOICE_SESSIONS_PORT", "9292")
    assert Settings(_env_file=None).sessions_port == 9292


def test_dict_settings_are_json_and_bad_json_is_refused_naming_the_setting(monkeypatch):
    monkeypatch.setenv("VOICE_OPENAI_SPEECH_VOICES", '{"nova": "espeak:fr"}')
    assert Settings(_env_file=None).openai_speech_voices == {"nova": "espeak:fr"}
    monkeypatch.setenv("VOICE_OPENAI_SPEECH_VOICES", "nova=espeak:fr")
    with pytest.raises(ValidationError, match="openai_speech_voices"):
        Settings(_env_file=None)


def test_the_env_file_gives_way_to_the_environment_and_arguments_to_both(monkeypatch, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        'VOICE_PROJECT=from-file\nexport VOICE_REGION="europe-west1"  # a comment\n'
        "VOICE_GATEWAY_PORT=7001\n",
        encoding="utf-8",
    )
    monkeypatch.delenv("VOICE_REGION", raising=False)
    monkeypatch.delenv("VOICE_GATEWAY_PORT", raising=False)
    monkeypatch.setenv("VOICE_PROJECT", "from-environment")
    settings = Settings(_env_file=env_file)
    assert (settings.project, settings.region, settings.gateway_port) == (
        "from-environment",
        "europe-west1",
        7001,
    )
    assert Settings(_env_file=env_file, gateway_port=7002).gateway_port == 7002
    assert Settings(_env_file=None).region == "us-central1"


def test_list_set_and_optional_complex_settings_are_json_too():
    # No setting is a list today; one added later reads as pydantic-settings read it.
    from pydantic.fields import FieldInfo

    from shared.config import _decoded

    for annotation in (list[str], set[int], dict[str, int] | None, tuple[str, ...]):
        assert _decoded('["a"]', FieldInfo.from_annotation(annotation)) == ["a"]
    assert _decoded('["a"]', FieldInfo.from_annotation(str)) == '["a"]'
    assert _decoded("not json", FieldInfo.from_annotation(list[str])) == "not json"
