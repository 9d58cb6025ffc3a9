"""The Cilium releases the bundled chart can install, and upgrade-path rules."""

from __future__ import annotations

from ciliumctl.errors import UsageError

#: Newest patch the chart knows for each supported minor (the chart installs x.y.0 .. x.y.N).
NEWEST_PATCH = {"1.17": 12, "1.18": 5}


def parse(version: str) -> tuple[int, int, int]:
    """``v1.18.5`` / ``1.18.5`` -> (1, 18, 5); a usage error names the supported list."""
    text = version.strip().lstrip("v")
    parts = text.split(".")
    try:
        if len(parts) != 3:
            raise ValueError
        major, minor, patch = (int(p) for p in parts)
    except ValueError:
        raise UsageError(
            f"invalid --version {version!r}", f"use one of: {', '.join(supported())}"
        ) from None
    return major, minor, patch


def supported() -> list[str]:
    """Every release the chart can install, oldest first."""
    return [f"{m}.{p}" for m, newest in NEWEST_PATCH.items() for p in range(newest + 1)]


def default_version() -> str:
    """The release installed when --version is not given (the chart's appVersion)."""
    from ciliumctl.versions import default_cilium_version

    return default_cilium_version()


def check_supported(version: str) -> str:
    """Normalise ``version`` (no leading v) or fail listing what is supported."""
    major, minor, patch = parse(version)
    norm = f"{major}.{minor}.{patch}"
    if norm not in supported():
        raise UsageError(
            f"Cilium {norm} is not supported by this chart",
            f"supported versions: {', '.join(supported())}",
        )
    return norm


def newest_patch_of(version: str) -> str:
    """The newest patch the chart knows of ``version``'s minor."""
    major, minor, _ = parse(version)
    key = f"{major}.{minor}"
    return f"{key}.{NEWEST_PATCH[key]}" if key in NEWEST_PATCH else version.lstrip("v")


def upgrade_path_problem(current: str, target: str) -> str | None:
    """Why the upgrade guide calls ``current`` -> ``target`` untested, or None if it is fine.

    Upgrades go one minor at a time; downgrades only to the previous minor.
    """
    cur, tgt = parse(current), parse(target)
    if cur[0] != tgt[0]:
        return f"changing major version ({current} -> {target}) is not supported"
    step = tgt[1] - cur[1]
    if step > 1:
        return (
            f"upgrading from {current} to {target} skips minor "
            f"{cur[0]}.{cur[1] + 1}; upgrade one minor release at a time"
        )
    if step < -1:
        return (
            f"downgrading from {current} to {target} goes back more than one minor "
            "release, which is untested"
        )
    return None
