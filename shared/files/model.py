"""Audio files: stored synthesis results with their checksum, expiry and download count.

A file is owner-only unless ``is_public``; it expires at ``expires_at`` (none means
never), and its checksum is ``sha256:`` followed by 64 hex digits.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated, Self

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
    with_changes,
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

    def downloaded(self, now: datetime) -> Self:
        """Return the file with one more download, last accessed at ``now``."""
        return with_changes(self, download_count=self.download_count + 1, last_accessed_at=now)
