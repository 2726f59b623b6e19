"""Start ``gcp-storage-emulator`` for the object storage contract tests.

The emulator runs in memory on a free port. It serves the JSON API the real client uses,
but ignores preconditions (``ifGenerationMatch``), page sizes (``maxResults``) and
signatures, and sends no notifications: the contract suite covers those on the local
adapter and in unit tests of the Cloud Storage adapter's requests.
"""

from __future__ import annotations

import functools
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.support.processes import Emulator, free_port, http_ok, start_process

PROJECT = "test"
SERVICE_ACCOUNT_EMAIL = "signer@test.iam.gserviceaccount.com"


def storage_emulator_command(port: int) -> list[str]:
    """Return the command starting the emulator installed beside this Python."""
    executable = Path(sys.executable).parent / "gcp-storage-emulator"
    if not executable.exists():
        raise RuntimeError(f"gcp-storage-emulator is not installed at {executable}")
    return [
        str(executable),
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
        "--quiet",
    ]


def start_storage_emulator(log_path: Path) -> Emulator:
    """Start the emulator and wait until its health check answers."""
    port = free_port()
    host = f"127.0.0.1:{port}"
    return start_process(
        storage_emulator_command(port),
        host=host,
        log_path=log_path,
        ready=lambda: http_ok(f"http://{host}/"),
        timeout=30,
    )


def new_storage_client(emulator: Emulator) -> Any:
    """Return a ``storage.Client`` talking to the emulator without credentials."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"http://{emulator.host}"},
    )


def new_bucket(client: Any, prefix: str = "test") -> str:
    """Create a bucket with a unique name in the emulator and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:20]}"
    client.create_bucket(name)
    return name


@functools.lru_cache(maxsize=1)
def _private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_public_key() -> Any:
    """Return the public key that checks what ``service_account_credentials`` signs."""
    return _private_key().public_key()


@functools.lru_cache(maxsize=1)
def service_account_credentials() -> Any:
    """Service-account credentials with a key generated here, to sign V4 URLs offline."""
    from cryptography.hazmat.primitives import serialization
    from google.oauth2 import service_account

    pem = (
        _private_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-key",
            "private_key": pem,
            "client_email": SERVICE_ACCOUNT_EMAIL,
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
