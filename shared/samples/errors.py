"""The errors of voice samples and training, each under the platform error its status follows.

Their HTTP status comes from ``shared.http.ERROR_STATUS`` through the base class: a sample
that is missing or not the caller's is 404, a sample too short, audio whose sample rate or
channels a sample cannot have, or a malformed upload 400, too long or too large 413, a
sample not processed yet 409, a provider without a trainer here 422.
"""

from __future__ import annotations

from shared.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)


class SampleNotFoundError(NotFoundError):
    code = "SAMPLE_NOT_FOUND"
    default_message = "Voice sample not found or access denied"


class SampleNotReadyError(ConflictError):
    code = "SAMPLE_NOT_READY"
    default_message = "The voice sample has not been processed yet"


class SampleTooShortError(InvalidRequestError):
    code = "SAMPLE_TOO_SHORT"
    default_message = "The voice sample is too short"


class SampleAudioUnsupportedError(InvalidRequestError):
    code = "SAMPLE_AUDIO_UNSUPPORTED"
    default_message = "The audio's sample rate or channels are outside what a sample may have"


class SampleTooLongError(PayloadTooLargeError):
    code = "SAMPLE_TOO_LONG"
    default_message = "The voice sample is too long"


class SampleTooLargeError(PayloadTooLargeError):
    code = "SAMPLE_TOO_LARGE"
    default_message = "The voice sample file is too large"


class UnsupportedSampleTypeError(UnsupportedMediaTypeError):
    code = "UNSUPPORTED_AUDIO_FORMAT"
    default_message = "Audio must be wav, mp3, flac or ogg"


class InvalidUploadError(InvalidRequestError):
    code = "INVALID_UPLOAD"
    default_message = "Send the audio as multipart/form-data in the field 'file'"


class TrainerNotAvailableError(UnprocessableError):
    code = "TRAINER_NOT_AVAILABLE"
    default_message = "No trainer for this provider"
