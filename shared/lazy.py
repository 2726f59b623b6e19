"""Imports deferred to first use, so a cold start loads only what its request needs.

A Cloud Functions instance pays for every module it imports before its first answer;
most functions never touch numpy, an audio encoder, a cloud client or a provider SDK on
most requests. Two helpers keep such imports where they read naturally, at the top of a
module, while loading them on first use:

``lazy_module("numpy")`` returns a stand-in whose first attribute access imports the
module (``np.zeros`` imports numpy, then is numpy's own ``zeros``)::

    if TYPE_CHECKING:
        import numpy as np
    else:
        np = lazy_module("numpy")

``lazy_exports(globals(), {"package.module": ["name", ...]})`` gives a module the
``__getattr__``/``__dir__`` pair of PEP 562 that imports each listed name from its module
when first looked up (a package's re-exports, ``main.py``'s entry points)::

    __getattr__, __dir__ = lazy_exports(globals(), {"shared.providers.registry": ["Registry"]})

Both import nothing themselves and are safe under threads (the import system's own locks).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """A module imported on its first attribute access (``lazy_module``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"{name}, imported on first use")

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for what the stand-in itself lacks: every real attribute.
        return getattr(importlib.import_module(self.__name__), attribute)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__name__))


def lazy_module(name: str) -> Any:
    """Return a stand-in for module ``name`` that imports it on first attribute access.

    The stand-in is not put in ``sys.modules``: until something is looked up on it, the
    module is not imported at all (tests can tell). ``import`` errors surface at that
    first use.
    """
    return LazyModule(name)


def lazy_exports(
    namespace: MutableMapping[str, Any], exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a module's ``__getattr__`` and ``__dir__`` serving ``exports`` lazily.

    ``namespace`` is the module's ``globals()``; ``exports`` maps each module to the names
    taken from it. The first lookup of a name imports its module and stores the value in
    ``namespace``, so later lookups are plain attribute reads. Other names raise
    ``AttributeError`` as usual.
    """
    module_name = namespace.get("__name__", "module")
    sources = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *sources})

    return __getattr__, __dir__
