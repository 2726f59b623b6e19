"""The composition root: builds the adapters and hands each capability its dependencies.

The only module that imports every capability. ``CAPABILITY_PACKAGES`` lists them (adding
one is one new package and one line here), imported when first needed (``all_capabilities()``:
account deletion, the task runtime), so a function's first request loads only the
capabilities its own routes use. ``Container`` builds the adapters the settings ask for,
lazily and once per process, and each capability's dependencies from them on first use
(``container.deps(capability)``); its task runtime registers every capability's task
handlers and scheduled jobs. Functions call ``get_container()``; nothing creates a client
at import time (cold starts stay short and tests choose their own settings). Tests call
``reset_container()`` after changing the environment, or build a ``Container`` from
explicit settings.

Dependencies point one way::

    functions/, local/, session/        entry points
      -> shared.http, shared.openapi     the HTTP edge
      -> shared.bootstrap                this module
      -> shared.<capability>             users, voice_models, catalog, synthesis, files, ...
      -> shared.capability, ports        store, blobs, tasks, providers, audio, auth
      -> shared.model, config, errors, log

``python -m shared.bootstrap scheduled-jobs`` prints the Cloud Scheduler jobs (for Terraform).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from shared.auth import TokenVerifier, build_verifier, load_or_create_dev_secret
from shared.capability import AccountPurge, Capability
from shared.config import Settings, get_settings
from shared.log import configure_logging

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent

    from shared.blobs.base import ObjectStorage
    from shared.blobs.events import EventPoster
    from shared.providers.registry import ProviderRegistry
    from shared.store.base import DocumentStore
    from shared.tasks.base import TaskQueue, TaskRegistry
    from shared.tasks.runtime import TaskRuntime
    from shared.tasks.scheduling import ScheduledJob

D = TypeVar("D")
logger = logging.getLogger(__name__)

CAPABILITY_PACKAGES: tuple[str, ...] = (
    "shared.users",
    "shared.voice_models",
    "shared.catalog",
    "shared.synthesis",
    "shared.files",
    "shared.lexicons",
    "shared.samples",
    "shared.precall",
    "shared.sessions",
)
"""Every capability, by the package whose ``CAPABILITY`` declares it."""


@functools.cache
def all_capabilities() -> tuple[Capability[Any], ...]:
    """Return every capability in ``CAPABILITY_PACKAGES``, importing each package once."""
    return tuple(importlib.import_module(name).CAPABILITY for name in CAPABILITY_PACKAGES)


def __getattr__(name: str) -> Any:
    # ``CAPABILITIES`` reads as the constant it was, but is imported only when asked for.
    if name == "CAPABILITIES":
        return all_capabilities()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Container:
    """The adapters one process uses, and each capability's dependencies, built on first use."""

    def __init__(
        self, settings: Settings, capabilities: tuple[Capability[Any], ...] | None = None
    ) -> None:
        self.settings = settings
        self._capabilities = capabilities
        self._lock = threading.Lock()
        self._deps: dict[str, Any] = {}
        # Set by the local gateway: where the embedded object storage posts each
        # object-finalized CloudEvent (None drops it). Production has Eventarc instead.
        self.storage_event_router: Callable[[CloudEvent], str | None] | None = None
        self._storage_events: EventPoster | None = None

    @cached_property
    def store(self) -> DocumentStore:
        """Return the document store chosen by ``settings.store``."""
        with self._lock:
            if self.settings.store == "gcp":
                from google.cloud import firestore

                from shared.store.firestore import FirestoreDocumentStore

                client = firestore.Client(
                    project=self.settings.project, database=self.settings.firestore_database
                )
                return FirestoreDocumentStore(client)
            from shared.store.sqlite import SqliteDocumentStore

            return SqliteDocumentStore(self.settings.sqlite_path)

    @cached_property
    def blobs(self) -> ObjectStorage:
        """Return the object storage chosen by ``settings.blobs``."""
        with self._lock:
            if self.settings.blobs == "gcp":
                from google.cloud import storage

                from shared.blobs.gcs import GcsObjectStorage

                return GcsObjectStorage(
                    storage.Client(project=self.settings.project),
                    max_upload_bytes=self.settings.max_upload_bytes,
                )
            from shared.blobs.events import EventPoster
            from shared.blobs.local import LocalObjectStorage

            if self.storage_event_router is not None:
                self._storage_events = EventPoster(self.storage_event_router)
            return LocalObjectStorage(
                self.settings.blobs_path,
                signing_key=load_or_create_dev_secret(self.settings.blob_signing_key_path),
                public_base_url=self.settings.public_base_url,
                max_upload_bytes=self.settings.max_upload_bytes,
                on_finalized=self._storage_events,
            )

    @cached_property
    def providers(self) -> ProviderRegistry:
        """Return the text-to-speech providers enabled by ``settings.providers``."""
        with self._lock:
            from shared.providers.config import ProvidersConfig
            from shared.providers.registry import ProviderRegistry

            return ProviderRegistry(ProvidersConfig.from_settings(self.settings))

    @cached_property
    def verifier(self) -> TokenVerifier:
        """Return the bearer-token verifier chosen by ``settings.auth_mode``."""
        with self._lock:
            return build_verifier(self.settings)

    @cached_property
    def tasks(self) -> TaskRuntime:
        """Return the task queue with every capability's handlers and scheduled jobs."""
        from shared.tasks.runtime import build_task_runtime

        return build_task_runtime(
            self.settings,
            store=self.store,
            verifier=lambda: self.verifier,
            register_handlers=self._register_task_handlers,
            jobs=self.scheduled_jobs(),
        )

    def task_queue(self) -> TaskQueue:
        """Return the task queue (``Ports``: built with the task runtime on first call)."""
        return self.tasks.queue

    def use_task_runtime(self, runtime: TaskRuntime) -> None:
        """Use ``runtime`` instead of building one (tests wire their own queues)."""
        # Takes the place of the cached property for this instance.
        self.__dict__["tasks"] = runtime
        self._deps.clear()

    def use_provider_registry(self, registry: ProviderRegistry) -> None:
        """Use ``registry`` instead of building one (tests wire fakes in its place)."""
        self.__dict__["providers"] = registry
        self._deps.clear()

    @property
    def capabilities(self) -> tuple[Capability[Any], ...]:
        """Return the capabilities this container serves: every one unless given."""
        if self._capabilities is None:
            self._capabilities = all_capabilities()
        return self._capabilities

    def deps(self, capability: Capability[D]) -> D:
        """Return the dependencies of ``capability``, built from this container once."""
        built = self._deps.get(capability.name)
        if built is None:
            with self._lock:
                built = self._deps.get(capability.name)
            if built is None:
                built = capability.build(self)
                with self._lock:
                    built = self._deps.setdefault(capability.name, built)
        result: D = built
        return result

    def account_purges(self) -> Mapping[str, AccountPurge]:
        """Return every capability's purge of a deleted account's data, by name."""
        purges: dict[str, AccountPurge] = {}
        for capability in self.capabilities:
            for name, purge in capability.purges.items():
                purges[name] = _bound(self, capability, purge)
        return purges

    def scheduled_jobs(self) -> list[ScheduledJob]:
        """Return every capability's scheduled jobs."""
        return [job for cap in self.capabilities for job in cap.scheduled_jobs(self.settings)]

    def _register_task_handlers(self, registry: TaskRegistry) -> None:
        for capability in self.capabilities:
            capability.register_tasks(registry, _deps_of(self, capability))

    def close(self, timeout: float = 10.0) -> bool:
        """Stop the task worker, then release the adapters that were built.

        Running tasks get ``timeout`` seconds to finish; one still running keeps its lease
        and runs again after a restart (nothing is lost, see ``shared.tasks.inprocess``).
        Returns False, releasing nothing the task may still use, when one is still
        running: the process should then exit without waiting for it.
        """
        deadline = time.monotonic() + timeout
        if "tasks" in self.__dict__ and not self.tasks.stop(timeout=timeout):
            logger.warning("Tasks still running after %.1f s: adapters left open", timeout)
            return False
        if "providers" in self.__dict__:
            self.providers.close()
        if "blobs" in self.__dict__:
            self.blobs.close()
        if self._storage_events is not None:
            self._storage_events.close(timeout=max(deadline - time.monotonic(), 0.5))
        if "store" in self.__dict__:
            self.store.close()
        return True


