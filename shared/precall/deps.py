"""What the pre-call use cases need: adapters, settings, the cloner, and who is calling.

``PrecallDeps`` bundles the store, object storage, settings, the task queue, the sample
reader and the cloners, each built on first use from the platform's ``Ports`` (reading
mappings or analytics builds no object storage, providers or audio decoders; the embedded
cloner is the samples capability's voice match, the ElevenLabs one needs its key). ``Caller`` is the
token's user and the account (tenant) it acts for: the ``accountId`` claim, else the user
id; an admin may name any account, anyone else only their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from shared.auth import Principal
from shared.capability import PortsDeps
from shared.errors import AccessDeniedError
from shared.model import utcnow

if TYPE_CHECKING:
    from shared.precall.cloners import VoiceCloner
    from shared.precall.samples import SampleReader


@dataclass(frozen=True)
class Caller:
    """The authenticated caller and the account it acts for."""

    user_id: str
    account_id: str
    is_admin: bool = False

    @classmethod
    def from_principal(cls, principal: Principal) -> Caller:
        """Return the caller a verified token describes."""
        return cls(principal.user_id, principal.account_id, principal.is_admin)

    def account_for(self, given: str | None) -> str:
        """Return the account a request concerns: ``given`` or the caller's own.

        Raises AccessDeniedError when a non-admin names another account.
        """
        if given is None or given == self.account_id:
            return self.account_id
        if self.is_admin:
            return given
        raise AccessDeniedError("You can only act on your own account's pre-call data")


@dataclass
class PrecallDeps(PortsDeps):
    """The adapters, settings and cloners of pre-call cloning, each read from ``ports``."""

    clock: Callable[[], datetime] = utcnow
    _cloners: dict[str, VoiceCloner] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    @cached_property
    def samples(self) -> SampleReader:
        """Return the reader of callers' samples (object storage, S3 or HTTPS URLs)."""
        # Audio decoding and the S3 client factory load with the first sample read.
        from shared.precall.samples import SampleReader, s3_client_factory  # noqa: PLC0415 - above

        return SampleReader(
            store=self.store,
            blobs=self.blobs,
            settings=self.settings,
            s3=s3_client_factory(self.settings),
            max_bytes=self.settings.precall_sample_max_bytes,
        )

    @property
    def cloner(self) -> VoiceCloner:
        """Return the cloner new clones are made with (``VOICE_PRECALL_CLONER``)."""
        # Cloners load the voice match and the speaker encoder: only a call that clones.
        from shared.precall.cloners.build import build_cloner  # noqa: PLC0415

        with self._lock:
            if "" not in self._cloners:
                self._cloners[""] = build_cloner(self.settings, self.providers, self.blobs)
            return self._cloners[""]

    def cloner_for(self, provider: str) -> VoiceCloner:
        """Return a cloner that can delete ``provider``'s voices (those made before a switch).

        Raises ConfigurationError: ElevenLabs voices to delete, but no ElevenLabs key.
        """
        current = self.cloner
        if current.provider == provider:
            return current
        with self._lock:
            if provider not in self._cloners:
                from shared.precall.cloners.elevenlabs import (  # noqa: PLC0415
                    PROVIDER,
                    ElevenLabsCloner,
                )

                if provider != PROVIDER:
                    return current  # nothing provider-side to give back (embedded voices)
                self._cloners[provider] = ElevenLabsCloner.from_settings(
                    self.settings, self.providers
                )
            return self._cloners[provider]

    @property
    def ttl(self) -> timedelta:
        """Return how long a clone is reused (the seed's ``CACHE_TTL``)."""
        return timedelta(seconds=self.settings.precall_cache_ttl_seconds)
