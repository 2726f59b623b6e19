"""Compact JWS tokens (RFC 7515, 7519): the two signatures bearer tokens may carry.

A bearer token here is HS256 (dev tokens, signed with a local secret) or RS256 (Firebase ID
tokens, keys published as a JWKS). This module parses a token strictly, checks its
signature with ``hmac`` or cryptography's RSA, checks its registered claims, and fetches
and caches a JWKS's RSA keys. Nothing else: no other algorithm, no ``crit`` extension, no
unencoded payload, no key taken from the token itself.

Why not PyJWT, which this replaced on the request path: importing PyJWT imports
cryptography's X.509, elliptic-curve, SSH and cipher modules, about 40 ms of every function's
cold start (``python -m bench.cold_start``), while checking these two signatures needs
``hmac`` and cryptography's RSA alone. PyJWT stays the reference in the tests:
``tests/unit/test_jws.py`` checks this module against it on generated tokens.

Every refusal raises ``TokenError`` whose message names only the kind of fault (never a
value from the token); ``KeysUnavailableError`` says the key set itself cannot be had.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.lazy import lazy_module

if TYPE_CHECKING:
    from cryptography import exceptions
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
else:
    # Only an RS256 token needs RSA; a dev deployment never loads cryptography.
    exceptions = lazy_module("cryptography.exceptions")
    padding = lazy_module("cryptography.hazmat.primitives.asymmetric.padding")
    rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")

HS256 = "HS256"
RS256 = "RS256"
# RFC 7518 3.2 and 3.3: an HMAC key as long as the hash, an RSA modulus of 2048 bits or more.
MIN_HMAC_KEY_BYTES = 32
MIN_RSA_KEY_BITS = 2048
# A JWKS document is a few kilobytes (Firebase's: two keys); anything far larger is refused.
MAX_JWKS_BYTES = 1 << 20
REQUIRED_CLAIMS = ("exp", "iat", "sub")
# In the last tenth of a key set's lifespan it is refetched ahead, on a background thread.
REFRESH_AHEAD = 0.1
logger = logging.getLogger(__name__)
_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class TokenError(Exception):
    """A token is refused; the message names the kind of fault, never the token's content."""


class KeysUnavailableError(Exception):
    """The signing keys cannot be fetched or hold no usable key: our outage, not the caller's."""


class Token:
    """A parsed compact JWS whose signature is not yet checked.

    A plain class, not a dataclass: every function's first request parses a token, and a
    frozen dataclass cost each cold start about a millisecond to create
    (``python -m bench.cold_start_costs`` lists it among the costliest classes).
    """

    __slots__ = ("claims", "header", "signature", "signing_input")

    def __init__(
        self, header: dict[str, Any], claims: dict[str, Any], signing_input: bytes, signature: bytes
    ) -> None:
        self.header = header
        self.claims = claims
        self.signing_input = signing_input
        self.signature = signature

    @property
    def algorithm(self) -> object:
        """Return the header's ``alg`` (anything: compare it, never trust it)."""
        return self.header.get("alg")