def _deps_of(container: Container, capability: Capability[D]) -> Callable[[], D]:
    return lambda: container.deps(capability)


def _bound(
    container: Container, capability: Capability[D], purge: Callable[[D, str], int]
) -> AccountPurge:
    return lambda user_id: purge(container.deps(capability), user_id)


_container: Container | None = None
_container_lock = threading.Lock()


def get_container() -> Container:
    """Return the process's container, building it (and logging) on first call."""
    global _container  # noqa: PLW0603 - one container per process, by design
    if _container is None:
        with _container_lock:
            if _container is None:
                settings = get_settings()
                configure_logging(settings.log_level)
                _container = Container(settings)
    return _container


def reset_container() -> None:
    """Forget the settings and adapters (tests change the environment between cases)."""
    global _container  # noqa: PLW0603 - see get_container
    with _container_lock:
        if _container is not None:
            _container.close()
        _container = None
        get_settings.cache_clear()


def main(argv: list[str]) -> None:
    """``scheduled-jobs``: print the Cloud Scheduler jobs for the current settings as JSON."""
    if argv != ["scheduled-jobs"]:
        raise SystemExit("usage: python -m shared.bootstrap scheduled-jobs")
    from shared.tasks.runtime import task_settings
    from shared.tasks.scheduling import JobRegistry, scheduled_jobs_manifest

    settings = get_settings()
    options = task_settings(settings)
    manifest = scheduled_jobs_manifest(
        JobRegistry(Container(settings).scheduled_jobs()),
        base_url=options.base_url,
        service_account_email=options.service_account or "",
    )
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
