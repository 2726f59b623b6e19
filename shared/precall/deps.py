"""What the pre-call use cases need: adapters, settings, the cloner, and who is calling.

``PrecallDeps`` bundles the store, object storage, settings, the task queue (built on first
use), the sample reader and the cloners (built on first use: the embedded one is the
samples capability's voice match, the ElevenLabs one needs its key). ``Caller`` is the
token's user and the account (tenant) it acts for: the ``accountId`` claim, else the user
id; an admin may name any account, anyone else only their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.auth import Principal
from shared.config import Settings
from shared.errors import AccessDeniedError
from shared.model import utcnow
from shared.precall.samples import SampleReader, s3_client_factory
from shared.store.base import DocumentStore

if TYPE_CHECKING:
    from shared.blobs.base import ObjectStorage
    from shared.capability import Ports
    from shared.precall.cloners import VoiceCloner
    from shared.providers.registry import ProviderRegistry
    from shared.tasks.base import TaskQueue


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
class PrecallDeps:
    """The adapters, settings and cloners of pre-call cloning."""

    store: DocumentStore
    blobs: ObjectStorage
    settings: Settings
    providers: ProviderRegistry
    queue: Callable[[], TaskQueue]
    clock: Callable[[], datetime] = utcnow
    samples: SampleReader = field(init=False)
    _cloners: dict[str, VoiceCloner] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.samples = SampleReader(
            store=self.store,
            blobs=self.blobs,
            settings=self.settings,
            s3=s3_client_factory(self.settings),
            max_bytes=self.settings.precall_sample_max_bytes,
        )

    @classmethod
    def from_ports(cls, ports: Ports) -> PrecallDeps:
        """Return the dependencies built from the platform's ports."""
        return cls(ports.store, ports.blobs, ports.settings, ports.providers, ports.task_queue)

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

    def task_queue(self) -> TaskQueue:
        """Return the task queue (clones and notifications run as tasks)."""
        return self.queue()
