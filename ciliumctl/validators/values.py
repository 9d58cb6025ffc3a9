"""The values check that runs before anything is rendered or applied.

Checks user values against the bundled chart: an unknown key is an error naming the closest
valid key; a key of upstream's chart that this chart does not model is an error too (it
would be ignored, and a feature the user asked for would silently stay off); a key removed
in the target version is an error with its migration; a deprecated key is a warning with its
replacement; a default that changed for this configuration is a note. The version rules are
data files (``data/upgrade-<minor>.yaml``), not code.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ciliumctl.helm.values import flatten

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class ValueFinding:
    """One problem with one key of the user's values."""

    severity: str  # "error", "warning" or "info"
    key: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form."""
        return asdict(self)


def _minor(version: str) -> tuple[int, int]:
    parts = version.lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        from ciliumctl.errors import UsageError

        raise UsageError(
            f"invalid Cilium version {version!r}", "use MAJOR.MINOR[.PATCH], e.g. 1.18.5"
        ) from None


@cache
def _rules(minor: str) -> dict[str, Any]:
    path = DATA / f"upgrade-{minor}.yaml"
    if not path.exists():
        return {}
    data: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return data


def rule_minors() -> list[str]:
    """Target minors that have rule files, oldest first."""
    found = [p.stem.removeprefix("upgrade-") for p in DATA.glob("upgrade-*.yaml")]
    return sorted(found, key=lambda m: _minor(m))


def _open_maps(defaults: dict[str, Any], prefix: str = "") -> set[str]:
    """Paths whose default is an empty map: they accept arbitrary keys (annotations...)."""
    out: set[str] = set()
    for key, value in defaults.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            if not value:
                out.add(path)
            else:
                out |= _open_maps(value, path)
    return out


def _known_prefix(
    path: str, flat_defaults: dict[str, Any], known: set[str], open_maps: set[str]
) -> bool:
    """True when ``path`` is a chart key, lies under a free-form map, or under a key whose
    default is null (upstream's way to say "a map you may fill")."""
    if path in known:
        return True
    parts = path.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if head in open_maps:
            return True
        if head in flat_defaults and flat_defaults[head] is None:
            return True
    return False


def check_values(
    values: dict[str, Any],
    chart_defaults: dict[str, Any],
    *,
    target_version: str,
    from_version: str | None = None,
    unmodelled: set[str] | None = None,
    unmodelled_defaults: dict[str, Any] | None = None,
    effective: dict[str, Any] | None = None,
) -> list[ValueFinding]:
    """Check ``values`` (the user's, not merged with defaults) for ``target_version``.

    A key under ``unmodelled`` is an error unless (on the 1.18 line) it is set to exactly
    upstream's default from ``unmodelled_defaults``: then upstream renders what this chart
    renders and nothing is ignored.
    """
    findings: list[ValueFinding] = []
    flat_defaults = flatten(chart_defaults)
    known = set(flat_defaults)
    for path in list(known):
        parts = path.split(".")
        known.update(".".join(parts[:i]) for i in range(1, len(parts)))
    open_maps = _open_maps(chart_defaults)
    unmodelled = unmodelled or set()
    target = _minor(target_version)
    # The recorded defaults are upstream 1.18's; other lines may differ, so only 1.18 accepts.
    flat_unmodelled_defaults = flatten(unmodelled_defaults or {}) if target == (1, 18) else {}
    start = _minor(from_version) if from_version else (target[0], target[1] - 1)
    removed: dict[str, dict[str, Any]] = {}
    minor_of: dict[str, str] = {}
    deprecated: dict[str, dict[str, Any]] = {}
    changed: list[dict[str, Any]] = []
    for minor in rule_minors():
        if start < _minor(minor) <= target:
            rules = _rules(minor)
            removed.update({r["key"]: r for r in rules.get("removed", [])})
            minor_of.update({r["key"]: minor for r in rules.get("removed", [])})
            deprecated.update({r["key"]: r for r in rules.get("deprecated", [])})
            if _minor(minor) == target and from_version is not None:
                # Changed defaults matter to an existing installation, not a new one.
                changed += rules.get("changed_defaults", [])

    user_keys = flatten(values)
    reported: set[str] = set()
    for path in sorted(user_keys):
        hit = _match_rule(path, removed)
        if hit is not None:
            rule = removed[hit]
            if hit not in reported:
                fix = f"use {rule['replacement']} instead" if rule.get("replacement") else ""
                findings.append(
                    ValueFinding(
                        "error",
                        hit,
                        f"{hit} was removed in Cilium {_minor_text(_minor(minor_of[hit]))}: "
                        f"{rule.get('note', '')}".strip(),
                        fix or "remove the key",
                    )
                )
                reported.add(hit)
            continue
        hit = _match_rule(path, deprecated)
        if hit is not None and hit not in reported:
            rule = deprecated[hit]
            findings.append(
                ValueFinding(
                    "warning",
                    hit,
                    f"{hit} is deprecated: {rule.get('note', '')}".strip(),
                    f"use {rule['replacement']} instead" if rule.get("replacement") else "",
                )
            )
            reported.add(hit)
            if _known_prefix(path, flat_defaults, known, open_maps):
                continue
        if _known_prefix(path, flat_defaults, known, open_maps):
            continue
        top_unmodelled = _match_rule(path, dict.fromkeys(unmodelled, 0))
        if top_unmodelled is not None:
            if _is_upstream_default(path, user_keys[path], flat_unmodelled_defaults):
                continue
            if top_unmodelled not in reported:
                findings.append(
                    ValueFinding(
                        "error",
                        top_unmodelled,
                        f"{top_unmodelled} is an upstream chart key that this chart does not "
                        "model yet; it would be ignored and the feature would stay off",
                        "remove it, or set the agent option through extraConfig "
                        "(cilium-config keys)",
                    )
                )
                reported.add(top_unmodelled)
            continue
        if hit is not None:
            continue
        candidates = difflib.get_close_matches(path, sorted(known), n=1, cutoff=0.6)
        fix = f"did you mean {candidates[0]}?" if candidates else "remove the key"
        findings.append(ValueFinding("error", path, f"unknown key {path}", fix))

    merged = effective if effective is not None else values
    flat_merged = flatten(merged)
    for rule in changed:
        key = rule["key"]
        cond = rule.get("when") or {}
        if any(flat_merged.get(k) != v for k, v in cond.items()):
            continue
        if key in user_keys:
            continue
        findings.append(
            ValueFinding(
                "info",
                key,
                f"default of {key} changes from {_yaml(rule['old'])} to {_yaml(rule['new'])} "
                f"in {_minor_text(target)}: {rule.get('note', '')}".strip(),
                f"set {key}={_yaml(rule['old'])} to keep the old behaviour",
            )
        )
    return findings


def _minor_text(minor: tuple[int, int]) -> str:
    return f"{minor[0]}.{minor[1]}"


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _is_upstream_default(path: str, value: Any, defaults: dict[str, Any]) -> bool:
    """True when ``value`` at ``path`` is exactly upstream's recorded default (numbers
    compare by value: a YAML 1 and a --set 1.0 are the same default)."""
    if path not in defaults:
        # An empty map sets nothing: it is the default wherever upstream has a map.
        return value == {} and any(key.startswith(f"{path}.") for key in defaults)
    default = defaults[path]
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    if isinstance(value, (int, float)) and isinstance(default, (int, float)):
        return float(value) == float(default)
    return type(value) is type(default) and bool(value == default)


def _match_rule(path: str, rules: dict[str, Any]) -> str | None:
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        if head in rules:
            return head
    return None
