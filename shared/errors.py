"""The platform's errors: one root, a base class per kind of failure, subclasses per condition.

The base classes below the root name a kind of failure an API client can act on (invalid
request, not found, conflict, rate limited, ...); ``shared.http``'s one status table maps
each base class to its HTTP status, so a capability's own error (``VoiceNotFoundError``)
gets its status by subclassing a base (``NotFoundError``) and the HTTP edge never imports
a capability. Each class carries the error code API clients see (such as
``VOICE_MODEL_NOT_FOUND``). A message is safe to show to the caller: put internals in
logs, never in an error message. A value the caller sent (an id in a path) is repeated
through ``echoed``, so a 3,000-character id does not come back whole, nor a lone
surrogate or NUL in it as such; a field is named through ``field_path``, whose keys (the
caller's own text too) are shown the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

ECHO_LIMIT = 64
"""How many characters of a value the caller sent a message repeats (our ids have 32)."""


def echoed(value: object, limit: int = ECHO_LIMIT) -> str:
    """Return ``value`` as a message repeats it: Unicode text, whole or cut at ``limit``.

    A value longer than ``limit`` characters is cut there and ends with an ellipsis. A lone
    surrogate (a JSON escape such as ``"\\ud800"``, which is no Unicode character) and a
    NUL (which ends a C string) are shown by their JSON escapes, so the message can be
    written as UTF-8 anywhere (a log line, another system's API); a surrogate pair is the
    character it names, and stays.
    """
    text = str(value)
    shown = text if len(text) <= limit else text[:limit] + "\u2026"
    return shown.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def echoed_key(key: str) -> str:
    """Return ``key``, an object key the caller sent, as a message names it (``echoed``)."""
    return echoed(key)


def field_path(location: Iterable[int | str]) -> str:
    """Return a field's location as a message names it: ``pipeline.customProcessors.0.order``.

    Names, keys and list indices are joined with dots; each key is shown by ``echoed``.
    """
    return ".".join(str(part) if isinstance(part, int) else echoed(part) for part in location)


class PlatformError(Exception):
    """Root of every error the platform raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.retry_after = retry_after
        super().__init__(self.message)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the error's answer carries besides its body (none by default)."""
        return {}


class InvalidRequestError(PlatformError):
    code = "VALIDATION_ERROR"
    default_message = "Invalid request parameters"


class UnauthenticatedError(PlatformError):
    code = "UNAUTHENTICATED"
    default_message = "Missing or invalid credentials"


class AccessDeniedError(PlatformError):
    code = "ACCESS_DENIED"
    default_message = "Access denied"


class NotFoundError(PlatformError):
    code = "NOT_FOUND"
    default_message = "Not found"


class MethodNotAllowedError(PlatformError):
    code = "METHOD_NOT_ALLOWED"
    default_message = "Method not allowed"


class NotAcceptableError(PlatformError):
    code = "NOT_ACCEPTABLE"
    default_message = "None of the media types the Accept header names can be produced"


class ConflictError(PlatformError):
    code = "CONFLICT"
    default_message = "The request conflicts with the current state"


class PreconditionFailedError(PlatformError):
    """A conditional write found another version than the one it was told to expect."""

    code = "PRECONDITION_FAILED"
    default_message = "The object changed since it was read"


class UnprocessableError(PlatformError):
    """The request is well formed but names something this deployment cannot do."""

    code = "UNPROCESSABLE"
    default_message = "The request cannot be carried out here"


class BadGatewayError(PlatformError):
    """A service the platform depends on refused or failed the request."""

    code = "BAD_GATEWAY"
    default_message = "An upstream service failed"


class PayloadTooLargeError(PlatformError):
    code = "PAYLOAD_TOO_LARGE"
    default_message = "Request body too large"


class UnsupportedMediaTypeError(PlatformError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Content-Type must be application/json"


class GoneError(PlatformError):
    """What the request names existed, but is gone for good (an expired clone, say)."""

    code = "GONE"
    default_message = "It is gone"


class RangeNotSatisfiableError(PlatformError):
    code = "RANGE_NOT_SATISFIABLE"
    default_message = "The requested byte range is not satisfiable"

    def __init__(self, message: str | None = None, *, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        # RFC 9110 15.5.17: a 416 names the representation's length, so a client can retry.
        return {} if self.size is None else {"Content-Range": f"bytes */{self.size}"}


class RateLimitedError(PlatformError):
    code = "RATE_LIMITED"
    default_message = "Too many requests"


class ServiceUnavailableError(PlatformError):
    code = "SERVICE_UNAVAILABLE"
    default_message = "Service temporarily unavailable"


# -- conditions --------------------------------------------------------------------------------


class UserNotFoundError(NotFoundError):
    code = "USER_NOT_FOUND"
    default_message = "User not found"


class UserAlreadyExistsError(ConflictError):
    code = "USER_ALREADY_EXISTS"
    default_message = "User already registered"


class EmailAlreadyRegisteredError(ConflictError):
    code = "EMAIL_ALREADY_REGISTERED"
    default_message = "Email already registered"


class VoiceModelNotFoundError(NotFoundError):
    code = "VOICE_MODEL_NOT_FOUND"
    default_message = "Voice model not found or access denied"


class DocumentNotFoundError(NotFoundError):
    code = "DOCUMENT_NOT_FOUND"
    default_message = "Document not found"


class DocumentAlreadyExistsError(ConflictError):
    code = "DOCUMENT_ALREADY_EXISTS"
    default_message = "Document already exists"


class TransactionContentionError(ServiceUnavailableError):
    code = "TRANSACTION_CONTENTION"
    default_message = "Too much contention on the data; try again"


class InvalidStateTransitionError(ConflictError):
    code = "INVALID_STATE_TRANSITION"
    default_message = "Illegal state transition"


class ConfigurationError(PlatformError):
    code = "CONFIGURATION_ERROR"
    default_message = "The platform is misconfigured"


# -- voice models (seed 001) -----------------------------------------------------------------


class VoiceModelAlreadyActiveError(ConflictError):
    code = "VOICE_MODEL_ALREADY_ACTIVE"
    default_message = "Voice model is already active"


class VoiceModelNotActiveError(ConflictError):
    code = "VOICE_MODEL_NOT_ACTIVE"
    default_message = "Voice model is not active"


class VoiceModelDeletedError(ConflictError):
    code = "VOICE_MODEL_DELETED"
    default_message = "Voice model is deleted"


class VoiceModelFailedError(ConflictError):
    code = "VOICE_MODEL_FAILED"
    default_message = "Voice model training failed; it cannot be activated"


class NoQualifyingVoiceModelError(NotFoundError):
    code = "NO_QUALIFYING_VOICE_MODEL"
    default_message = "No voice model meets the criteria"


class InvalidModelPathError(InvalidRequestError):
    code = "INVALID_MODEL_PATH"
    default_message = "modelPath must name an object under models/{userId}/"


class InvalidBackupPathError(InvalidRequestError):
    code = "INVALID_BACKUP_PATH"
    default_message = "backupPath must name a backup under backups/{userId}/"


class BackupNotFoundError(NotFoundError):
    code = "BACKUP_NOT_FOUND"
    default_message = "Backup not found"


# -- synthesis (seed 002) --------------------------------------------------------------------


class TextTooLongError(PayloadTooLargeError):
    code = "TEXT_TOO_LONG"
    default_message = "Text exceeds the synthesis limit"


class AudioTooLongError(PayloadTooLargeError):
    code = "AUDIO_TOO_LONG"
    default_message = "The request would make more audio than allowed"


class UnsupportedAudioFormatError(UnsupportedMediaTypeError):
    code = "UNSUPPORTED_AUDIO_FORMAT"
    default_message = "The audio format is not supported"
    # The pydantic error type request models raise for it (``shared.http.parse`` maps it).
    validation_type = "unsupported_audio_format"


class ProviderNotConfiguredError(UnprocessableError):
    code = "PROVIDER_NOT_CONFIGURED"
    default_message = "The voice's provider is not configured in this deployment"


class VoiceModelUnusableError(UnprocessableError):
    code = "VOICE_MODEL_UNUSABLE"
    default_message = "The voice model names nothing this deployment can speak"


class VoiceRequiredError(InvalidRequestError):
    code = "VOICE_REQUIRED"
    default_message = "Name a voice, or activate a voice model"


class VoiceModelNotReadyError(ConflictError):
    code = "VOICE_MODEL_NOT_READY"
    default_message = "The voice model has not finished training"


class SynthesisJobNotFoundError(NotFoundError):
    code = "SYNTHESIS_JOB_NOT_FOUND"
    default_message = "Synthesis job not found"


class AudioFileNotFoundError(NotFoundError):
    code = "AUDIO_FILE_NOT_FOUND"
    default_message = "Audio file not found"


def error_body(error: PlatformError, request_id: str) -> dict[str, Any]:
    """Return the platform's error body: ``{error, code, timestamp, requestId[, details]}``.

    Every HTTP API of the platform answers refusals with it (``shared.http`` for the
    functions, ``session.http_errors`` for the session service).
    """
    body: dict[str, Any] = {
        "error": error.message,
        "code": error.code,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "requestId": request_id,
    }
    if error.details:
        body["details"] = error.details
    return body
