"""Where a caller's voice sample is, whether this account may use it, and whether it is audio.

A mapping names its sample in one of three ways:

- ``gs://{bucket}/{object}``: an object in our storage (the object storage port, so the
  embedded folder locally and Cloud Storage in production);
- ``s3://{bucket}/{key}``: an object in Amazon S3, read with boto3
  (``VOICE_PRECALL_S3_*``; the endpoint setting points it at any S3-compatible service);
- ``sampleId``: a sample of the samples capability, read through its own lookup
  (``shared.samples.cloning.sample_for_cloning``), which also hands over what its
  processing measured (the speaker embedding, pitch and rate the voice match aims at).

A URL is allowed only under an allowed location of the account: in our samples bucket,
``precall/{accountId}/`` and ``samples/{accountId}/`` (the samples capability's folder of a
user whose id is the account); plus each entry of ``VOICE_PRECALL_SAMPLE_BUCKETS``, a
``gs://`` or ``s3://`` bucket with an optional prefix in which ``{account}`` stands for the
account id (``s3://acme-recordings/{account}/``). An entry without ``{account}`` lets every
account read that bucket: list such buckets only for single-tenant deployments.

A ``sampleId`` is the voice of a user, and samples belong to users, not accounts: a
mapping may name a sample owned by the user who sets it (the token's user) or by the user
whose id is the account (a personal account: no ``accountId`` claim). The owner found is
kept on the mapping (``sampleOwnerId``), and the clone reads the sample as that owner's
only. Anyone else's sample, public or not, is refused exactly as a missing one (404
``SAMPLE_NOT_FOUND``); a sample awaiting its upload, still processing or failed is 409
``SAMPLE_NOT_READY`` saying which.

A sample is usable when it decodes (wav, mp3, flac, ogg: ``shared.audio.decoding``), lasts
between ``VOICE_PRECALL_SAMPLE_MIN_SECONDS`` and ``_MAX_SECONDS``, holds speech
(``shared.audio.quality``: not silence or noise alone), and is at most
``VOICE_PRECALL_SAMPLE_MAX_BYTES``. The quality score is measured but does not refuse a
sample: telephone recordings (8 kHz) score low on bandwidth yet clone fine. A sample of the
samples capability passed processing, so its stored facts stand in for decoding it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.config import Settings
from shared.errors import NotFoundError
from shared.model import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from shared.precall.errors import (
    SampleLocationNotAllowedError,
    SampleNotAudioError,
    SampleUnreachableError,
    SampleUnusableError,
)
from shared.store.base import DocumentStore

if TYPE_CHECKING:
    from shared.blobs.base import ObjectStorage
    from shared.samples.cloning import ClonableSample

logger = logging.getLogger(__name__)

ACCOUNT_PLACEHOLDER = "{account}"
OUR_SAMPLE_PREFIXES = ("precall/{account}/", "samples/{account}/")
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg"}
# A URL names no language: its recording is matched against this language's voices.
URL_SAMPLE_LANGUAGE = "en-US"


@dataclass(frozen=True)
class SampleLocation:
    """A sample URL taken apart: ``gs`` (our storage) or ``s3``, its bucket and object."""

    scheme: Literal["gs", "s3"]
    bucket: str
    name: str

    @property
    def url(self) -> str:
        """Return the URL the location came from."""
        return f"{self.scheme}://{self.bucket}/{self.name}"


def parse_location(url: str) -> SampleLocation:
    """Return the location of a ``gs://`` or ``s3://`` URL.

    Raises SampleLocationNotAllowedError: another scheme, no bucket or no object name, or a
    ``.``/``..`` segment.
    """
    scheme, separator, rest = url.partition("://")
    bucket, slash, name = rest.partition("/")
    if (
        not separator
        or scheme not in ("gs", "s3")
        or not bucket
        or not slash
        or not name
        or any(part in (".", "..", "") for part in name.split("/"))
    ):
        raise SampleLocationNotAllowedError(
            "voiceSampleUrl must be gs://bucket/object or s3://bucket/key"
        )
    return SampleLocation(scheme, bucket, name)  # type: ignore[arg-type]  # checked above


def allowed_prefixes(settings: Settings, account_id: str) -> list[str]:
    """Return the URL prefixes ``account_id`` may name samples under."""
    entries = [f"gs://{settings.samples_bucket}/{prefix}" for prefix in OUR_SAMPLE_PREFIXES]
    entries += [entry.strip() for entry in settings.precall_sample_buckets.split(",")]
    prefixes = []
    for entry in entries:
        if not entry:
            continue
        prefix = entry.replace(ACCOUNT_PLACEHOLDER, account_id)
        rest = prefix.partition("://")[2]
        prefixes.append(prefix if "/" in rest else prefix + "/")
    return prefixes


def check_allowed(settings: Settings, account_id: str, url: str) -> SampleLocation:
    """Return the location of ``url`` if ``account_id`` may read it.

    Raises SampleLocationNotAllowedError.
    """
    location = parse_location(url)
    if "/" in account_id or not any(
        location.url.startswith(prefix) for prefix in allowed_prefixes(settings, account_id)
    ):
        raise SampleLocationNotAllowedError(
            f"{location.scheme}://{location.bucket}/... is not an allowed sample location "
            f"for this account; use gs://{settings.samples_bucket}/precall/{account_id}/..."
        )
    return location


def sample_owners(user_id: str, account_id: str) -> set[str]:
    """Return whose samples a user acting for an account may map: their own, the account's."""
    return {user_id, account_id}


