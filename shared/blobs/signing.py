"""HMAC-signed download URLs for the local object storage, checked by the gateway.

The local stand-in for a V4 signed URL: ``{base}/_blobs/{bucket}/{name}?expires=<unix
seconds>&signature=<hex HMAC-SHA256>``, the MAC covering the method, bucket, name and
expiry, so no part can be changed without the key. The gateway's blob server calls
``verify`` before serving and answers 403 when it raises.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

from shared.errors import AccessDeniedError

URL_PREFIX = "/_blobs"
MIN_KEY_BYTES = 16


class UrlSigner:
    """Signs and verifies local blob URLs with one secret key."""

    def __init__(self, key: bytes, public_base_url: str) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"The URL signing key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self.public_base_url = public_base_url.rstrip("/")

    def signature(self, method: str, bucket: str, name: str, expires: int) -> str:
        """Return the hex MAC of one request: method, bucket, name and expiry."""
        message = "\n".join([method.upper(), bucket, name, str(expires)]).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, method: str, bucket: str, name: str, expires: int) -> str:
        """Return the signed URL for ``method`` on ``bucket/name`` until ``expires``."""
        query = urlencode(
            {"expires": expires, "signature": self.signature(method, bucket, name, expires)}
        )
        return f"{self.public_base_url}{URL_PREFIX}/{bucket}/{quote(name, safe='/~')}?{query}"

    def verify(
        self,
        method: str,
        bucket: str,
        name: str,
        expires: str | None,
        signature: str | None,
        *,
        now: float | None = None,
    ) -> None:
        """Return when the request carries a valid, unexpired signature.

        A HEAD is accepted on a URL signed for GET (a client probing the size first).
        Raises AccessDeniedError for a missing, malformed, forged or expired signature.
        """
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            raise AccessDeniedError("Missing or malformed URL signature")
        methods = {method.upper()}
        if method.upper() == "HEAD":
            methods.add("GET")
        valid = any(
            hmac.compare_digest(self.signature(m, bucket, name, int(expires)), signature)
            for m in sorted(methods)
        )
        if not valid:
            raise AccessDeniedError("Invalid URL signature")
        if int(expires) < (time.time() if now is None else now):
            raise AccessDeniedError("The signed URL has expired")
