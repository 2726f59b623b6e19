"""Functions under test, built as the Cloud Functions runtime builds them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import functions_framework
import pytest
from flask.testing import FlaskClient

from shared.auth import build_dev_verifier
from shared.bootstrap import get_container, reset_container

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[Path]:
    """Embedded settings with a fresh data directory; the container rebuilt around it."""
    for variable in ("K_SERVICE", "VOICE_STORE", "VOICE_AUTH_MODE", "VOICE_DEV_AUTH_SECRET"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("VOICE_ENVIRONMENT", "test")
    monkeypatch.setenv("VOICE_DATA_DIR", str(data_dir))
    reset_container()
    yield data_dir
    reset_container()


@pytest.fixture
def function_client(platform: Path) -> Callable[[str], FlaskClient]:
    """Return a factory of test clients, one per function entry point in main.py."""

    def build(target: str) -> FlaskClient:
        return functions_framework.create_app(target, str(ROOT / "main.py")).test_client()

    return build


@pytest.fixture
def token(platform: Path) -> Callable[..., str]:
    """Return a function minting real dev-signed tokens for the running settings."""
    verifier = build_dev_verifier(get_container().settings)

    def mint(
        user_id: str, *, admin: bool = False, ttl_seconds: int = 3600, account_id: str | None = None
    ) -> str:
        return verifier.mint(user_id, admin=admin, ttl_seconds=ttl_seconds, account_id=account_id)

    return mint


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}