@dataclass(frozen=True)
class SampleAudio:
    """A mapping's sample as read: its bytes, and the facts of a samples-capability sample."""

    data: bytes
    stored: ClonableSample | None = None

    @property
    def language(self) -> str:
        """Return the language the voice speaks: the stored sample's, else en-US."""
        return self.stored.language if self.stored is not None else URL_SAMPLE_LANGUAGE


S3ClientFactory = Callable[[], Any]


def s3_client_factory(settings: Settings) -> S3ClientFactory:
    """Return a function building the boto3 S3 client once, on first use."""
    built: list[Any] = []
    lock = threading.Lock()

    def client() -> Any:
        with lock:
            if not built:
                # boto3 ships no type hints; only processes reading S3 samples load it.
                import boto3  # type: ignore[import-untyped]  # noqa: PLC0415
                from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

                keys: dict[str, str] = {}
                if settings.precall_s3_access_key_id and settings.precall_s3_secret_access_key:
                    keys = {
                        "aws_access_key_id": settings.precall_s3_access_key_id.get_secret_value(),
                        "aws_secret_access_key": (
                            settings.precall_s3_secret_access_key.get_secret_value()
                        ),
                    }
                built.append(
                    boto3.client(
                        "s3",
                        region_name=settings.precall_s3_region,
                        endpoint_url=settings.precall_s3_endpoint,
                        config=Config(
                            connect_timeout=5, read_timeout=15, retries={"max_attempts": 2}
                        ),
                        **keys,
                    )
                )
            return built[0]

    return client


@dataclass
class SampleReader:
    """Reads a mapping's sample from wherever it is, within the size limit."""

    store: DocumentStore
    blobs: ObjectStorage
    settings: Settings
    s3: S3ClientFactory
    max_bytes: int

    def read(
        self, url: str | None, sample_id: str | None, *, owners: Collection[str]
    ) -> SampleAudio:
        """Return the sample: at ``url``, or the sample ``sample_id`` of one of ``owners``.

        Raises SampleUnreachableError (``retryable`` set when S3 itself was unreachable),
        SampleUnusableError (larger than the limit), SampleNotFoundError or
        SampleNotReadyError (a ``sample_id``; see the module docstring).
        """
        if sample_id is not None:
            # The voice library's sample path (speaker encoder, trainer) loads only when a
            # call names a stored sample: a cold start serving anything else never needs it.
            from shared.samples.cloning import sample_for_cloning  # noqa: PLC0415

            stored = sample_for_cloning(
                self.store, self.blobs, self.settings, sample_id, owners=owners
            )
            self._check_size(stored.size_bytes)
            data = stored.audio()
            self._check_size(len(data))
            return SampleAudio(data, stored)
        location = parse_location(url or "")
        data = self._read_s3(location) if location.scheme == "s3" else self._read_ours(location)
        self._check_size(len(data))
        return SampleAudio(data)

    def _read_ours(self, location: SampleLocation) -> bytes:
        try:
            info = self.blobs.info(location.bucket, location.name)
            self._check_size(info.size)
            return self.blobs.get(location.bucket, location.name)
        except NotFoundError as exc:
            raise SampleUnreachableError(f"No object at {location.url}") from exc

    def _read_s3(self, location: SampleLocation) -> bytes:
        # botocore ships no type hints; imported on first S3 read for cold starts.
        from botocore.exceptions import (  # type: ignore[import-untyped]  # noqa: PLC0415
            BotoCoreError,
            ClientError,
        )

        try:
            client = self.s3()
            head = client.head_object(Bucket=location.bucket, Key=location.name)
            self._check_size(int(head.get("ContentLength", 0)))
            response = client.get_object(Bucket=location.bucket, Key=location.name)
            data: bytes = response["Body"].read(self.max_bytes + 1)
            return data
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            reason = {
                "404": "does not exist",
                "NoSuchKey": "does not exist",
                "NoSuchBucket": "is in a bucket that does not exist",
                "403": "is not readable with our credentials",
                "AccessDenied": "is not readable with our credentials",
            }.get(code, f"could not be read (S3 answered {status or code})")
            error = SampleUnreachableError(f"The S3 object {location.url} {reason}")
            error.retryable = isinstance(status, int) and status >= 500
            raise error from exc
        except BotoCoreError as exc:
            logger.info("S3 unreachable reading a sample: %s", type(exc).__name__)
            error = SampleUnreachableError(f"S3 is unreachable for {location.url}")
            error.retryable = True
            raise error from exc

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise SampleUnusableError(
                f"The voice sample is {size} bytes; at most {self.max_bytes} are accepted"
            )