def _decode_segment(segment: str) -> bytes:
    # base64url without padding (RFC 7515 2), in its one canonical spelling (no bits set
    # past the last byte), as PyJWT checks too: one token cannot be spelt several ways.
    if len(segment) % 4 == 1 or not _BASE64URL.issuperset(segment):
        raise TokenError("a segment is not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        raise TokenError("a segment is not base64url") from None
    if _encode_segment(data) != segment:
        raise TokenError("a segment is not canonical base64url")
    return data


def _encode_segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise TokenError(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError(f"the {what} is not a JSON object")
    return value


def parse(token: str) -> Token:
    """Return ``token``'s header, claims, signing input and signature, unverified.

    Raises ``TokenError`` for anything but three base64url segments whose first two are
    JSON objects, and for a header asking for extensions (``crit``, RFC 7515 4.1.11) or an
    unencoded payload (``b64``, RFC 7797), neither of which these tokens use.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("not three segments")
    header = _json_object(_decode_segment(parts[0]), "header")
    if "crit" in header or "b64" in header:
        raise TokenError("the header asks for an extension")
    claims = _json_object(_decode_segment(parts[1]), "payload")
    signature = _decode_segment(parts[2])
    return Token(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def sign_hs256(claims: Mapping[str, Any], secret: bytes) -> str:
    """Return a compact HS256 token of ``claims`` signed with ``secret``."""
    header = _encode_segment(json.dumps({"alg": HS256, "typ": "JWT"}).encode())
    payload = _encode_segment(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_encode_segment(signature)}"


def verify_hs256(token: Token, secret: bytes) -> None:
    """Raise ``TokenError`` unless ``token`` is HS256 and signed with ``secret``."""
    if token.algorithm != HS256:
        raise TokenError("the algorithm is not HS256")
    if len(secret) < MIN_HMAC_KEY_BYTES:
        raise TokenError("the HMAC key is too short")
    expected = hmac.new(secret, token.signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, token.signature):
        raise TokenError("the signature does not verify")


def verify_rs256(token: Token, key: RSAPublicKey) -> None:
    """Raise ``TokenError`` unless ``token`` is RS256 and signed by ``key``'s private key."""
    if token.algorithm != RS256:
        raise TokenError("the algorithm is not RS256")
    if key.key_size < MIN_RSA_KEY_BITS:
        raise TokenError("the RSA key is too short")
    try:
        key.verify(token.signature, token.signing_input, padding.PKCS1v15(), hashes.SHA256())
    except exceptions.InvalidSignature:
        raise TokenError("the signature does not verify") from None


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    # RFC 7519 2: a JSON number of seconds. PyJWT also takes "123" and true; we do not.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"'{name}' is not a number of seconds")
    try:
        seconds = float(value)  # a JSON integer of hundreds of digits overflows a float
    except OverflowError:
        raise TokenError(f"'{name}' is out of range") from None
    if not math.isfinite(seconds):
        raise TokenError(f"'{name}' is out of range")
    return seconds


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    leeway: float,
    now: float | None = None,
) -> None:
    """Raise ``TokenError`` unless ``claims`` are those of a token valid now for us.

    ``exp``, ``iat`` and ``sub`` are required; the token must not have expired (``exp``),
    been issued (``iat``) or become valid (``nbf``) in the future, each within ``leeway``
    seconds; ``iss`` must be ``issuer`` and ``aud`` exactly ``audience`` (one string, not
    a list: Firebase ID tokens name one project); ``sub`` and ``jti`` must be strings.
    """
    now = time.time() if now is None else now
    for name in REQUIRED_CLAIMS:
        if claims.get(name) is None:
            raise TokenError(f"'{name}' is missing")
    if _numeric_date(claims, "exp") <= now - leeway:
        raise TokenError("the token has expired")
    if _numeric_date(claims, "iat") > now + leeway:
        raise TokenError("the token is issued in the future")
    if "nbf" in claims and _numeric_date(claims, "nbf") > now + leeway:
        raise TokenError("the token is not valid yet")
    if claims.get("iss") != issuer:
        raise TokenError("the issuer is not ours")
    if claims.get("aud") != audience:
        raise TokenError("the audience is not ours")
    if not isinstance(claims["sub"], str):
        raise TokenError("'sub' is not a string")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise TokenError("'jti' is not a string")


def _rsa_key(jwk: Any) -> tuple[str, RSAPublicKey] | None:
    """Return a JWK's key id and RSA public key, or None for a key we cannot sign-check with."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        return None
    kid, n, e = jwk.get("kid"), jwk.get("n"), jwk.get("e")
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", RS256) != RS256:
        return None
    if not (isinstance(kid, str) and kid and isinstance(n, str) and isinstance(e, str)):
        return None
    try:
        # Some publishers pad these (RFC 7518 6.3.1 says not to): a padded key still counts.
        modulus = int.from_bytes(_decode_segment(n.rstrip("=")), "big")
        exponent = int.from_bytes(_decode_segment(e.rstrip("=")), "big")
        return kid, rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except (TokenError, ValueError):
        return None


def rsa_keys(document: Any) -> dict[str, RSAPublicKey]:
    """Return the RS256 signing keys of a JWKS document by key id (RFC 7517 5).

    Keys of another type or use, or that do not parse, are skipped, as PyJWT's key set
    does. Raises ``KeysUnavailableError`` when the document is not a key set or holds no
    usable key.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeysUnavailableError("The key endpoint did not answer a JSON Web Key Set")
    keys = dict(key for jwk in document["keys"] if (key := _rsa_key(jwk)) is not None)
    if not keys:
        raise KeysUnavailableError("The JSON Web Key Set holds no usable RS256 key")
    return keys


class JwksKeys:
    """The RS256 keys published at a JWKS URL, fetched on first use and cached.

    The set is kept for ``lifespan`` seconds. In its last ``refresh_ahead`` part, the first
    caller starts one refetch on a background thread while every caller goes on with the
    set in hand (still valid), so no request waits for the endpoint once an hour. A key id
    missing from the set triggers one refetch, at most once per ``cooldown`` seconds after
    any fetch, so tokens with made-up key ids cannot make us hammer the endpoint; callers
    whose key is in the set never wait for such a refetch. Callers that need a fetch (no
    set yet, an expired one, a missing id) share one: each waits for the fetch under way and
    uses its result, or its failure. A failed fetch leaves the cache as it was (an expired
    set is not used: its tokens wait, 503, until the endpoint answers again).
    """

    def __init__(
        self,
        url: str,
        *,
        lifespan: float,
        timeout: float,
        cooldown: float,
        refresh_ahead: float = REFRESH_AHEAD,
    ) -> None:
        # urllib also opens file:, ftp: and data: URLs; the key set only ever comes over HTTP.
        if not url.lower().startswith(("https://", "http://")):
            raise ValueError(f"The JWKS URL must be http(s), not {url!r}")
        if lifespan <= 0 or cooldown < 0 or timeout <= 0:
            raise ValueError("lifespan and timeout must be positive, cooldown not negative")
        if not 0 <= refresh_ahead < 1:
            raise ValueError("refresh_ahead is a part of the lifespan, from 0 to under 1")
        self.url = url
        self._lifespan = lifespan
        self._refresh_from = lifespan * (1 - refresh_ahead)  # the age that starts a refetch
        self._timeout = timeout
        self._cooldown = cooldown
        self._lock = threading.Lock()  # guards the fields below, never held over a fetch
        self._keys: dict[str, RSAPublicKey] | None = None
        self._fetched_at = -math.inf  # time.monotonic() of the last successful fetch
        self._failed_at = -math.inf  # and of the last failed one
        self._refreshed_ahead = -math.inf  # the _fetched_at of the set last refreshed ahead
        self._fetching = threading.Lock()  # one fetch at a time

    def key(self, kid: str) -> RSAPublicKey:
        """Return the key with id ``kid``.

        Raises ``KeysUnavailableError`` when the set cannot be fetched and ``TokenError``
        when the set, even refetched, has no such key.
        """
        now = time.monotonic()
        with self._lock:
            keys, fetched_at = self._keys, self._fetched_at
        age = now - fetched_at
        if keys is not None and age < self._lifespan:
            key = keys.get(kid)
            if key is not None:
                if age >= self._refresh_from:
                    self._refresh_ahead(fetched_at)
                return key
            if age < self._cooldown:
                raise TokenError("no published key has the token's key id")
        key = self._fetched_after(fetched_at).get(kid)
        if key is None:
            raise TokenError("no published key has the token's key id")
        return key

    def _fetched_after(self, seen: float) -> dict[str, RSAPublicKey]:
        """Return a set fetched after the one fetched at ``seen``.

        That is the fetch that ended while this caller waited for it, or this caller's own.
        Raises ``KeysUnavailableError`` when that fetch failed.
        """
        waited_from = time.monotonic()
        with self._fetching:
            with self._lock:
                if self._fetched_at > seen and self._keys is not None:
                    return self._keys
                if self._failed_at >= waited_from:
                    raise KeysUnavailableError("Cannot fetch the signing keys: it just failed")
            return self._fetch()

    def _refresh_ahead(self, seen: float) -> None:
        """Start one refetch of the set fetched at ``seen`` on a background thread."""
        with self._lock:
            if self._refreshed_ahead >= seen:
                return  # once per set: if it fails, the set's expiry fetches it again
            self._refreshed_ahead = seen

        def refresh() -> None:
            try:
                self._fetched_after(seen)
            except KeysUnavailableError as exc:
                logger.warning("Could not refetch the signing keys ahead of time: %s", exc)

        threading.Thread(target=refresh, name="jwks-refresh", daemon=True).start()

    def _fetch(self) -> dict[str, RSAPublicKey]:
        try:
            keys = rsa_keys(self._download())
        except KeysUnavailableError:
            with self._lock:
                self._failed_at = time.monotonic()
            raise
        with self._lock:
            self._keys, self._fetched_at = keys, time.monotonic()
        return keys

    def _download(self) -> Any:
        """Return the JSON document at the URL; raises ``KeysUnavailableError``."""
        # Off cold starts (urllib.request loads http.client, email, ssl): only an RS256
        # deployment ever fetches keys, once an hour.
        import http.client  # noqa: PLC0415 - see above
        import urllib.error  # noqa: PLC0415 - see above
        import urllib.request  # noqa: PLC0415 - see above

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None  # a redirect is an answer we do not follow: a failed fetch

        opener = urllib.request.build_opener(NoRedirects)
        try:
            with opener.open(self.url, timeout=self._timeout) as response:
                body = response.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError("the key set is too large")
            return json.loads(body)
        # URLError, HTTPError and timeouts are OSErrors; IncompleteRead only an HTTPException.
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
            raise KeysUnavailableError(
                f"Cannot fetch the signing keys: {type(exc).__name__}"
            ) from None
