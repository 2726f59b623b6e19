"""``shared.jws`` against PyJWT, the library it replaced on the request path.

PyJWT is the reference: on generated claim sets and on tokens mutated byte by byte, every
token ``shared.jws`` accepts PyJWT accepts too (with the options the verifiers used), and
PyJWT's only acceptances ``shared.jws`` refuses are the ones it refuses on purpose (a date
given as a string or a boolean). The key-set fetching is tested against a real JWKS
endpoint in ``test_auth.py``; here are its refusals, and a check that verifying a token
loads neither PyJWT nor cryptography's X.509.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import jws

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"s" * 32
ISSUER = "https://securetoken.google.com/p"
AUDIENCE = "p"
LEEWAY = 30
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims: Any, header: dict[str, Any] | None = None, secret: bytes = SECRET) -> str:
    """Sign anything JSON as an HS256 token by hand (PyJWT's encode refuses some claims)."""
    header = {"alg": "HS256", "typ": "JWT"} if header is None else header
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def ours(token: str, secret: bytes = SECRET) -> dict[str, Any] | None:
    """Return the claims shared.jws accepts ``token`` with at NOW, or None."""
    try:
        parsed = jws.parse(token)
        jws.verify_hs256(parsed, secret)
        jws.check_claims(parsed.claims, issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY, now=NOW)
    except jws.TokenError:
        return None
    return parsed.claims


def pyjwts(token: str, secret: bytes = SECRET) -> dict[str, Any] | None:
    """Return the claims PyJWT accepts ``token`` with at NOW (as the old verifiers asked)."""
    try:
        decoded: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "sub"], "strict_aud": True},
        )
    except (jwt.PyJWTError, TypeError, ValueError):
        return None
    return decoded


@pytest.fixture(autouse=True, scope="module")
def _frozen_clock() -> Iterator[None]:
    # PyJWT takes "now" from datetime.now(tz=utc): pinned to NOW, as ours is given it.
    class FrozenDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.datetime.fromtimestamp(NOW, tz=tz)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("jwt.api_jwt.datetime", FrozenDatetime)
        yield


NUMERIC = st.one_of(
    st.integers(min_value=NOW - 200, max_value=NOW + 200),
    st.floats(min_value=NOW - 200, max_value=NOW + 200),
)
ODD = st.one_of(
    st.none(), st.booleans(), st.text(max_size=3), st.just(str(NOW + 100)), st.lists(st.integers())
)
DATE = st.one_of(NUMERIC, NUMERIC, ODD)
NAME = st.one_of(st.just(ISSUER), st.just(AUDIENCE), st.text(max_size=4), st.integers(), st.none())


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for name, values in (
        ("exp", DATE),
        ("iat", DATE),
        ("nbf", DATE),
        ("iss", st.one_of(st.just(ISSUER), st.just(ISSUER), NAME)),
        ("aud", st.one_of(st.just(AUDIENCE), st.just(AUDIENCE), NAME, st.just([AUDIENCE]))),
        ("sub", st.one_of(st.just("user-1"), st.just("user-1"), NAME)),
        ("jti", st.one_of(st.text(max_size=3), st.integers())),
    ):
        required = name in ("exp", "iat", "sub", "iss", "aud")
        if (required or draw(st.booleans())) and draw(st.integers(0, 9)):  # usually present
            claims[name] = draw(values)
    return claims


def deliberately_stricter(claims: dict[str, Any]) -> bool:
    """Return whether a claim set holds a date PyJWT takes and we refuse (a string, a bool)."""
    return any(
        isinstance(claims.get(name), str | bool) for name in ("exp", "iat", "nbf") if name in claims
    )


@settings(max_examples=600, deadline=None)
@given(claims=claim_sets())
def test_claims_are_judged_as_pyjwt_judges_them(claims: dict[str, Any]) -> None:
    token = hs256(claims)

    mine, reference = ours(token), pyjwts(token)

    if mine is not None:
        assert reference == mine
    elif reference is not None:
        assert deliberately_stricter(claims), claims


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_changed_token_is_accepted_only_if_pyjwt_accepts_it(data: st.DataObject) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": NOW, "exp": NOW + 60}
    token = bytearray(hs256(claims).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(token) - 1))
        token[index] = data.draw(st.sampled_from(b"AaZz09-_.=+/ \x00\xff"))
    text = token.decode("latin-1")

    mine = ours(text)

    if mine is not None:
        assert pyjwts(text) == mine == claims


