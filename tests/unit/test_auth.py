"""Bearer-token verification with real signed tokens and a real JWKS server on 127.0.0.1.

RS256 tokens are signed with RSA keys generated here and checked against a JWKS document
served over HTTP from a thread, which counts its requests so the tests can prove caching
and the refetch on an unknown key id. Dev tokens, the dev secret file, the bearer header
parser and the ``local.token`` command are tested the way a developer would use them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import (
    DEV_ISSUER,
    KEYS_RETRY_AFTER,
    REJECTION_MESSAGE,
    CachingVerifier,
    DevTokenVerifier,
    JwksTokenVerifier,
    Principal,
    bearer_token,
    build_verifier,
    is_usable_user_id,
    load_or_create_dev_secret,
)
from shared.config import Settings
from shared.errors import ServiceUnavailableError, UnauthenticatedError

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "voice-platform-test"
ISSUER = f"https://securetoken.google.com/{PROJECT}"


# --- keys, tokens and the JWKS server ---------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def firebase_claims(**overrides: Any) -> dict[str, Any]:
    """Return valid ID-token claims; an override of None removes the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": PROJECT,
        "sub": f"user-{uuid.uuid4().hex[:8]}",
        "iat": now,
        "exp": now + 3600,
        "email": "alice@example.com",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def rs256_token(key: rsa.RSAPrivateKey, kid: str, **overrides: Any) -> str:
    return jwt.encode(firebase_claims(**overrides), key, algorithm="RS256", headers={"kid": kid})


