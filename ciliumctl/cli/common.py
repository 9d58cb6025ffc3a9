"""Flag types and helpers shared by the Helm-driven commands."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ciliumctl.cli.context import SETTINGS
from ciliumctl.errors import UsageError

if TYPE_CHECKING:
    from ciliumctl.helm import Helm
    from ciliumctl.install.install import Target
    from ciliumctl.validators.values import ValueFinding

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Set Helm values (key=value[,key=value]); repeatable."),
]
SetStringOpt = Annotated[
    list[str] | None, typer.Option("--set-string", help="Set Helm STRING values; repeatable.")
]
SetFileOpt = Annotated[
    list[str] | None,
    typer.Option("--set-file", help="Set Helm values from files (key=path); repeatable."),
]
ValuesOpt = Annotated[
    list[str] | None,
    typer.Option("-f", "--values", help="Helm values file (YAML); repeatable, later files win."),
]
ChartDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--chart-directory", help="Use this Helm chart directory instead of the bundled one."
    ),
]
RepositoryOpt = Annotated[
    str | None,
    typer.Option(
        "--repository",
        help="Helm repository (https://...) or OCI registry (oci://...) to install the chart "
        "of --version from, instead of the bundled chart.",
    ),
]
DryRunHelmValuesOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run-helm-values", help="Print the non-default Helm values; change nothing."
    ),
]
WaitDurationOpt = Annotated[
    str,
    typer.Option("--wait-duration", help="Maximum time to wait for readiness (e.g. 5m0s, 90s)."),
]

VerifyImagesOpt = Annotated[
    bool,
    typer.Option(
        "--verify-images",
        help="Verify the cosign signatures of every image first; a failure "
        "stops before anything is applied.",
    ),
]
VerifyKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--verify-key",
        help="With --verify-images: a cosign public key instead of keyless "
        "(Sigstore) verification with Cilium's release identities.",
    ),
]
TrustRootOpt = Annotated[
    Path | None,
    typer.Option("--trust-root", help="With --verify-images: a Sigstore trusted_root.json."),
]
VerifyInsecureOpt = Annotated[
    bool,
    typer.Option(
        "--verify-insecure", help="With --verify-images: plain HTTP to localhost registries."
    ),
]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


def parse_duration(text: str, flag: str = "--wait-duration") -> float:
    """Go-style durations (``5m0s``, ``90s``, ``1h``) or plain seconds -> seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        value, unit = float(match.group(1)), match.group(2)
        total += value * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        pos = match.end()
    if pos != len(text) or not text:
        raise UsageError(f"invalid {flag} {text!r}", "use a duration such as 5m0s, 90s or 1h")
    return total


def user_values(
    values: list[str] | None,
    sets: list[str] | None,
    set_strings: list[str] | None,
    set_files: list[str] | None,
) -> dict[str, Any]:
    """Parse -f/--set/--set-string/--set-file in Helm's order."""
    from ciliumctl.helm.values import user_values as parse

    return parse(values or [], sets or [], set_strings or [], set_files or [])


def target(
    chart_directory: Path | None, repository: str | None = None, version: str | None = None
) -> Target:
    """The release, namespace and chart selected by the global flags: --chart-directory, a
    chart pulled from --repository (for --version), or the bundled chart."""
    from ciliumctl.install.install import Target
    from ciliumctl.versions import chart_dir

    if chart_directory is not None and repository is not None:
        raise UsageError(
            "--chart-directory and --repository exclude each other", "pass only one of them"
        )
    if repository is not None:
        import atexit
        import shutil
        import tempfile

        from ciliumctl.install import install, releases

        norm = ".".join(map(str, releases.parse(version))) if version else None
        pulled = Path(tempfile.mkdtemp(prefix="ciliumctl-chart-"))
        atexit.register(shutil.rmtree, pulled, True)
        norm = norm or releases.default_version()
        chart = install.fetch_chart(helm(), repository, norm, pulled)
        return Target(SETTINGS.helm_release_name, SETTINGS.namespace, chart)
    chart = chart_directory or chart_dir()
    if not (chart / "Chart.yaml").is_file():
        raise UsageError(
            f"--chart-directory {chart} is not a Helm chart (no Chart.yaml)",
            "point it at a directory that holds Chart.yaml",
        )
    return Target(SETTINGS.helm_release_name, SETTINGS.namespace, chart)


def helm() -> Helm:
    """Helm for the selected cluster; the binary is found or built like the dev cluster's."""
    from ciliumctl.devcluster import binaries
    from ciliumctl.helm import Helm

    path = binaries.ensure(["helm"])["helm"]
    return Helm(path, kubeconfig=SETTINGS.kubeconfig, context=SETTINGS.context)


def show_findings(findings: list[ValueFinding]) -> None:
    """Print warnings and notes from the values check on stderr."""
    from ciliumctl.cli.output import err_console

    for finding in findings:
        if finding.severity == "error":
            continue
        colour = "yellow" if finding.severity == "warning" else "cyan"
        fix = f" ({finding.fix})" if finding.fix else ""
        err_console().print(
            f"[{colour}]{finding.severity}:[/] {finding.message}{fix}", highlight=False
        )


def image_check(
    enabled: bool, key: Path | None, trust_root: Path | None, insecure: bool
) -> Callable[[list[str]], None] | None:
    """The ``--verify-images`` hook for install/upgrade (None when not requested)."""
    if not enabled:
        if key or trust_root or insecure:
            raise UsageError(
                "--verify-key, --trust-root and --verify-insecure need --verify-images",
                "add --verify-images",
            )
        return None
    from ciliumctl.verify.images import make_verifier, require_verified
    from ciliumctl.verify.oci import RegistryClient

    verifier = make_verifier(key, None, trust_root, keyless_needs_policy=False)
    client = RegistryClient(insecure=insecure)

    def check(images: list[str]) -> None:
        require_verified(images, verifier, client)

    return check