@dataclass(frozen=True)
class CheckedSample:
    """A sample that passed: its format, length, size and measured quality (0-10)."""

    format: str
    duration_seconds: float
    size_bytes: int
    quality_score: float

    @property
    def content_type(self) -> str:
        """Return the MIME type of its format."""
        return CONTENT_TYPES[self.format]


def check_read(sample: SampleAudio, settings: Settings) -> CheckedSample:
    """Return what a read sample is if it can be cloned from (see ``check_sample``).

    A samples-capability sample was decoded and checked for speech by its processing: its
    stored facts are checked against the pre-call limits instead of decoding it again.
    """
    stored = sample.stored
    if stored is None:
        return check_sample(sample.data, settings)
    _check_duration(stored.duration_seconds, settings)
    return CheckedSample(
        stored.format.value, stored.duration_seconds, len(sample.data), stored.quality_score
    )


def check_sample(data: bytes, settings: Settings) -> CheckedSample:
    """Return what ``data`` is if it can be cloned from.

    Raises SampleNotAudioError (not wav/mp3/flac/ogg, or damaged) or SampleUnusableError
    (a sample rate outside 8-192 kHz, too short, too long, no speech).
    """
    # Decoding and the quality measures load with a sample checked, not with every module
    # that reads mappings (their use of numpy is lazy already; these are the modules).
    from shared.audio.decoding import (  # noqa: PLC0415 - see above
        CorruptAudioError,
        UnsupportedAudioFormatError,
        decode,
    )
    from shared.audio.quality import assess_quality  # noqa: PLC0415 - see above

    try:
        audio = decode(data)
    except UnsupportedAudioFormatError as exc:
        raise SampleNotAudioError() from exc
    except CorruptAudioError as exc:
        raise SampleNotAudioError(f"The voice sample cannot be decoded: {exc.message}") from exc
    if not MIN_SAMPLE_RATE <= audio.sample_rate <= MAX_SAMPLE_RATE:
        raise SampleUnusableError(
            f"The voice sample is recorded at {audio.sample_rate} Hz; a sample must have "
            f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"
        )
    seconds = audio.duration_seconds
    _check_duration(seconds, settings)
    quality = assess_quality(audio.samples, audio.sample_rate)
    if "no_speech" in quality.problems or quality.components.get("silence", 0.0) == 0.0:
        raise SampleUnusableError("The voice sample holds no speech (silence or noise only)")
    return CheckedSample(audio.format.value, seconds, len(data), quality.score)


def _check_duration(seconds: float, settings: Settings) -> None:
    if seconds < settings.precall_sample_min_seconds:
        raise SampleUnusableError(
            f"The voice sample lasts {seconds:.2f} s; at least "
            f"{settings.precall_sample_min_seconds:g} s of speech is needed"
        )
    if seconds > settings.precall_sample_max_seconds:
        raise SampleUnusableError(
            f"The voice sample lasts {seconds:.0f} s; at most "
            f"{settings.precall_sample_max_seconds:g} s is accepted"
        )
