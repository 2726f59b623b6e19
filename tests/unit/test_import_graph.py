"""No two modules import each other, anywhere in the project.

import-linter's contracts (pyproject.toml) keep the layers and the capabilities apart; this
test catches what they cannot see: a circle inside one package, such as a package's
``__init__`` importing a submodule that imports the package back. Imports that run only
under ``TYPE_CHECKING`` are left out (they never run); imports inside functions count,
since they run on first use. The graph is grimp's, the library import-linter is built on.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def root_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages: list[str] = config["tool"]["importlinter"]["root_packages"]
    return packages


def test_no_two_modules_import_each_other() -> None:
    graph = grimp.build_graph(*root_packages(), exclude_type_checking_imports=True)
    circles = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if module < imported and module in graph.find_modules_directly_imported_by(imported)
    )
    assert circles == [], f"modules that import each other: {circles}"
