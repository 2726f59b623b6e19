"""Bearer-token verification: who is calling, and are they an admin.

Two verifiers answer the same question. ``JwksTokenVerifier`` checks Firebase ID tokens
(RS256 only, keys fetched from a JWKS URL and cached), and ``DevTokenVerifier`` checks
HS256 tokens signed with a local secret so the whole platform runs on one machine; it also
mints them for ``make token`` and tests. ``build_verifier`` picks one from ``Settings``.
Both parse and check tokens with ``shared.jws``. Every bad token becomes the same
``UnauthenticatedError`` with a generic message, so a caller learns nothing about why; the
only other outcome is ``ServiceUnavailableError`` when the key endpoint itself cannot be
reached, since that is our outage, not theirs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from shared import jws
from shared.errors import ConfigurationError, ServiceUnavailableError, UnauthenticatedError

if TYPE_CHECKING:
    from shared.config import Settings

logger = logging.getLogger(__name__)

DEV_ISSUER = "voice-platform-dev"
FIREBASE_ISSUER_PREFIX = "https://securetoken.google.com/"
DEV_SECRET_BYTES = 32
REJECTION_MESSAGE = "Invalid or expired token"
# Firebase ID tokens are about 1 KB; anything far larger is not worth parsing.
MAX_TOKEN_CHARS = 16 * 1024
# Seconds a caller waits before trying again while the signing keys cannot be fetched.
KEYS_RETRY_AFTER = 5

ACCOUNT_CLAIM = "accountId"
MAX_ACCOUNT_ID_CHARS = 255


@dataclass(frozen=True)
class Principal:
    """The verified caller: their user id, optional email, admin flag and every claim."""

    user_id: str
    email: str | None = None
    is_admin: bool = False
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def account_id(self) -> str:
        """Return the tenant the caller acts for: the ``accountId`` claim, else the user id.

        Firebase custom claims carry the account of a team's members (and of a telephony
        system's service identity); a token without one acts for the user alone.
        """
        account = self.claims.get(ACCOUNT_CLAIM)
        if isinstance(account, str) and 0 < len(account) <= MAX_ACCOUNT_ID_CHARS:
            return account
        return self.user_id


class TokenVerifier(Protocol):
    """Turns a bearer token into the ``Principal`` it proves."""

    def verify(self, token: str) -> Principal:
        """Return the token's principal; raise ``UnauthenticatedError`` for a bad token."""
        ...


def _invalid_token() -> UnauthenticatedError:
    return UnauthenticatedError(REJECTION_MESSAGE)


MAX_USER_ID_LENGTH = 128
"""Firebase's own limit on a user id (``uid``)."""


def is_usable_user_id(user_id: object) -> TypeGuard[str]:
    """Return whether ``user_id`` can name a user here.

    A user id names the user's document and is a segment of their object names
    (``samples/{userId}/...``), and deleting an account deletes everything under that
    prefix: so no ``/``, no ``.`` or ``..``, no ``__x__`` (Firestore reserves those ids),
    nothing unprintable, at most 128 characters. Firebase's generated ids are all fine;
    a custom token minted with another id is refused.
    """
    return (
        isinstance(user_id, str)
        and 0 < len(user_id) <= MAX_USER_ID_LENGTH
        and user_id.isprintable()
        and "/" not in user_id
        and user_id not in (".", "..")
        and not (user_id.startswith("__") and user_id.endswith("__"))
    )


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    user_id = claims.get("sub")
    if not is_usable_user_id(user_id):
        raise _invalid_token()
    email = claims.get("email")
    return Principal(
        user_id=user_id,
        email=email if isinstance(email, str) and email else None,
        # Only a JSON true grants admin: "true", 1 or a list must not.
        is_admin=claims.get("admin") is True,
        claims=claims,
    )


def _check_size(token: str) -> None:
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid_token()


