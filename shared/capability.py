"""How a capability declares itself to the composition root.

A capability (``shared/users``, ``shared/voice_models``, ...) is one package. Its
``__init__.py`` exports a ``Capability``: how to build its dependencies from the platform's
``Ports`` (a small dataclass of the ports its use cases use, never the whole container),
the module holding its background work (``register_tasks(registry, deps)`` and
``scheduled_jobs(settings)``), and what it stores per user (``purges``, run with its
dependencies when an account is deleted). ``shared.bootstrap.CAPABILITY_PACKAGES`` lists
them: adding a capability is one new package and one line there. Nothing here knows any
capability.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

from shared.store.base import DocumentStore, Query

if TYPE_CHECKING:
    from shared.blobs.base import ObjectStorage
    from shared.config import Settings
    from shared.providers.registry import ProviderRegistry
    from shared.tasks.base import TaskQueue, TaskRegistry
    from shared.tasks.scheduling import ScheduledJob

D = TypeVar("D")

AccountPurge = Callable[[str], int]
"""Deletes everything of one kind a user owns; returns how many records it removed."""


class Ports(Protocol):
    """What the composition root offers a capability to build its dependencies from."""

    @property
    def settings(self) -> Settings:
        """Return the process's settings."""

    @property
    def store(self) -> DocumentStore:
        """Return the document store."""

    @property
    def blobs(self) -> ObjectStorage:
        """Return the object storage."""

    @property
    def providers(self) -> ProviderRegistry:
        """Return the text-to-speech providers."""

    def task_queue(self) -> TaskQueue:
        """Return the task queue (built on first call: cold starts rarely need it)."""


@dataclass
class PortsDeps:
    """The base of a capability's dependencies: the platform's ports, each read on first use.

    A capability's own class adds what its use cases need beyond the ports (caches,
    buckets, cloners), so a request builds only the adapters it touches: listing from the
    store never builds object storage (a cloud client in production) or the providers.
    """

    ports: Ports

    @classmethod
    def from_ports(cls, ports: Ports) -> Self:
        """Return the dependencies built from the platform's ports."""
        return cls(ports)

    @property
    def store(self) -> DocumentStore:
        """Return the document store."""
        return self.ports.store

    @property
    def blobs(self) -> ObjectStorage:
        """Return the object storage (built on first use)."""
        return self.ports.blobs

    @property
    def providers(self) -> ProviderRegistry:
        """Return the text-to-speech providers (built on first use)."""
        return self.ports.providers

    @property
    def settings(self) -> Settings:
        """Return the settings."""
        return self.ports.settings

    def task_queue(self) -> TaskQueue:
        """Return the task queue (built on first call)."""
        return self.ports.task_queue()


@dataclass(frozen=True)
class Capability(Generic[D]):
    """One capability: its dependencies, its background work and its per-user data."""

    name: str
    build: Callable[[Ports], D]
    # A module with ``register_tasks(registry, deps)`` and ``scheduled_jobs(settings)``,
    # imported only by processes that run or enqueue tasks.
    tasks_module: str | None = None
    # Everything the capability stores per user, by name: each deletes the documents and
    # objects of one kind that a user owns or appears in (run when an account is deleted).
    purges: Mapping[str, Callable[[D, str], int]] = field(default_factory=dict)

    def register_tasks(self, registry: TaskRegistry, deps: Callable[[], D]) -> None:
        """Register the capability's task handlers; ``deps`` builds its dependencies lazily."""
        if self.tasks_module is not None:
            importlib.import_module(self.tasks_module).register_tasks(registry, deps)

    def scheduled_jobs(self, settings: Settings) -> Sequence[ScheduledJob]:
        """Return the capability's scheduled jobs."""
        if self.tasks_module is None:
            return ()
        jobs: Sequence[ScheduledJob] = importlib.import_module(self.tasks_module).scheduled_jobs(
            settings
        )
        return jobs


def no_dependencies(ports: Ports) -> None:
    """Build nothing: for capabilities whose use cases take their ports as arguments."""
    del ports


def delete_owned(
    store: DocumentStore, collection: str, user_id: str, field: str = "user_id"
) -> int:
    """Delete every document of ``collection`` whose ``field`` is ``user_id``; return how many."""
    return store.delete_matching(Query(collection).where(field, "==", user_id))
