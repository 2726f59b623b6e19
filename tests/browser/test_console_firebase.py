"""The console's production sign-in in Chromium: email and password through Firebase Auth.

The gateway runs in the firebase auth mode, verifying ID tokens against a JWKS endpoint of
our own (``VOICE_AUTH_JWKS_URL``) instead of Google's. Firebase Auth's REST endpoint is
the one paid third-party piece, so the browser's request to it is answered by a fake in
its real wire format (``accounts:signInWithPassword``), with an RS256 ID token that the
platform then verifies on every API call, as it would a real one.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.gateway_process import GatewayProcess, start_gateway

pytestmark = pytest.mark.timeout(180)

PROJECT = "voice-console-firebase-test"
API_KEY = "AIza-console-test-key"
KID = "console-key-1"
PASSWORD = "correct horse battery staple"
SIGN_IN = "https://identitytoolkit.googleapis.com/v1/accounts:signInWithPassword"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


def id_token(key: rsa.RSAPrivateKey, uid: str, email: str) -> str:
    """An ID token as Firebase Auth issues it for ``PROJECT``."""
    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + 3600,
        "email": email,
        "email_verified": True,
        "firebase": {"identities": {"email": [email]}, "sign_in_provider": "password"},
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture(scope="module")
def firebase_gateway(
    tmp_path_factory: pytest.TempPathFactory, jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> Iterator[GatewayProcess]:
    running = start_gateway(
        tmp_path_factory.mktemp("firebase-gateway"),
        probe_token=lambda: id_token(signing_key, "probe", "probe@example.com"),
        VOICE_PROJECT=PROJECT,
        VOICE_AUTH_MODE="firebase",
        VOICE_AUTH_JWKS_URL=jwks_url,
        VOICE_CONSOLE_FIREBASE_API_KEY=API_KEY,
        # Pushes of Cloud Tasks would be verified as this account (none arrive here).
        VOICE_TASKS_SERVICE_ACCOUNT=f"tasks@{PROJECT}.iam.gserviceaccount.com",
    )
    yield running
    running.stop()


CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "content-type",
}


def answered_preflight(route: Any) -> bool:
    """Answer the browser's CORS preflight to a Google endpoint; return whether it was one.

    Any other request must carry the project's Web API key, as Google's endpoints require.
    """
    if route.request.method == "OPTIONS":
        route.fulfill(status=204, headers=CORS)
        return True
    assert parse_qs(urlsplit(route.request.url).query)["key"] == [API_KEY]
    return False


def test_email_sign_in_through_firebase_then_the_api_accepts_its_id_token(
    page, firebase_gateway: GatewayProcess, signing_key: rsa.RSAPrivateKey
):
    uid = f"fb-{uuid.uuid4().hex[:10]}"
    asked: list[dict[str, Any]] = []

    def firebase_auth(route: Any) -> None:
        request = route.request
        if answered_preflight(route):
            return
        body = request.post_data_json
        asked.append(body)
        if body["password"] != PASSWORD:
            error = {
                "code": 400,
                "message": "INVALID_LOGIN_CREDENTIALS",
                "errors": [
                    {
                        "message": "INVALID_LOGIN_CREDENTIALS",
                        "domain": "global",
                        "reason": "invalid",
                    }
                ],
            }
            route.fulfill(status=400, headers=CORS, json={"error": error})
            return
        route.fulfill(status=200, headers=CORS, json={
            "kind": "identitytoolkit#VerifyPasswordResponse",
            "localId": uid,
            "email": body["email"],
            "displayName": "",
            "idToken": id_token(signing_key, uid, body["email"]),
            "registered": True,
            "refreshToken": "AMf-refresh-" + uid,
            "expiresIn": "3600",
        })  # fmt: skip

    page.route(f"{SIGN_IN}*", firebase_auth)
    page.goto(f"{firebase_gateway.base}/console#/voices")
    firebase_form = page.locator("form.card").filter(
        has=page.get_by_role("heading", name="Firebase", exact=True)
    )
    assert f"Sign in to the project {PROJECT}" in firebase_form.inner_text()
    assert page.locator("#dev-sign-in").count() == 0  # no dev tokens outside the dev mode

    firebase_form.locator("input[type=email]").fill("fay@example.com")
    firebase_form.locator("input[type=password]").fill("wrong")
    firebase_form.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("text=Firebase sign-in failed: INVALID_LOGIN_CREDENTIALS")
    assert page.locator("#signed-in-as").count() == 0

    firebase_form.locator("input[type=password]").fill(PASSWORD)
    firebase_form.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#signed-in-as")
    assert page.inner_text("#signed-in-as") == f"Signed in as {uid}"
    assert asked[-1] == {
        "email": "fay@example.com",
        "password": PASSWORD,
        "returnSecureToken": True,
    }
    # The API verified the Firebase ID token: the catalog lists.
    page.wait_for_selector("#voices-table tbody tr")
    assert page.locator("#voices-table tbody tr").count() > 0


def test_a_pasted_firebase_id_token_signs_in_and_an_expired_one_is_refused(
    page, firebase_gateway: GatewayProcess, signing_key: rsa.RSAPrivateKey
):
    uid = f"fb-{uuid.uuid4().hex[:10]}"
    page.goto(f"{firebase_gateway.base}/console#/voices")
    pasted = page.locator("#paste-sign-in textarea[name=token]")
    stale = jwt.decode(
        id_token(signing_key, uid, "gus@example.com"), options={"verify_signature": False}
    )
    stale["exp"] = int(time.time()) - 60
    pasted.fill(jwt.encode(stale, signing_key, algorithm="RS256", headers={"kid": KID}))
    page.click("#paste-sign-in button[type=submit]")
    page.wait_for_selector("text=That is not a current token (unreadable or expired).")
    assert page.locator("#signed-in-as").count() == 0

    pasted.fill(id_token(signing_key, uid, "gus@example.com"))
    page.click("#paste-sign-in button[type=submit]")
    page.wait_for_selector("#signed-in-as")
    assert page.inner_text("#signed-in-as") == f"Signed in as {uid}"
    page.wait_for_selector("#voices-table tbody tr")  # the API verified the pasted token


REFRESH = "https://securetoken.googleapis.com/v1/token"


def test_an_id_token_about_to_expire_is_exchanged_through_firebase_before_the_next_request(
    page, firebase_gateway: GatewayProcess, signing_key: rsa.RSAPrivateKey
):
    """A page left open past its ID token's hour keeps working, then signs out when refused.

    The first ID token lives a few seconds past the console's 10-second margin; once inside
    it, the next API request (no navigation) waits for Firebase's refresh-token exchange
    (``securetoken.googleapis.com/v1/token``, answered by a fake in its real wire format)
    and carries the new ID token. When Firebase refuses the refresh token, the console
    signs out and says so.
    """
    uid = f"fb-{uuid.uuid4().hex[:10]}"
    signed_in_until = int(time.time()) + 14
    first = jwt.encode(
        {
            **jwt.decode(
                id_token(signing_key, uid, "hal@example.com"), options={"verify_signature": False}
            ),
            "exp": signed_in_until,
        },
        signing_key,
        algorithm="RS256",
        headers={"kid": KID},
    )
    second = id_token(signing_key, uid, "hal@example.com")
    exchanges: list[dict[str, list[str]]] = []
    refuse = threading.Event()

    def sign_in(route: Any) -> None:
        if answered_preflight(route):
            return
        route.fulfill(status=200, headers=CORS, json={
            "kind": "identitytoolkit#VerifyPasswordResponse",
            "localId": uid,
            "email": "hal@example.com",
            "idToken": first,
            "registered": True,
            "refreshToken": "AMf-refresh-1",
            "expiresIn": "3600",
        })  # fmt: skip

    def exchange(route: Any) -> None:
        request = route.request
        if answered_preflight(route):
            return
        exchanges.append(parse_qs(request.post_data or ""))
        if refuse.is_set():
            error = {"code": 400, "message": "TOKEN_EXPIRED", "status": "INVALID_ARGUMENT"}
            route.fulfill(status=400, headers=CORS, json={"error": error})
            return
        route.fulfill(status=200, headers=CORS, json={
            "access_token": second,
            "expires_in": "3600",
            "token_type": "Bearer",
            "refresh_token": "AMf-refresh-2",
            "id_token": second,
            "user_id": uid,
            "project_id": PROJECT,
        })  # fmt: skip

    page.route(f"{SIGN_IN}*", sign_in)
    page.route(f"{REFRESH}*", exchange)
    sent: list[str] = []
    page.on(
        "request",
        lambda r: sent.append(r.headers.get("authorization", "")) if "/voices?" in r.url else None,
    )
    page.goto(f"{firebase_gateway.base}/console#/voices")
    form = page.locator("form.card").filter(
        has=page.get_by_role("heading", name="Firebase", exact=True)
    )
    form.locator("input[type=email]").fill("hal@example.com")
    form.locator("input[type=password]").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#voices-table tbody tr")
    assert sent[-1] == f"Bearer {first}"
    assert exchanges == []

    # Inside the console's margin (the API would still take the token a few seconds more).
    time.sleep(max(0.0, signed_in_until - 10 - time.time()) + 0.5)
    with page.expect_response(lambda r: "/voices?" in r.url) as answered:
        page.click("#voice-filters button[type=submit]")
    assert answered.value.status == 200
    assert exchanges == [{"grant_type": ["refresh_token"], "refresh_token": ["AMf-refresh-1"]}]
    assert sent[-1] == f"Bearer {second}"
    assert page.inner_text("#signed-in-as") == f"Signed in as {uid}"
    assert page.evaluate("sessionStorage.getItem('voice-console.token')") == second

    # A refresh token Firebase no longer honours: signed out, told so, nothing sent as us.
    page.evaluate("(t) => sessionStorage.setItem('voice-console.token', t)", first)
    refuse.set()
    before = len(sent)
    page.click("#voice-filters button[type=submit]")
    page.wait_for_selector("text=Your token has expired: sign in again.")
    assert len(exchanges) == 2
    assert exchanges[-1]["refresh_token"] == ["AMf-refresh-2"]
    assert all(header == "" for header in sent[before:])
    assert page.locator("#signed-in-as").count() == 0