def _checked_claims(
    token: jws.Token, *, issuer: str, audience: str, leeway: float
) -> dict[str, Any]:
    try:
        jws.check_claims(token.claims, issuer=issuer, audience=audience, leeway=leeway)
    except jws.TokenError as exc:
        raise _reject(exc) from None
    return token.claims


def _reject(exc: Exception) -> UnauthenticatedError:
    # jws's messages name the kind of fault only, never a value taken from the token.
    logger.debug("Rejected a bearer token: %s", exc)
    return _invalid_token()


class DevTokenVerifier:
    """Mints and verifies HS256 tokens signed with a local secret (dev auth mode only)."""

    algorithm = "HS256"

    def __init__(self, secret: bytes, *, audience: str, clock_skew_seconds: int = 30) -> None:
        if len(secret) < DEV_SECRET_BYTES:
            raise ConfigurationError(
                f"The dev auth secret must be at least {DEV_SECRET_BYTES} bytes long"
            )
        self._secret = secret
        self.audience = audience
        self.issuer = DEV_ISSUER
        self._leeway = clock_skew_seconds

    def mint(
        self,
        user_id: str,
        *,
        admin: bool = False,
        email: str | None = None,
        ttl_seconds: int = 3600,
        account_id: str | None = None,
    ) -> str:
        """Return a signed token for ``user_id`` valid for ``ttl_seconds``.

        Raises ``ValueError`` for a user id that cannot name a user (``is_usable_user_id``)
        or a non-positive lifetime.
        """
        if not is_usable_user_id(user_id):
            raise ValueError(
                f"user_id {user_id!r} cannot name a user: 1 to {MAX_USER_ID_LENGTH} printable "
                "characters, no '/', not '.', '..' or __x__"
            )
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        if admin:
            claims["admin"] = True
        if email is not None:
            claims["email"] = email
        if account_id is not None:
            claims[ACCOUNT_CLAIM] = account_id
        return jws.sign_hs256(claims, self._secret)

    def verify(self, token: str) -> Principal:
        """Return the token's principal; raise ``UnauthenticatedError`` for a bad token."""
        _check_size(token)
        try:
            parsed = jws.parse(token)
            jws.verify_hs256(parsed, self._secret)
        except jws.TokenError as exc:
            raise _reject(exc) from None
        claims = _checked_claims(
            parsed, issuer=self.issuer, audience=self.audience, leeway=self._leeway
        )
        return _principal_from_claims(claims)


class JwksTokenVerifier:
    """Verifies RS256 tokens (Firebase ID tokens) against keys published at a JWKS URL.

    The key set is cached for ``cache_seconds`` and refetched on a background thread in the
    last tenth of that time (``shared.jws.JwksKeys``); a token whose key id is not in the
    cache triggers one refetch, at most once per ``refetch_cooldown_seconds`` so that tokens
    with made-up key ids cannot make us hammer the key endpoint.
    """

    algorithm = "RS256"

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        cache_seconds: int = 3600,
        clock_skew_seconds: int = 30,
        refetch_cooldown_seconds: float = 30.0,
        fetch_timeout_seconds: float = 5.0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._leeway = clock_skew_seconds
        self._keys = jws.JwksKeys(
            jwks_url,
            lifespan=cache_seconds,
            timeout=fetch_timeout_seconds,
            cooldown=refetch_cooldown_seconds,
        )

    def verify(self, token: str) -> Principal:
        """Return the token's principal.

        Raises ``UnauthenticatedError`` for a bad token and ``ServiceUnavailableError``
        when the signing keys cannot be fetched.
        """
        _check_size(token)
        try:
            parsed = jws.parse(token)
        except jws.TokenError as exc:
            raise _reject(exc) from None
        kid = parsed.header.get("kid")
        # Refuse other algorithms before any network call, so forged tokens cost nothing.
        if parsed.algorithm != self.algorithm or not isinstance(kid, str) or not kid:
            raise _invalid_token()
        try:
            jws.verify_rs256(parsed, self._keys.key(kid))
        except jws.KeysUnavailableError as exc:
            logger.warning("Cannot load token signing keys: %s", exc)
            raise ServiceUnavailableError(
                "Cannot verify credentials right now", retry_after=KEYS_RETRY_AFTER
            ) from None
        except jws.TokenError as exc:
            raise _reject(exc) from None
        claims = _checked_claims(
            parsed, issuer=self.issuer, audience=self.audience, leeway=self._leeway
        )
        return _principal_from_claims(claims)


