"""HMAC-signed download URLs for the local object storage, checked by the gateway.

The local stand-in for a V4 signed URL: ``{base}/_blobs/{bucket}/{name}?expires=<unix
seconds>&signature=<hex HMAC-SHA256>``, the MAC covering the method, bucket, name and
expiry, so no part can be changed without the key. The gateway's blob server calls
``verify`` before serving and answers 403 when it raises. An upload URL (``PUT``) also
carries ``maxBytes``, and its MAC covers the size limit and the content type the upload
must send, as a V4 URL signs its ``Content-Type`` and ``x-goog-content-length-range``.
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

    def signature(self, method: str, bucket: str, name: str, expires: int, *conditions: str) -> str:
        """Return the hex MAC of one request: method, bucket, name, expiry and conditions."""
        parts = [method.upper(), bucket, name, str(expires), *conditions]
        message = "\n".join(parts).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, method: str, bucket: str, name: str, expires: int) -> str:
        """Return the signed URL for ``method`` on ``bucket/name`` until ``expires``."""
        query = urlencode(
            {"expires": expires, "signature": self.signature(method, bucket, name, expires)}
        )
        return f"{self.public_base_url}{URL_PREFIX}/{bucket}/{quote(name, safe='/~')}?{query}"

    def upload_url(
        self, bucket: str, name: str, expires: int, *, content_type: str, max_bytes: int
    ) -> str:
        """Return the signed ``PUT`` URL of ``bucket/name`` for one content type and size."""
        signature = self.signature("PUT", bucket, name, expires, content_type, str(max_bytes))
        query = urlencode({"expires": expires, "maxBytes": max_bytes, "signature": signature})
        return f"{self.public_base_url}{URL_PREFIX}/{bucket}/{quote(name, safe='/~')}?{query}"

    def verify_upload(
        self,
        bucket: str,
        name: str,
        *,
        expires: str | None,
        max_bytes: str | None,
        content_type: str,
        signature: str | None,
        now: float | None = None,
    ) -> int:
        """Return the upload's size limit when the URL is signed for this content type.

        Raises AccessDeniedError for a missing, malformed, forged or expired signature, or
        a content type other than the one signed.
        """
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            raise AccessDeniedError("Missing or malformed URL signature")
        if not max_bytes or not max_bytes.isdigit() or len(max_bytes) > 15:
            raise AccessDeniedError("Missing or malformed URL signature")
        expected = self.signature("PUT", bucket, name, int(expires), content_type, max_bytes)
        if not hmac.compare_digest(expected, signature):
            raise AccessDeniedError("Invalid URL signature (or another Content-Type)")
        if int(expires) < (time.time() if now is None else now):
            raise AccessDeniedError("The signed URL has expired")
        return int(max_bytes)

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
