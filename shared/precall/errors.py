"""What goes wrong in pre-call cloning, each error named after its condition.

Every class derives from a platform error, so ``shared.http``'s one table gives it its
status (400 bad input, 403, 404, 409) and the body is the platform's; the codes tell the
conditions apart. ``CloneExpiredError`` has its own status there (410: the voice existed
and is gone for good). A ``sampleId`` that names no sample of the caller's, or one not
ready, is the samples capability's own error (404 ``SAMPLE_NOT_FOUND``, 409
``SAMPLE_NOT_READY``), as training answers for the same sample.
"""

from __future__ import annotations

from shared.errors import (
    ConflictError,
    DocumentAlreadyExistsError,
    GoneError,
    InvalidRequestError,
    InvalidStateTransitionError,
    NotFoundError,
)
from shared.samples.errors import SampleNotFoundError, SampleNotReadyError


class CallerMappingNotFoundError(NotFoundError):
    code = "CALLER_MAPPING_NOT_FOUND"
    default_message = "No caller mapping with this id in your account"


class CallerIdTakenError(DocumentAlreadyExistsError):
    code = "CALLER_ID_TAKEN"
    default_message = "This caller number already has a live mapping in your account"


class UnknownCallerError(NotFoundError):
    code = "UNKNOWN_CALLER"
    default_message = "No live caller mapping for this caller number"


class CallIdConflictError(DocumentAlreadyExistsError):
    code = "CALL_ID_CONFLICT"
    default_message = "This greeting call id is already logged for another caller"


class CallNotFoundError(NotFoundError):
    code = "CALL_NOT_FOUND"
    default_message = "No call with this id in your account"


class CallAlreadyEndedError(InvalidStateTransitionError):
    code = "CALL_ALREADY_ENDED"
    default_message = "The call has already ended"


class CloneNotReadyError(InvalidStateTransitionError):
    code = "CLONE_NOT_READY"
    default_message = "The call's clone is not ready"


class CloneNotFoundError(NotFoundError):
    code = "CLONE_NOT_FOUND"
    default_message = "No cloned voice with this id in your account"


class CloneExpiredError(GoneError):
    code = "CLONE_EXPIRED"
    default_message = "The cloned voice has expired; the caller's next call clones it again"


class PrecallSampleNotFoundError(NotFoundError):
    code = "PRECALL_SAMPLE_NOT_FOUND"
    default_message = "No voice sample with this name in your account"


class PrecallSampleInUseError(ConflictError):
    code = "PRECALL_SAMPLE_IN_USE"
    default_message = (
        "Live caller mappings use this voice sample; delete them or point them at another "
        "sample first"
    )


class PrecallSampleBeingDeletedError(ConflictError):
    code = "PRECALL_SAMPLE_BEING_DELETED"
    default_message = "The voice sample is being deleted; upload it again once its deletion is done"


class SampleLocationNotAllowedError(InvalidRequestError):
    code = "SAMPLE_LOCATION_NOT_ALLOWED"
    default_message = "The voice sample must be in an allowed bucket, under your account"


class SampleUnreachableError(InvalidRequestError):
    code = "SAMPLE_UNREACHABLE"
    default_message = "The voice sample cannot be read"
    # True when the store holding it did not answer (a later attempt may read it).
    retryable = False


class SampleNotAudioError(InvalidRequestError):
    code = "SAMPLE_NOT_AUDIO"
    default_message = "The voice sample is not wav, mp3, flac or ogg audio"


class SampleUnusableError(InvalidRequestError):
    code = "SAMPLE_UNUSABLE"
    default_message = "The voice sample is too short, too long or too poor to clone from"


SampleError = (
    SampleLocationNotAllowedError,
    SampleUnreachableError,
    SampleNotAudioError,
    SampleUnusableError,
    SampleNotFoundError,
    SampleNotReadyError,
)
"""The errors that say a mapping's sample cannot be cloned from (a failed clone's reason)."""