@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
@pytest.mark.parametrize(
    "value", [10**400, -(10**400), 1e400, "NaN"], ids=["huge", "-huge", "infinity", "nan"]
)
def test_a_date_no_float_can_hold_is_refused(name: str, value: object) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "iat": NOW, "exp": NOW + 60}
    claims[name] = value if value != "NaN" else float("nan")

    assert ours(hs256(claims)) is None


def test_tokens_round_trip_between_pyjwt_and_us(rsa_key: rsa.RSAPrivateKey) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "iat": NOW, "exp": NOW + 60}

    assert ours(jwt.encode(claims, SECRET, algorithm="HS256")) == claims
    assert pyjwts(jws.sign_hs256(claims, SECRET)) == claims
    signed = jws.parse(jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "k"}))
    jws.verify_rs256(signed, rsa_key.public_key())
    assert signed.claims == claims


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        ({"alg": "none"}, SECRET),
        ({"alg": "HS512"}, SECRET),
        ({"alg": "HS256", "crit": ["exp"]}, SECRET),
        ({"alg": "HS256", "b64": False, "crit": ["b64"]}, SECRET),
        ({"alg": "HS256", "b64": True}, SECRET),
        ({"alg": "HS256"}, b"short"),
    ],
    ids=["none", "hs512", "crit", "unencoded", "b64", "short-key"],
)
def test_what_we_do_not_speak_is_refused(header: dict[str, Any], secret: bytes) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "iat": NOW, "exp": NOW + 60}

    assert ours(hs256(claims, header, secret), secret) is None


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # on purpose
def test_rs256_refuses_a_short_key_and_another_keys_signature(rsa_key: rsa.RSAPrivateKey) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"sub": "u"}

    with pytest.raises(jws.TokenError, match="too short"):
        jws.verify_rs256(
            jws.parse(jwt.encode(claims, small, algorithm="RS256")), small.public_key()
        )
    with pytest.raises(jws.TokenError, match="does not verify"):
        jws.verify_rs256(
            jws.parse(jwt.encode(claims, other, algorithm="RS256")), rsa_key.public_key()
        )
    with pytest.raises(jws.TokenError, match="not RS256"):
        jws.verify_rs256(jws.parse(hs256(claims)), rsa_key.public_key())


def public_jwk(key: rsa.RSAPrivateKey, **fields: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "kid": "k1",
        "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64url(numbers.e.to_bytes(3, "big")),
    }
    jwk.update(fields)
    return {name: value for name, value in jwk.items() if value is not None}