def load_or_create_dev_secret(path: Path) -> bytes:
    """Return the dev token secret stored at ``path``, creating it on first use.

    A new secret is ``DEV_SECRET_BYTES`` random bytes written with mode 0600. Concurrent
    callers all end up with the same secret: each writes a private temporary file and
    hard-links it into place, which never replaces a file another process put there first.
    Raises ``ConfigurationError`` when the existing file is too short to be a secret.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(DEV_SECRET_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
            # Losing the race is fine: whatever file won is read back below.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) < DEV_SECRET_BYTES:
        raise ConfigurationError(
            f"The dev auth secret at {path} is too short; delete it to generate a new one"
        )
    return secret


def build_dev_verifier(settings: Settings) -> DevTokenVerifier:
    """Return the dev verifier for ``settings``, using ``dev_auth_secret`` when set.

    Otherwise the secret is loaded from (or created at) ``settings.dev_secret_path``.
    Raises ``ConfigurationError`` when the secret is too short.
    """
    if settings.dev_auth_secret is not None:
        secret = settings.dev_auth_secret.get_secret_value().encode()
    else:
        secret = load_or_create_dev_secret(settings.dev_secret_path)
    return DevTokenVerifier(
        secret,
        audience=settings.auth_audience or settings.project,
        clock_skew_seconds=settings.auth_clock_skew_seconds,
    )


class CachingVerifier:
    """Remembers tokens another verifier accepted, until they expire or ``ttl_seconds`` pass.

    A mobile client sends the same ID token for up to an hour, so a warm instance checks
    each token's signature once. Only accepted tokens are kept (keyed by the whole token),
    never beyond their own ``exp``, and only for a short time so a rotated-out signing key
    stops being trusted soon after.
    """

    def __init__(
        self, inner: TokenVerifier, *, ttl_seconds: float = 60.0, max_entries: int = 4096
    ) -> None:
        self._inner = inner
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._accepted: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        """Return the token's principal; raise as the inner verifier does."""
        now = time.time()
        with self._lock:
            cached = self._accepted.get(token)
            if cached is not None and cached[1] > now:
                self._accepted.move_to_end(token)
                return cached[0]
        principal = self._inner.verify(token)
        expires = float(principal.claims.get("exp", now))
        with self._lock:
            self._accepted[token] = (principal, min(expires, now + self._ttl))
            while len(self._accepted) > self._max_entries:
                self._accepted.popitem(last=False)
        return principal


def build_verifier(settings: Settings) -> TokenVerifier:
    """Return the verifier for ``settings.auth_mode``: dev-signed or Firebase ID tokens."""
    if settings.auth_mode == "dev":
        return CachingVerifier(build_dev_verifier(settings))
    return CachingVerifier(
        JwksTokenVerifier(
            jwks_url=settings.auth_jwks_url,
            issuer=settings.auth_issuer or f"{FIREBASE_ISSUER_PREFIX}{settings.project}",
            audience=settings.auth_audience or settings.project,
            cache_seconds=settings.auth_jwks_cache_seconds,
            clock_skew_seconds=settings.auth_clock_skew_seconds,
        )
    )


def bearer_token(authorization_header: str | None) -> str:
    """Return the token from an ``Authorization: Bearer <token>`` header value.

    Raises ``UnauthenticatedError`` when the header is missing or not a bearer token.
    """
    if not authorization_header:
        raise UnauthenticatedError("Missing bearer token")
    parts = authorization_header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise UnauthenticatedError("Malformed Authorization header; expected 'Bearer <token>'")
    return parts[1]
