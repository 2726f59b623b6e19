"""HTTP plumbing shared by the REST adapters: one session each, and one error mapping.

Statuses map to categories the same way for every provider: 401/403 auth, 429 rate limited
(with ``Retry-After``), 408 and 5xx transient, other 4xx permanent; connection failures and
timeouts are transient, and a body that does not parse is permanent (retrying returns the
same body). Error messages name the provider and the status, never a key or a raw body.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from shared.providers.base import ErrorCategory, ProviderError, provider_error

logger = logging.getLogger(__name__)

MAX_ERROR_DETAIL = 200


def category_for_status(status: int) -> ErrorCategory:
    """Return the error category of an HTTP status (only called for non-2xx)."""
    if status in (401, 403):
        return ErrorCategory.AUTH
    if status == 429:
        return ErrorCategory.RATE_LIMITED
    if status == 408 or status >= 500:
        return ErrorCategory.TRANSIENT
    return ErrorCategory.PERMANENT


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> int | None:
    """Return a ``Retry-After`` header (seconds or HTTP date) as whole seconds, or None."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0, math.ceil(float(text)))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, math.ceil((moment - (now or datetime.now(UTC))).total_seconds()))


ErrorDetail = Callable[[Any], str | None]
"""Returns the provider's own short message from a parsed error body, or None."""

ErrorCategoryOf = Callable[[int, Any], ErrorCategory | None]
"""Returns a provider's own category for a status and parsed error body (None: the status
decides), for a provider whose one status means several things (OpenAI's 429 is also an
exhausted quota, which no wait cures)."""


class JsonHttpClient:
    """A requests session for one provider: timeouts, auth headers, categorised errors.

    ``error_detail`` reads a provider's own error body shape (default: the first
    ``message``, ``detail`` or ``error`` text found); ``error_category`` may overrule the
    status's category from that body.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        error_detail: ErrorDetail | None = None,
        error_category: ErrorCategoryOf | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = timeout
        self._error_detail = error_detail or _find_message
        self._error_category = error_category
        self._local = threading.local()

    def __repr__(self) -> str:
        # The headers hold API keys: keep them out of every repr.
        return f"JsonHttpClient(provider={self.provider!r}, base_url={self.base_url!r})"

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self._headers)
            self._local.session = session
        return session

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Return the 2xx response of ``method path``; raise a categorised ProviderError.

        With ``stream`` the body is read as it arrives (``shared.providers._stream``).
        """
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        try:
            response = self._session().request(
                method,
                url,
                params=params,
                json=json_body,
                data=data,
                headers=dict(headers or {}),
                timeout=self._timeout,
                stream=stream,
            )
        except requests.Timeout as exc:
            raise provider_error(
                self.provider,
                ErrorCategory.TRANSIENT,
                f"{self.provider} did not answer within {self._timeout:g} s",
            ) from exc
        except requests.RequestException as exc:
            raise provider_error(
                self.provider, ErrorCategory.TRANSIENT, f"{self.provider} is unreachable"
            ) from exc
        if response.status_code >= 400:
            raise self.error_for(response)
        return response

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """Return the parsed JSON body of ``GET path``."""
        return self.parse_json(self.request("GET", path, params=params))

    def parse_json(self, response: requests.Response) -> Any:
        """Return the response's JSON; a body that is not JSON is a permanent error."""
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.malformed("response body is not JSON") from exc

    def malformed(self, what: str) -> ProviderError:
        """Return the permanent error for a response we cannot read."""
        return provider_error(
            self.provider,
            ErrorCategory.PERMANENT,
            f"{self.provider} sent a malformed reply: {what}",
        )

    def error_for(self, response: requests.Response) -> ProviderError:
        """Return the categorised error of a non-2xx response."""
        status = response.status_code
        body = _body_of(response)
        category = (
            self._error_category(status, body) if self._error_category else None
        ) or category_for_status(status)
        retry_after = (
            retry_after_seconds(response.headers.get("Retry-After")) if category.retryable else None
        )
        logger.warning(
            "Provider %s answered %s (%s)",
            self.provider,
            status,
            category.value,
            extra={"fields": {"provider": self.provider, "status": status}},
        )
        return provider_error(
            self.provider,
            category,
            f"{self.provider} answered HTTP {status}{_detail(body, self._error_detail)}",
            retry_after=retry_after,
            status=status,
        )

    def close(self) -> None:
        """Close this thread's session."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None


def _body_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(body: Any, error_detail: ErrorDetail) -> str:
    # The provider's own short message helps an operator; clip it and never echo bodies whole.
    if body is None:
        return ""
    message = error_detail(body)
    return f": {message[:MAX_ERROR_DETAIL]}" if message else ""


def _find_message(body: Any) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "Message"):
            if key in body:
                found = _find_message(body[key])
                if found:
                    return found
    return None