def hand_signed_token(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """Build a token by hand, for algorithms PyJWT rightly refuses to sign with."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if key is None:
        return f"{signing_input}."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 that serves ``document`` and counts its requests."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"
        # A short poll interval keeps shutdown, and so each test's teardown, quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def publish(self, *keys: dict[str, Any]) -> None:
        self.document = {"keys": list(keys)}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours proxy variables; requests to the local JWKS server must stay local.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def jwks(signing_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(public_jwk(signing_key, "key-1"))
    server.start()
    yield server
    server.stop()


def jwks_verifier(url: str, **options: Any) -> JwksTokenVerifier:
    return JwksTokenVerifier(
        jwks_url=url, issuer=ISSUER, audience=PROJECT, fetch_timeout_seconds=2, **options
    )


@pytest.fixture
def verifier(jwks: JwksServer) -> JwksTokenVerifier:
    return jwks_verifier(jwks.url)


def assert_rejected(verifier: Any, token: str) -> None:
    with pytest.raises(UnauthenticatedError) as caught:
        verifier.verify(token)
    assert caught.value.message == REJECTION_MESSAGE


# --- RS256 / JWKS -----------------------------------------------------------------------


def test_valid_token_gives_the_principal(
    verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    token = rs256_token(signing_key, "key-1", sub="alice-1", admin=True, email="a@x.test")

    principal = verifier.verify(token)

    assert principal == Principal(user_id="alice-1", email="a@x.test", is_admin=True)
    assert principal.claims["iss"] == ISSUER


def test_admin_requires_a_json_true(
    verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    for not_true in ("true", 1, [True]):
        token = rs256_token(signing_key, "key-1", admin=not_true)
        assert verifier.verify(token).is_admin is False
    assert verifier.verify(rs256_token(signing_key, "key-1", email=None)).email is None


def test_keys_are_fetched_once_and_cached(
    jwks: JwksServer, verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    verifier.verify(rs256_token(signing_key, "key-1"))
    verifier.verify(rs256_token(signing_key, "key-1"))

    assert jwks.requests == 1


def test_an_unknown_key_id_refetches_the_keys(
    jwks: JwksServer, signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    verifier = jwks_verifier(jwks.url, refetch_cooldown_seconds=0)
    verifier.verify(rs256_token(signing_key, "key-1"))
    jwks.publish(public_jwk(signing_key, "key-1"), public_jwk(other_key, "key-2"))

    principal = verifier.verify(rs256_token(other_key, "key-2", sub="rotated"))

    assert principal.user_id == "rotated"
    assert jwks.requests == 2


def test_unknown_key_ids_do_not_refetch_during_the_cooldown(
    jwks: JwksServer, verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    verifier.verify(rs256_token(signing_key, "key-1"))

    for attempt in range(3):
        assert_rejected(verifier, rs256_token(signing_key, f"made-up-{attempt}"))

    assert jwks.requests == 1


def test_forged_signature_is_rejected(
    verifier: JwksTokenVerifier, other_key: rsa.RSAPrivateKey
) -> None:
    assert_rejected(verifier, rs256_token(other_key, "key-1"))


def test_expired_token_is_rejected(
    verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    assert_rejected(verifier, rs256_token(signing_key, "key-1", iat=now - 7200, exp=now - 3600))


def test_clock_skew_is_tolerated(
    verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    token = rs256_token(signing_key, "key-1", iat=now + 10, exp=now - 10)

    assert verifier.verify(token).user_id


def test_token_not_yet_valid_is_rejected(
    verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    assert_rejected(verifier, rs256_token(signing_key, "key-1", nbf=now + 600))
    assert_rejected(verifier, rs256_token(signing_key, "key-1", iat=now + 600))


def test_alg_none_is_rejected(verifier: JwksTokenVerifier) -> None:
    token = hand_signed_token(
        {"alg": "none", "typ": "JWT", "kid": "key-1"}, firebase_claims(), None
    )
    assert_rejected(verifier, token)


def test_hs256_signed_with_the_public_key_is_rejected(
    jwks: JwksServer, verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hand_signed_token(
        {"alg": "HS256", "typ": "JWT", "kid": "key-1"}, firebase_claims(), public_pem
    )

    assert_rejected(verifier, token)
    assert jwks.requests == 0  # refused before fetching any key


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"aud": "someone-elses-project"}, id="wrong-audience"),
        pytest.param({"aud": None}, id="missing-audience"),
        # A token meant for several audiences is not an ID token of this project.
        pytest.param({"aud": [PROJECT, "someone-elses-project"]}, id="audience-list"),
        pytest.param({"iss": "https://securetoken.google.com/other"}, id="wrong-issuer"),
        pytest.param({"iss": None}, id="missing-issuer"),
        pytest.param({"sub": None}, id="missing-sub"),
        pytest.param({"sub": ""}, id="empty-sub"),
        # A user id is a segment of the user's object names and their document's id.
        pytest.param({"sub": "eve/x"}, id="sub-with-a-slash"),
        pytest.param({"sub": ".."}, id="sub-dot-dot"),
        pytest.param({"sub": "__eve__"}, id="sub-reserved-by-firestore"),
        pytest.param({"sub": "eve\n"}, id="sub-unprintable"),
        pytest.param({"sub": "e" * 129}, id="sub-too-long"),
        pytest.param({"sub": 42}, id="sub-not-a-string"),
        pytest.param({"exp": None}, id="missing-exp"),
        pytest.param({"iat": None}, id="missing-iat"),
    ],
)
def test_bad_claims_are_rejected(
    verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey, overrides: dict[str, Any]
) -> None:
    assert_rejected(verifier, rs256_token(signing_key, "key-1", **overrides))


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "x" * 20_000, "eyJhbGciOiJSUzI1NiJ9.e30.sig"]
)
def test_malformed_tokens_are_rejected(verifier: JwksTokenVerifier, token: str) -> None:
    assert_rejected(verifier, token)


def test_rejection_does_not_echo_the_token(
    verifier: JwksTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    token = rs256_token(signing_key, "kid-that-is-not-there", sub="secret-subject")

    with pytest.raises(UnauthenticatedError) as caught:
        verifier.verify(token)

    assert "kid-that-is-not-there" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_unreachable_key_endpoint_is_service_unavailable(
    signing_key: rsa.RSAPrivateKey,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    verifier = jwks_verifier(f"http://127.0.0.1:{closed_port}/jwks.json")

    with pytest.raises(ServiceUnavailableError) as unavailable:
        verifier.verify(rs256_token(signing_key, "key-1"))
    assert unavailable.value.retry_after == KEYS_RETRY_AFTER  # the 503's Retry-After


def test_firebase_mode_uses_firebase_issuer_and_audience(
    jwks: JwksServer, signing_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        auth_mode="firebase",
        project=PROJECT,
        auth_jwks_url=jwks.url,
        data_dir=tmp_path,
    )
    verifier = build_verifier(settings)

    assert verifier.verify(rs256_token(signing_key, "key-1", sub="bob")).user_id == "bob"
    assert_rejected(verifier, rs256_token(signing_key, "key-1", aud="voice-platform-local"))


# --- dev tokens -------------------------------------------------------------------------


@pytest.fixture
def dev_verifier() -> DevTokenVerifier:
    return DevTokenVerifier(os.urandom(32), audience=PROJECT)


def test_dev_token_round_trip(dev_verifier: DevTokenVerifier) -> None:
    principal = dev_verifier.verify(dev_verifier.mint("alice", email="alice@example.com"))

    assert principal.user_id == "alice"
    assert principal.email == "alice@example.com"
    assert principal.is_admin is False
    assert principal.claims["iss"] == DEV_ISSUER


@pytest.mark.parametrize("user_id", ["", "eve/x", ".", "__eve__", "e" * 129])
def test_dev_tokens_are_not_minted_for_ids_that_cannot_name_a_user(
    dev_verifier: DevTokenVerifier, user_id: str
) -> None:
    with pytest.raises(ValueError, match="cannot name a user"):
        dev_verifier.mint(user_id)


def test_ids_that_can_name_a_user() -> None:
    for user_id in ("alice", "Xq3v9ZkT1bN8mP2rL5sW7yU4cD6e", "e" * 128, "ann.lee@x", "zoë"):
        assert is_usable_user_id(user_id), user_id


def test_dev_token_admin_claim(dev_verifier: DevTokenVerifier) -> None:
    assert dev_verifier.verify(dev_verifier.mint("root", admin=True)).is_admin is True


def test_dev_token_from_another_secret_is_rejected(dev_verifier: DevTokenVerifier) -> None:
    stranger = DevTokenVerifier(os.urandom(32), audience=PROJECT)
    assert_rejected(dev_verifier, stranger.mint("alice"))


def test_expired_dev_token_is_rejected() -> None:
    secret = os.urandom(32)
    now = int(time.time())
    claims = {"iss": DEV_ISSUER, "aud": PROJECT, "sub": "alice", "iat": now - 7200}
    token = jwt.encode({**claims, "exp": now - 3600}, secret, algorithm="HS256")

    assert_rejected(DevTokenVerifier(secret, audience=PROJECT), token)


def test_dev_verifier_rejects_rs256_and_none(
    dev_verifier: DevTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    assert_rejected(dev_verifier, rs256_token(signing_key, "key-1"))
    assert_rejected(dev_verifier, hand_signed_token({"alg": "none"}, firebase_claims(), None))


def test_dev_mode_builds_a_verifier_from_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, auth_mode="dev", project=PROJECT, data_dir=tmp_path)
    minter = DevTokenVerifier(load_or_create_dev_secret(settings.dev_secret_path), audience=PROJECT)

    assert build_verifier(settings).verify(minter.mint("carol")).user_id == "carol"


# --- the dev secret file ----------------------------------------------------------------


def test_dev_secret_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "dev-auth-secret"

    first = load_or_create_dev_secret(path)
    second = load_or_create_dev_secret(path)

    assert len(first) >= 32
    assert first == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["dev-auth-secret"]


def test_racing_processes_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "dev-auth-secret"
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        results.append(load_or_create_dev_secret(path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8
    assert len(set(results)) == 1
    assert results[0] == path.read_bytes()


# --- the Authorization header -----------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("  Bearer   abc  ", "abc"),
    ],
)
def test_bearer_token_is_parsed(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwdw==", "abc", "Bearer a b", "Token x"]
)
def test_bad_authorization_header_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(UnauthenticatedError):
        bearer_token(header)


# --- the local.token command ------------------------------------------------------------


def run_token_command(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("VOICE_") and name != "K_SERVICE"
    }
    return subprocess.run(
        [sys.executable, "-m", "local.token", *args],
        cwd=tmp_path,  # no stray .env is read
        env={
            **clean,
            "PYTHONPATH": str(REPO_ROOT),
            "VOICE_DATA_DIR": str(tmp_path),
            "VOICE_PROJECT": PROJECT,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_token_command_prints_a_token_that_verifies(tmp_path: Path) -> None:
    result = run_token_command(
        tmp_path, "--user", "alice", "--admin", "--email", "a@x.test", "--ttl", "600"
    )

    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == f"{token}\n"
    settings = Settings(_env_file=None, auth_mode="dev", project=PROJECT, data_dir=tmp_path)
    principal = build_verifier(settings).verify(token)
    assert principal == Principal(user_id="alice", email="a@x.test", is_admin=True)
    assert principal.claims["exp"] - principal.claims["iat"] == 600


def test_token_command_refuses_a_user_id_that_cannot_name_a_user(tmp_path: Path) -> None:
    result = run_token_command(tmp_path, "--user", "eve/x")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "cannot name a user" in result.stderr


def _planned_token_command(*variables: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "token", *variables],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    return next(line for line in planned if "-m local.token" in line)


def test_make_token_passes_ttl_to_the_token_command() -> None:
    """``make token TTL=120`` mints a two-minute token (the README's way to change it)."""
    planned = _planned_token_command("USER=alice", "TTL=120")
    assert planned.rstrip().endswith('-m local.token --user "alice"  --ttl "120"')
    assert "--ttl" not in _planned_token_command("USER=alice")  # the command's default, 1 h


def test_token_command_refuses_outside_dev_mode(tmp_path: Path) -> None:
    result = run_token_command(tmp_path, "--user", "alice", VOICE_AUTH_MODE="firebase")

    assert result.returncode != 0
    assert result.stdout == ""
    assert not (tmp_path / "dev-auth-secret").exists()


# --- caching of accepted tokens ------------------------------------------------------------


class _CountingVerifier:
    def __init__(self, inner: DevTokenVerifier) -> None:
        self.inner = inner
        self.calls = 0

    def verify(self, token: str) -> Principal:
        self.calls += 1
        return self.inner.verify(token)


def test_caching_verifier_checks_each_accepted_token_once(dev_verifier: DevTokenVerifier) -> None:
    counting = _CountingVerifier(dev_verifier)
    verifier = CachingVerifier(counting, ttl_seconds=60)
    token = dev_verifier.mint("alice", admin=True)

    assert verifier.verify(token).is_admin
    assert verifier.verify(token).user_id == "alice"
    assert counting.calls == 1
    verifier.verify(dev_verifier.mint("bob"))
    assert counting.calls == 2


def test_caching_verifier_never_caches_rejections(dev_verifier: DevTokenVerifier) -> None:
    counting = _CountingVerifier(dev_verifier)
    verifier = CachingVerifier(counting)
    forged = DevTokenVerifier(os.urandom(32), audience=PROJECT).mint("mallory")

    for _ in range(2):
        assert_rejected(verifier, forged)
    assert counting.calls == 2


def test_caching_verifier_forgets_tokens_at_their_expiry() -> None:
    strict = DevTokenVerifier(os.urandom(32), audience=PROJECT, clock_skew_seconds=0)
    counting = _CountingVerifier(strict)
    verifier = CachingVerifier(counting, ttl_seconds=600)
    token = strict.mint("alice", ttl_seconds=1)

    verifier.verify(token)
    time.sleep(2.1)
    assert_rejected(verifier, token)
    assert counting.calls == 2
