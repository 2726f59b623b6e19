"""Audio files: stored synthesis results with their checksum, expiry and download count.

A file is owner-only unless ``is_public``; it expires at ``expires_at`` (none means
never), and its checksum is ``sha256:`` followed by 64 hex digits. ``AudioFilePublic`` is
what the API shows: the same names as a synthesis answer (``size``, ``expiresAt``), and
no storage internals.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from shared.audio.formats import OutputFormat, content_type_of
from shared.model import (
    DomainModel,
    NonNegativeCount,
    RequiredId,
    SampleRate,
    Seconds,
    UtcDatetime,
    new_id,
    utcnow,
)

_CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")


def checksum_of(data: bytes) -> str:
    """Return the ``sha256:<hex>`` checksum of ``data``, as ``AudioFile.checksum`` stores it."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _normalize_checksum(value: str) -> str:
    normalised = value.strip().lower()
    if not _CHECKSUM.match(normalised):
        raise ValueError("checksum must be 'sha256:' followed by 64 hex digits")
    return normalised


Checksum = Annotated[str, AfterValidator(_normalize_checksum)]


class AudioFile(DomainModel):
    """A stored synthesis result; owner-only unless ``is_public``."""

    id: RequiredId = Field(default_factory=new_id)
    user_id: RequiredId
    synthesis_job_id: RequiredId
    file_path: RequiredId
    filename: Annotated[str, Field(min_length=1, max_length=255)]
    format: OutputFormat
    file_size: NonNegativeCount
    duration: Seconds
    sample_rate: SampleRate
    checksum: Checksum | None = None
    is_public: bool = False
    download_count: NonNegativeCount = 0
    created_at: UtcDatetime = Field(default_factory=utcnow)
    expires_at: UtcDatetime | None = None
    last_accessed_at: UtcDatetime | None = None

    @property
    def content_type(self) -> str:
        """Return the HTTP Content-Type to serve the file with."""
        return content_type_of(self.format, self.sample_rate)

    def is_expired(self, now: datetime) -> bool:
        """Return whether the file's expiry has passed at ``now`` (never, without one)."""
        return self.expires_at is not None and now >= self.expires_at


class AudioFilePublic(DomainModel):
    """An audio file as its owner sees it: ``size`` in bytes, ``expiresAt`` its retention."""

    id: str
    synthesis_job_id: str
    filename: str
    format: OutputFormat
    content_type: str
    size: NonNegativeCount
    duration: Seconds
    sample_rate: SampleRate
    checksum: str | None = None
    is_public: bool = False
    download_count: NonNegativeCount = 0
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = None
    last_accessed_at: UtcDatetime | None = None

    @classmethod
    def from_entity(cls, audio_file: AudioFile) -> AudioFilePublic:
        """Return the public view of ``audio_file``."""
        return cls(
            id=audio_file.id,
            synthesis_job_id=audio_file.synthesis_job_id,
            filename=audio_file.filename,
            format=audio_file.format,
            content_type=audio_file.content_type,
            size=audio_file.file_size,
            duration=audio_file.duration,
            sample_rate=audio_file.sample_rate,
            checksum=audio_file.checksum,
            is_public=audio_file.is_public,
            download_count=audio_file.download_count,
            created_at=audio_file.created_at,
            expires_at=audio_file.expires_at,
            last_accessed_at=audio_file.last_accessed_at,
        )