def test_a_key_set_keeps_only_rs256_signing_keys(rsa_key: rsa.RSAPrivateKey) -> None:
    keys = jws.rsa_keys(
        {
            "keys": [
                public_jwk(rsa_key, kid="plain"),
                public_jwk(rsa_key, kid="signing", use="sig", alg="RS256"),
                public_jwk(rsa_key, kid="padded", n=public_jwk(rsa_key)["n"] + "=="),
                public_jwk(rsa_key, kid="encryption", use="enc"),
                public_jwk(rsa_key, kid="rs512", alg="RS512"),
                public_jwk(rsa_key, kid=None),
                public_jwk(rsa_key, kid="bad-n", n="***"),
                {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
                "not a key",
            ]
        }
    )

    assert sorted(keys) == ["padded", "plain", "signing"]
    expected = rsa_key.public_key().public_numbers()
    assert keys["plain"].public_numbers() == expected
    assert keys["padded"].public_numbers() == expected
    documents: list[Any] = [{"keys": [public_jwk(rsa_key, use="enc")]}, {"keys": {}}, [], {"k": []}]
    for document in documents:
        with pytest.raises(jws.KeysUnavailableError):
            jws.rsa_keys(document)


class Endpoint:
    """An HTTP endpoint on 127.0.0.1 answering every GET with ``status``, ``headers``, ``body``."""

    def __init__(self) -> None:
        self.status, self.body = 200, b"{}"
        self.cut_short = False
        self.requests = 0
        self.delay = 0.0  # seconds each answer waits, as a slow or distant endpoint
        self.headers: dict[str, str] = {}
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                time.sleep(endpoint.delay)
                self.send_response(endpoint.status)
                for name, value in endpoint.headers.items():
                    self.send_header(name, value)
                if endpoint.cut_short:  # a chunk of 256 bytes promised, one sent: closed
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"100\r\n{")
                    return
                self.send_header("Content-Length", str(len(endpoint.body)))
                self.end_headers()
                self.wfile.write(endpoint.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks"
        threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = Endpoint()
    yield server
    server.close()


def test_a_key_endpoint_that_does_not_answer_a_key_set_is_unavailable(
    endpoint: Endpoint, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys = jws.JwksKeys(endpoint.url, lifespan=60, timeout=2, cooldown=0)
    good = json.dumps({"keys": [public_jwk(rsa_key)]}).encode()
    answers: list[tuple[int, dict[str, str], bytes]] = [
        (500, {}, good),
        (302, {"Location": endpoint.url + "?again"}, good),  # redirects are not followed
        (200, {}, b"not json"),
        (200, {}, b" " * (jws.MAX_JWKS_BYTES + 1) + good),
    ]
    for endpoint.status, endpoint.headers, endpoint.body in answers:
        with pytest.raises(jws.KeysUnavailableError):
            keys.key("k1")
    endpoint.status, endpoint.headers, endpoint.body, endpoint.cut_short = 200, {}, good, True
    with pytest.raises(jws.KeysUnavailableError):  # http.client's IncompleteRead
        keys.key("k1")
    endpoint.cut_short = False

    endpoint.status, endpoint.headers, endpoint.body = 200, {}, good
    assert keys.key("k1").public_numbers() == rsa_key.public_key().public_numbers()
    endpoint.status = 500  # a fresh set is kept while it lasts; an unknown id then fails
    assert keys.key("k1").public_numbers() == rsa_key.public_key().public_numbers()
    with pytest.raises(jws.KeysUnavailableError):
        keys.key("k2")


def test_a_key_withdrawn_from_the_set_is_trusted_only_until_the_set_expires(
    endpoint: Endpoint, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys = jws.JwksKeys(endpoint.url, lifespan=1.5, timeout=2, cooldown=60)
    endpoint.body = json.dumps({"keys": [public_jwk(rsa_key, kid="old")]}).encode()
    assert keys.key("old")
    endpoint.body = json.dumps({"keys": [public_jwk(rsa_key, kid="new")]}).encode()

    assert keys.key("old")  # the set is still fresh: no fetch
    assert endpoint.requests == 1
    time.sleep(1.6)
    with pytest.raises(jws.TokenError, match="key id"):
        keys.key("old")  # the expired set was fetched again, without the withdrawn key
    assert endpoint.requests == 2
    assert keys.key("new")
    assert endpoint.requests == 2


def _in_thread(call: Any) -> threading.Thread:
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def _wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.01)


def _has_key(keys: jws.JwksKeys, kid: str) -> bool:
    try:
        keys.key(kid)
    except jws.TokenError:
        return False
    return True


def test_a_known_key_is_not_held_up_by_a_refetch_for_an_unknown_one(
    endpoint: Endpoint, rsa_key: rsa.RSAPrivateKey
) -> None:
    # Tokens with made-up key ids (one refetch per cooldown) must not stall every caller.
    keys = jws.JwksKeys(endpoint.url, lifespan=60, timeout=5, cooldown=0)
    endpoint.body = json.dumps({"keys": [public_jwk(rsa_key, kid="k1")]}).encode()
    assert keys.key("k1")
    endpoint.delay = 1.5
    refused: list[Exception] = []

    def unknown() -> None:
        try:
            keys.key("made-up")
        except jws.TokenError as exc:
            refused.append(exc)

    refetch = _in_thread(unknown)
    _wait_until(lambda: endpoint.requests >= 2)  # the refetch is under way
    started = time.monotonic()
    assert keys.key("k1")
    assert time.monotonic() - started < 0.5
    refetch.join(5)
    assert len(refused) == 1  # and the made-up id is still refused
    assert endpoint.requests == 2


def test_a_key_set_near_its_end_is_refetched_while_callers_go_on_with_it(
    endpoint: Endpoint, rsa_key: rsa.RSAPrivateKey
) -> None:
    # Refetched from 1.2 s on (the last 60 % of 3 s); the cooldown keeps a missing id from
    # fetching, so only the refetch ahead can bring the new key in.
    keys = jws.JwksKeys(endpoint.url, lifespan=3.0, timeout=5, cooldown=60, refresh_ahead=0.6)
    endpoint.body = json.dumps({"keys": [public_jwk(rsa_key, kid="old")]}).encode()
    fetched = time.monotonic()
    assert keys.key("old")
    endpoint.body = json.dumps({"keys": [public_jwk(rsa_key, kid="new")]}).encode()
    endpoint.delay = 0.5
    time.sleep(1.3)
    started = time.monotonic()
    assert keys.key("old")  # still valid: answered at once while the set is refetched
    assert time.monotonic() - started < 0.3
    for caller in [_in_thread(lambda: keys.key("old")) for _ in range(4)]:
        caller.join(5)
    _wait_until(lambda: _has_key(keys, "new"))  # the refetched set, in the background
    assert time.monotonic() - fetched < 3.0  # before the old one ran out
    assert endpoint.requests == 2  # one refetch for every caller of that moment
    with pytest.raises(jws.TokenError, match="key id"):
        keys.key("old")  # withdrawn from the refetched set


def test_a_failed_refetch_ahead_is_not_repeated_and_the_set_lasts_its_lifespan(
    endpoint: Endpoint, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys = jws.JwksKeys(endpoint.url, lifespan=3.0, timeout=5, cooldown=60, refresh_ahead=0.7)
    endpoint.body = json.dumps({"keys": [public_jwk(rsa_key, kid="k1")]}).encode()
    fetched = time.monotonic()
    assert keys.key("k1")
    endpoint.status = 500
    time.sleep(1.0)  # past 0.9 s: refetched ahead from the next call
    for _ in range(20):
        assert keys.key("k1")  # the set in hand, while the refetch fails
    _wait_until(lambda: endpoint.requests >= 2)
    time.sleep(0.2)
    assert keys.key("k1")
    assert endpoint.requests == 2  # one refetch ahead per set, not one per caller
    assert time.monotonic() - fetched < 3.0
    time.sleep(max(0.0, fetched + 3.0 - time.monotonic()) + 0.05)
    with pytest.raises(jws.KeysUnavailableError):  # expired: fetched again, and refused
        keys.key("k1")
    assert endpoint.requests == 3


def test_callers_of_an_expired_key_set_wait_for_one_fetch(
    endpoint: Endpoint, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys = jws.JwksKeys(endpoint.url, lifespan=60, timeout=5, cooldown=60)
    endpoint.body = json.dumps({"keys": [public_jwk(rsa_key, kid="k1")]}).encode()
    endpoint.delay = 0.5  # every caller asks while the first fetch is under way
    found: list[object] = []
    callers = [_in_thread(lambda: found.append(keys.key("k1"))) for _ in range(6)]
    for caller in callers:
        caller.join(5)
    assert len(found) == 6
    assert endpoint.requests == 1
    # When that one fetch fails, those waiting for it are refused with it, not fetch in turn.
    failing = jws.JwksKeys(endpoint.url, lifespan=60, timeout=5, cooldown=60)
    endpoint.status = 503
    refused: list[Exception] = []

    def refused_call() -> None:
        try:
            failing.key("k1")
        except jws.KeysUnavailableError as exc:
            refused.append(exc)

    callers = [_in_thread(refused_call) for _ in range(6)]
    for caller in callers:
        caller.join(5)
    assert len(refused) == 6
    assert endpoint.requests == 2


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/k", "data:,{}"])
def test_a_key_set_comes_over_http_only(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        jws.JwksKeys(url, lifespan=60, timeout=2, cooldown=0)


# Checks a dev token, then an RS256 token signed with cryptography directly, and prints
# which of PyJWT, X.509 and the elliptic curves each check loaded.
CHECK_LOADS = """
import base64, json, sys
from shared import jws
def heavy():
    prefixes = ("jwt", "cryptography.x509", "cryptography.hazmat.primitives.asymmetric.ec")
    return sorted(m for m in sys.modules if m.startswith(prefixes))
jws.verify_hs256(jws.parse(sys.argv[1]), b"s" * 32)
after_hs256 = (heavy(), "cryptography" in sys.modules)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
signing_input = b64(b'{"alg":"RS256"}') + "." + b64(b'{"sub":"u"}')
signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
jws.verify_rs256(jws.parse(signing_input + "." + b64(signature)), key.public_key())
print(json.dumps({"hs256": after_hs256, "rs256": heavy()}))
"""


def test_checking_a_token_loads_neither_pyjwt_nor_x509() -> None:
    token = hs256({"sub": "u"})

    printed = subprocess.run(
        [sys.executable, "-c", CHECK_LOADS, token],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert json.loads(printed) == {"hs256": [[], False], "rs256": []}
