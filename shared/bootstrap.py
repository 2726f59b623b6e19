"""Builds the adapters the settings ask for, lazily and once per process.

Functions call ``get_container()``; nothing creates a client at import time (cold starts
stay short and tests choose their own settings). Tests call ``reset_container()`` after
changing the environment, or build a ``Container`` from explicit settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from shared.auth import TokenVerifier, build_verifier, load_or_create_dev_secret
from shared.blobs.base import ObjectStorage
from shared.config import Settings, get_settings
from shared.log import configure_logging
from shared.store.base import DocumentStore

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent

    from shared.blobs.events import EventPoster
    from shared.providers.registry import ProviderRegistry
    from shared.tasks.runtime import TaskRuntime


class Container:
    """The adapters one process uses, built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
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
        """Return the task queue, its handlers and the scheduled jobs."""
        from shared.tasks.runtime import build_task_runtime

        return build_task_runtime(self)

    def close(self) -> None:
        """Stop the task worker, then release the adapters that were built."""
        if "tasks" in self.__dict__:
            self.tasks.stop(timeout=10)
        if "providers" in self.__dict__:
            self.providers.close()
        if "blobs" in self.__dict__:
            self.blobs.close()
        if self._storage_events is not None:
            self._storage_events.close()
        if "store" in self.__dict__:
            self.store.close()


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
