"""The provider voice catalog: every provider's voices, synced daily, filtered and listed."""

from __future__ import annotations

from shared.capability import Capability, Ports
from shared.catalog.deps import CatalogDeps


def _build(ports: Ports) -> CatalogDeps:
    return CatalogDeps(ports.settings, lambda: ports.providers, ports.task_queue)


CAPABILITY: Capability[CatalogDeps] = Capability(
    name="catalog", build=_build, tasks_module="shared.catalog.tasks"
)
