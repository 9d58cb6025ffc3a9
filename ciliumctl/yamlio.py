"""YAML reading and writing through libyaml when PyYAML has it (10x faster on rendered
charts, whose CRDs run to megabytes), with the pure-Python classes as fallback."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str | bytes) -> Any:
    """One document."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader


def load_all(text: str | bytes) -> list[Any]:
    """Every document of a multi-document stream."""
    return list(yaml.load_all(text, Loader=_Loader))


def dump(data: Any, *, sort_keys: bool = False) -> str:
    """One document, block style."""
    out: str = yaml.dump(data, Dumper=_Dumper, sort_keys=sort_keys, default_flow_style=False)
    return out


def dump_all(docs: Iterable[Any], *, sort_keys: bool = False) -> str:
    """Several documents separated by ``---``."""
    out: str = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=sort_keys, default_flow_style=False)
    return out
