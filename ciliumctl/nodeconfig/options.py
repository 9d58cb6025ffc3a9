"""Known agent option names, for warning about unknown keys in CiliumNodeConfigs."""

from __future__ import annotations

import difflib
from functools import cache
from importlib import resources


@cache
def known_options() -> frozenset[str]:
    """The cilium-config keys the 1.18 agent and operator understand."""
    text = resources.files("ciliumctl.nodeconfig").joinpath("data/agent-options.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def closest(key: str) -> str | None:
    """The known option most similar to ``key``, if any is reasonably close."""
    matches = difflib.get_close_matches(key, sorted(known_options()), n=1, cutoff=0.75)
    return matches[0] if matches else None


def unknown_key_warnings(keys: list[str]) -> list[str]:
    """One warning per key that no known agent option has, naming the closest one."""
    out = []
    known = known_options()
    for key in keys:
        if key in known:
            continue
        near = closest(key)
        hint = f"; did you mean {near}?" if near else ""
        out.append(f"{key} is not a known agent option{hint}")
    return out
