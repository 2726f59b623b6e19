"""Who may push work to the tasks function: Cloud Tasks and Cloud Scheduler, nobody else.

In production both send a Google-signed OIDC token for the tasks service account
(``iss`` https://accounts.google.com, ``aud`` the tasks function's URL); the verifier
checks it against Google's published keys and requires that account's verified email.
In the dev auth mode (local gateway, emulator tests) no Google token exists, so a
dev-signed token of an admin stands in for it. Either way a user's Firebase token is
refused: a normal user must never be able to run tasks with forged payloads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from shared.auth import JwksTokenVerifier, Principal, TokenVerifier, bearer_token
from shared.errors import AccessDeniedError

GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"


class PushVerifier(Protocol):
    """Checks the ``Authorization`` header of a push from Cloud Tasks or Cloud Scheduler."""

    def verify(self, authorization_header: str | None) -> Principal:
        """Return the caller; raise UnauthenticatedError or AccessDeniedError."""
        ...


class GoogleOidcPushVerifier:
    """Accepts Google OIDC tokens whose verified email is one of ``allowed_emails``."""

    def __init__(
        self,
        *,
        audience: str,
        allowed_emails: Iterable[str],
        tokens: TokenVerifier | None = None,
    ) -> None:
        self.allowed_emails = frozenset(email.lower() for email in allowed_emails if email)
        if not self.allowed_emails:
            raise ValueError("At least one service account must be allowed to push tasks")
        self._tokens = tokens or JwksTokenVerifier(
            jwks_url=GOOGLE_JWKS_URL, issuer=GOOGLE_ISSUER, audience=audience
        )

    def verify(self, authorization_header: str | None) -> Principal:
        """Return the service account's principal; raise for any other caller."""
        principal = self._tokens.verify(bearer_token(authorization_header))
        email = (principal.email or "").lower()
        if email not in self.allowed_emails or principal.claims.get("email_verified") is not True:
            raise AccessDeniedError("Only the platform's task service account may do this")
        return principal


class AdminTokenPushVerifier:
    """Dev auth mode: accepts the platform's own tokens, but only an admin's."""

    def __init__(self, tokens: TokenVerifier) -> None:
        self._tokens = tokens

    def verify(self, authorization_header: str | None) -> Principal:
        """Return the admin principal; raise for a missing, bad or non-admin token."""
        principal = self._tokens.verify(bearer_token(authorization_header))
        if not principal.is_admin:
            raise AccessDeniedError("Only the platform's task service account may do this")
        return principal
