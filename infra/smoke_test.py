"""Smoke-test a deployment through its front door: health, then an authenticated synthesis.

Cloud Build runs it after ``terraform apply``::

    python3 infra/smoke_test.py --base-url https://api.example.com \\
        --sign-as voice-smoke-test@PROJECT.iam.gserviceaccount.com --firebase-api-key KEY

1. ``GET /healthz`` until it answers ``{"status": "ok"}`` (a new managed certificate takes
   minutes to turn ACTIVE: ``--wait`` bounds the patience);
2. a Firebase ID token for the smoke-test user: a custom token signed as the service
   account through IAM (``gcloud iam service-accounts sign-jwt``, no key file), exchanged
   at Identity Toolkit with the project's Web API key; or ``--token`` to pass one directly
   (the local gateway's dev tokens, in tests);
3. ``POST /synthesize`` with that token (retried while the voice is not yet in a new
   deployment's catalog, ``--catalog-wait``), and a download of the audio it returns.

Exits 0 when every step passed, 1 otherwise, printing one line per step. Standard library
only: it runs in the Cloud SDK image.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IDENTITY_TOOLKIT = "https://identitytoolkit.googleapis.com"
SIGN_IN_AUDIENCE = (
    "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"
)
TIMEOUT_SECONDS = 60


class SmokeTestFailed(Exception):
    """One step of the smoke test did not give the answer a working deployment gives."""


@dataclass
class Answer:
    """An HTTP response: status, headers and body."""

    status: int
    body: bytes

    def json(self) -> Any:
        """Return the body parsed as JSON; raise ``SmokeTestFailed`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise SmokeTestFailed(f"expected JSON, got {self.body[:200]!r}") from None


def request(url: str, *, method: str = "GET", body: Any = None, token: str | None = None) -> Answer:
    """Return the answer to one request (HTTP errors are answers too)."""
    if not url.startswith(("https://", "http://")):
        raise SmokeTestFailed(f"not an HTTP URL: {url}")
    data = None if body is None else json.dumps(body).encode()
    sent = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - checked above
    if data is not None:
        sent.add_header("Content-Type", "application/json")
    if token:
        sent.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(sent, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read())


def wait_for_health(base_url: str, wait_seconds: float) -> None:
    """Return once ``/healthz`` answers ok; raise ``SmokeTestFailed`` after ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    last = "no answer"
    while True:
        try:
            answer = request(f"{base_url}/healthz")
            if answer.status == 200 and answer.json() == {"status": "ok"}:
                return
            last = f"HTTP {answer.status}: {answer.body[:200]!r}"
        except (OSError, SmokeTestFailed) as error:  # DNS, TLS before the certificate, resets
            last = str(error)
        if time.monotonic() >= deadline:
            raise SmokeTestFailed(f"/healthz never answered ok within {wait_seconds:.0f}s: {last}")
        time.sleep(min(15.0, max(0.1, deadline - time.monotonic())))


def sign_custom_token(
    service_account: str, uid: str, gcloud: str, retry_seconds: float = 180
) -> str:
    """Return a Firebase custom token for ``uid`` signed as ``service_account`` through IAM.

    A signing grant made by the same deploy takes a while to apply, so a refusal is retried
    for ``retry_seconds`` before it fails the smoke test.
    """
    now = int(time.time())
    claims = {
        "iss": service_account,
        "sub": service_account,
        "aud": SIGN_IN_AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "uid": uid,
    }
    with tempfile.TemporaryDirectory() as scratch:
        claims_path, token_path = Path(scratch, "claims.json"), Path(scratch, "token.jwt")
        claims_path.write_text(json.dumps(claims), encoding="utf-8")
        command = [gcloud, "iam", "service-accounts", "sign-jwt", str(claims_path), str(token_path)]
        deadline = time.monotonic() + retry_seconds
        while True:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [*command, f"--iam-account={service_account}"],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                return token_path.read_text(encoding="utf-8").strip()
            if time.monotonic() >= deadline:
                raise SmokeTestFailed(f"gcloud could not sign as {service_account}: {done.stderr}")
            time.sleep(min(15.0, max(0.1, deadline - time.monotonic())))


def exchange_custom_token(custom_token: str, api_key: str, identity_toolkit: str) -> str:
    """Return the Firebase ID token Identity Toolkit issues for ``custom_token``."""
    answer = request(
        f"{identity_toolkit}/v1/accounts:signInWithCustomToken?key={api_key}",
        method="POST",
        body={"token": custom_token, "returnSecureToken": True},
    )
    if answer.status != 200:
        raise SmokeTestFailed(f"signInWithCustomToken: HTTP {answer.status}: {answer.body[:300]!r}")
    return str(answer.json()["idToken"])


def synthesize(base_url: str, token: str, voice: str, catalog_wait: float) -> dict[str, Any]:
    """Return the synthesis answer after checking it and downloading its audio.

    A new deployment's voice catalog fills in with its first sync (Cloud Build starts one
    before the smoke test): an unknown voice is retried for up to ``catalog_wait`` seconds.
    """
    deadline = time.monotonic() + catalog_wait
    while True:
        answer = request(
            f"{base_url}/synthesize",
            method="POST",
            token=token,
            body={"text": "Smoke test of a new deployment.", "voice": voice, "outputFormat": "mp3"},
        )
        voice_missing = answer.status == 404 and b"VOICE_NOT_FOUND" in answer.body
        if not voice_missing or time.monotonic() >= deadline:
            break
        time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
    if answer.status not in (200, 201):
        raise SmokeTestFailed(f"POST /synthesize: HTTP {answer.status}: {answer.body[:300]!r}")
    result: dict[str, Any] = answer.json()
    if result.get("status") != "completed" or not result.get("downloadUrl"):
        raise SmokeTestFailed(f"POST /synthesize did not complete: {result}")
    audio = request(str(result["downloadUrl"]))
    if audio.status != 200 or len(audio.body) != result.get("size", len(audio.body)):
        raise SmokeTestFailed(f"audio download: HTTP {audio.status}, {len(audio.body)} bytes")
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smoke_test.py", description=__doc__)
    parser.add_argument("--base-url", required=True, help="the front door, e.g. https://api…")
    parser.add_argument("--token", help="a bearer token to use as is")
    parser.add_argument("--sign-as", help="service account that signs the custom token")
    parser.add_argument("--firebase-api-key", help="the project's Web API key")
    parser.add_argument("--uid", default="smoke-test", help="user id of the smoke test")
    parser.add_argument("--voice", default="espeak:en-US", help="voice to synthesize with")
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for health")
    parser.add_argument(
        "--catalog-wait", type=float, default=300, help="seconds to wait for the voice to exist"
    )
    parser.add_argument("--gcloud", default="gcloud", help=argparse.SUPPRESS)
    parser.add_argument("--identity-toolkit", default=IDENTITY_TOOLKIT, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the smoke test; return 0 when the deployment answered as it should."""
    args = _parser().parse_args(argv)
    base_url = args.base_url.rstrip("/")
    if not args.token and not (args.sign_as and args.firebase_api_key):
        print("smoke test: give --token, or --sign-as and --firebase-api-key", file=sys.stderr)
        return 2
    try:
        wait_for_health(base_url, args.wait)
        print(f"ok: {base_url}/healthz")
        token = args.token or exchange_custom_token(
            sign_custom_token(args.sign_as, args.uid, args.gcloud),
            args.firebase_api_key,
            args.identity_toolkit.rstrip("/"),
        )
        print(f"ok: signed in as {args.uid if not args.token else 'the given token'}")
        result = synthesize(base_url, token, args.voice, args.catalog_wait)
        print(f"ok: POST /synthesize -> {result['size']} bytes of {result['format']}, downloaded")
    except SmokeTestFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
