"""What the catalog's background work uses: settings, and the providers and queue on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from shared.config import Settings

if TYPE_CHECKING:
    from shared.providers.registry import ProviderRegistry
    from shared.tasks.base import TaskQueue


class CatalogDeps(NamedTuple):
    """The catalog's dependencies; ``providers`` and ``queue`` build their port when called."""

    settings: Settings
    providers: Callable[[], ProviderRegistry]
    queue: Callable[[], TaskQueue]
