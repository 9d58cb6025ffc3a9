"""A package whose ``__init__`` is replaced by lazy attributes, for the CNI plugin's start-up.

pyroute2's ``__init__`` imports every family it supports (ndb, ipdb, conntrack, ipvs, wifi,
...) to re-export them; the plugin needs only ``IPRoute``/``NetNS`` and ``netns``. Seeding
``sys.modules`` with the package's module object, not executed, and a module ``__getattr__``
that imports a re-exported name from its own submodule on first use halves the plugin's import
time (about 0.15 s of CPU per CNI call). Submodules import as usual through ``__path__``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def reexports(init: Path, package: str) -> dict[str, str]:
    """name -> submodule for every ``from <package>.x import name`` in ``init`` (when the
    bundle is built: the plugin itself never parses)."""
    import ast

    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(init.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
            for alias in node.names:
                out[alias.asname or alias.name] = str(node.module)
    return out


def seed(package: str, names: Mapping[str, str]) -> None:
    """Install ``package`` in sys.modules without running its ``__init__``; ``names`` are
    imported from their submodules when first read. No-op when it is already imported."""
    if package in sys.modules:
        return
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{package} is not a package on sys.path")
    module = importlib.util.module_from_spec(spec)

    def lazy(name: str) -> Any:
        if name not in names:  # lets `from package import submodule` fall back to importing it
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(module, name, value)
        return value

    module.__getattr__ = lazy  # type: ignore[method-assign]
    sys.modules[package] = module
