"""`cilium verify` and `cilium sbom`: image signatures and SBOM attestations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ciliumctl.cli.output import OutputFormat, console, emit, err_console

if TYPE_CHECKING:
    from ciliumctl.verify.cosign import ImageResult, Verifier
    from ciliumctl.verify.oci import RegistryClient
    from ciliumctl.verify.policy import IdentityPolicy

app = typer.Typer(
    help="Verify the signatures of Cilium images.\n\n"
    "Keyless (Sigstore: certificate, SCT, transparency log, signer identity) or with a "
    "public key, for cosign's legacy .sig format and Sigstore bundles.",
    short_help="Verify the signatures of Cilium images.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich's markdown renderer costs ~0.1 s at start-up
)

sbom_app = typer.Typer(
    help="Download and verify the SBOM attestations of Cilium images.",
    short_help="Download and verify the SBOM attestations of Cilium images.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="PEM public key (ECDSA P-256, Ed25519 or RSA) of the signer."),
]
IdentityOpt = Annotated[
    str | None,
    typer.Option("--certificate-identity", help="Expected signer identity (certificate SAN)."),
]
IdentityRegexpOpt = Annotated[
    str | None,
    typer.Option("--certificate-identity-regexp", help="Regular expression for the identity."),
]
IssuerOpt = Annotated[
    str | None, typer.Option("--certificate-oidc-issuer", help="Expected OIDC issuer.")
]
IssuerRegexpOpt = Annotated[
    str | None,
    typer.Option("--certificate-oidc-issuer-regexp", help="Regular expression for the issuer."),
]
WfRepoOpt = Annotated[
    str | None,
    typer.Option("--certificate-github-workflow-repository", help="Expected GitHub repository."),
]
WfNameOpt = Annotated[
    str | None,
    typer.Option("--certificate-github-workflow-name", help="Expected GitHub workflow name."),
]
WfRefOpt = Annotated[
    str | None, typer.Option("--certificate-github-workflow-ref", help="Expected git ref.")
]
WfTriggerOpt = Annotated[
    str | None,
    typer.Option("--certificate-github-workflow-trigger", help="Expected workflow trigger."),
]
WfShaOpt = Annotated[
    str | None, typer.Option("--certificate-github-workflow-sha", help="Expected commit SHA.")
]
TrustRootOpt = Annotated[
    Path | None,
    typer.Option(
        "--trust-root",
        help="Sigstore trusted_root.json (default: the cached public-good root).",
    ),
]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Plain HTTP for loopback (localhost) registries.")
]
CaFileOpt = Annotated[
    Path | None, typer.Option("--ca-file", help="CA bundle of a registry with a private CA.")
]
OutputOpt = Annotated[
    OutputFormat, typer.Option("-o", "--output", help="Output format: text, json or yaml.")
]


def _client(insecure: bool, ca_file: Path | None) -> RegistryClient:
    from ciliumctl.verify.oci import RegistryClient

    return RegistryClient(insecure=insecure, ca_file=ca_file)


def _user_policy(**flags: str | None) -> IdentityPolicy | None:
    from ciliumctl.verify.policy import IdentityPolicy

    if not any(flags.values()):
        return None
    return IdentityPolicy(**flags)


def _verifier(
    key: Path | None,
    policy: IdentityPolicy | None,
    trust_root: Path | None,
    *,
    keyless_needs_policy: bool,
) -> Verifier:
    from ciliumctl.verify.images import make_verifier

    return make_verifier(key, policy, trust_root, keyless_needs_policy=keyless_needs_policy)


def _fail(message: str, hint: str | None = None) -> None:
    from ciliumctl.verify.errors import VerificationFailed

    raise VerificationFailed(message, hint)


def _result_json(r: ImageResult) -> dict[str, Any]:
    passed = r.passed
    out: dict[str, Any] = {
        "image": r.image,
        "digest": r.digest,
        "status": "ok" if r.ok else "failed",
        "mode": r.mode,
    }
    if passed is not None:
        out["signature"] = passed.source
        if passed.claims is not None:
            out["signer"] = passed.claims.as_dict()
        if passed.log_index is not None:
            out["tlogIndex"] = passed.log_index
        if passed.signed_at is not None:
            out["signedAt"] = passed.signed_at.isoformat()
    else:
        out["reason"] = r.reason
    out["signatures"] = [
        {"source": c.source, "status": "ok" if c.ok else "failed", "reason": c.reason}
        for c in r.checks
    ]
    return out


def _signer_text(r: ImageResult, verifier: Verifier) -> str:
    passed = r.passed
    if passed is None:
        return ""
    if passed.claims is not None:
        text = f"{passed.claims.identity} ({passed.claims.issuer})"
    elif verifier.key is not None:
        from ciliumctl.verify.signatures import key_fingerprint

        text = f"key {key_fingerprint(verifier.key)}"
    else:
        text = "key"
    if passed.log_index is not None:
        text += f", tlog index {passed.log_index}"
    return text


@app.command("image")
def image_cmd(
    image: Annotated[str, typer.Argument(help="IMAGE[:TAG|@DIGEST]")],
    key: KeyOpt = None,
    certificate_identity: IdentityOpt = None,
    certificate_identity_regexp: IdentityRegexpOpt = None,
    certificate_oidc_issuer: IssuerOpt = None,
    certificate_oidc_issuer_regexp: IssuerRegexpOpt = None,
    certificate_github_workflow_repository: WfRepoOpt = None,
    certificate_github_workflow_name: WfNameOpt = None,
    certificate_github_workflow_ref: WfRefOpt = None,
    certificate_github_workflow_trigger: WfTriggerOpt = None,
    certificate_github_workflow_sha: WfShaOpt = None,
    trust_root: TrustRootOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
) -> None:
    """Verify the cosign signature of one image.

    Keyless by default: Cilium release images (cilium/*:vX.Y.Z) are checked against the
    identity of Cilium's release workflow; other images need --certificate-identity and
    --certificate-oidc-issuer, or --key. Exit 1 unless a signature passes every check.
    """
    from ciliumctl.verify.cosign import verify_image
    from ciliumctl.verify.images import default_policy
    from ciliumctl.verify.oci import Reference

    ref = Reference.parse(image)
    policy = _user_policy(
        identity=certificate_identity,
        identity_regexp=certificate_identity_regexp,
        issuer=certificate_oidc_issuer,
        issuer_regexp=certificate_oidc_issuer_regexp,
        github_workflow_repository=certificate_github_workflow_repository,
        github_workflow_name=certificate_github_workflow_name,
        github_workflow_ref=certificate_github_workflow_ref,
        github_workflow_trigger=certificate_github_workflow_trigger,
        github_workflow_sha=certificate_github_workflow_sha,
    )
    if policy is None and key is None:
        policy = default_policy(ref)
    verifier = _verifier(key, policy, trust_root, keyless_needs_policy=True)
    result = verify_image(_client(insecure, ca_file), image, verifier)
    if output is not OutputFormat.TEXT:
        emit(_result_json(result), output)
    elif result.ok:
        console().print(
            f"[green]✓[/] {result.image}@{result.digest}: signature verified "
            f"({result.mode}: {_signer_text(result, verifier)})",
            markup=True,
        )
    else:
        for check in result.checks:
            err_console().print(f"  {check.source}: {check.reason}", markup=False)
    if not result.ok:
        _fail(f"{image}: no signature passed every check: {result.reason}")


@app.command("images")
def images_cmd(
    version: Annotated[
        str | None,
        typer.Option("--version", help="Cilium version whose chart images to check."),
    ] = None,
    from_cluster: Annotated[
        bool,
        typer.Option("--from-cluster", help="Check every image running in the Cilium namespace."),
    ] = False,
    registry: Annotated[
        str | None, typer.Option("--registry", help="Registry replacing that of every image.")
    ] = None,
    image_override: Annotated[
        list[str] | None,
        typer.Option("--image", help="COMPONENT=IMAGE: replace one chart image (repeatable)."),
    ] = None,
    chart_directory: Annotated[
        Path | None, typer.Option("--chart-directory", help="Chart to read the images from.")
    ] = None,
    key: KeyOpt = None,
    certificate_identity: IdentityOpt = None,
    certificate_identity_regexp: IdentityRegexpOpt = None,
    certificate_oidc_issuer: IssuerOpt = None,
    certificate_oidc_issuer_regexp: IssuerRegexpOpt = None,
    trust_root: TrustRootOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Parallel checks.")] = 8,
    output: OutputOpt = OutputFormat.TEXT,
) -> None:
    """Verify every image of a release or of the running Cilium.

    --version: the images the chart deploys (default: the chart's version); --from-cluster:
    the images of the pods in the Cilium namespace, pinned to their running digests.
    Checked in parallel; exit 1 if any fails.
    """
    from ciliumctl.cli.context import SETTINGS
    from ciliumctl.verify.errors import UsageError
    from ciliumctl.verify.images import chart_images, cluster_images, verify_images

    if from_cluster and (version or registry or image_override):
        raise UsageError("--from-cluster excludes --version, --registry and --image")
    overrides: dict[str, str] = {}
    for item in image_override or []:
        component, sep, ref = item.partition("=")
        if not sep or not component or not ref:
            raise UsageError(f"invalid --image {item!r}", "use COMPONENT=IMAGE")
        overrides[component] = ref
    if from_cluster:
        specs = cluster_images(SETTINGS.client(), SETTINGS.namespace)
        if not specs:
            raise UsageError(
                f"no pods in namespace {SETTINGS.namespace}",
                "is Cilium installed there? select it with -n/--namespace",
            )
    else:
        from ciliumctl import versions

        chart = chart_directory or versions.chart_dir()
        specs = chart_images(
            version or versions.default_cilium_version(),
            chart,
            registry=registry,
            overrides=overrides,
        )
    policy = _user_policy(
        identity=certificate_identity,
        identity_regexp=certificate_identity_regexp,
        issuer=certificate_oidc_issuer,
        issuer_regexp=certificate_oidc_issuer_regexp,
    )
    verifier = _verifier(key, policy, trust_root, keyless_needs_policy=False)
    results = verify_images(specs, verifier, _client(insecure, ca_file), workers=workers)
    components = [s.component for s in specs]
    if output is not OutputFormat.TEXT:
        emit(
            {
                "images": [
                    {"component": c, **_result_json(r)}
                    for c, r in zip(components, results, strict=True)
                ],
                "failed": sum(1 for r in results if not r.ok),
            },
            output,
        )
    else:
        from rich.table import Table

        table = Table(title=f"{len(results)} images ({verifier.mode})")
        for col in ("component", "image", "digest", "status", "signer / reason"):
            table.add_column(col, overflow="fold")
        for component, r in zip(components, results, strict=True):
            table.add_row(
                component,
                r.image.split("@", 1)[0],
                (r.digest or "-")[:19],
                "[green]ok[/]" if r.ok else "[red]FAILED[/]",
                _signer_text(r, verifier) if r.ok else r.reason,
            )
        console().print(table)
    failed = [r for r in results if not r.ok]
    if failed:
        _fail(f"{len(failed)} of {len(results)} images failed signature checks")


# --------------------------------------------------------------------------- sbom


PredicateOpt = Annotated[
    str,
    typer.Option("--predicate-type", help="spdxjson or cyclonedx (or a predicate type URI)."),
]


def _sbom_verifier(
    key: Path | None,
    trust_root: Path | None,
    **flags: str | None,
) -> Verifier:
    from ciliumctl.verify.policy import cilium_sbom_policy

    policy = _user_policy(**flags)
    if policy is None and key is None:
        policy = cilium_sbom_policy()
    return _verifier(key, policy, trust_root, keyless_needs_policy=True)


def _print_summary(summary: Any, packages: bool) -> None:
    out = console()
    out.print(f"SBOM ({summary.format}): {len(summary.packages)} packages", markup=False)
    types = ", ".join(f"{t} {n}" for t, n in summary.types.most_common())
    out.print(f"  package types: {types or '-'}", markup=False)
    lics = ", ".join(f"{t} {n}" for t, n in summary.licenses.most_common(15))
    more = len(summary.licenses) - 15
    out.print(f"  licenses: {lics or '-'}" + (f" (+{more} more)" if more > 0 else ""), markup=False)
    if packages:
        from rich.table import Table

        table = Table()
        for col in ("package", "version", "type", "licenses"):
            table.add_column(col, overflow="fold")
        for p in sorted(summary.packages, key=lambda p: (p.type, p.name)):
            table.add_row(p.name, p.version, p.type, ", ".join(p.licenses) or "-")
        out.print(table)


@sbom_app.command("download")
def sbom_download(
    image: Annotated[str, typer.Argument(help="IMAGE[:TAG|@DIGEST]")],
    predicate_type: PredicateOpt = "spdxjson",
    output_file: Annotated[
        Path | None, typer.Option("-o", "--output-file", help="Write the document here.")
    ] = None,
    key: KeyOpt = None,
    certificate_identity: IdentityOpt = None,
    certificate_identity_regexp: IdentityRegexpOpt = None,
    certificate_oidc_issuer: IssuerOpt = None,
    certificate_oidc_issuer_regexp: IssuerRegexpOpt = None,
    trust_root: TrustRootOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
) -> None:
    """Download an image's SBOM after checking its attestation.

    The SPDX or CycloneDX document goes to --output-file (a summary is printed) or to
    stdout. Identity defaults to any workflow of the cilium/cilium repository.
    """
    import json

    from ciliumctl.verify.sbom import fetch_sbom, predicate_type_for

    verifier = _sbom_verifier(
        key,
        trust_root,
        identity=certificate_identity,
        identity_regexp=certificate_identity_regexp,
        issuer=certificate_oidc_issuer,
        issuer_regexp=certificate_oidc_issuer_regexp,
    )
    att = fetch_sbom(
        _client(insecure, ca_file), image, verifier, predicate_type_for(predicate_type)
    )
    text = json.dumps(att.document, indent=2) + "\n"
    if output_file is None:
        sys.stdout.write(text)
        return
    try:
        output_file.write_text(text)
    except OSError as exc:
        from ciliumctl.errors import ConfigError

        raise ConfigError(f"cannot write {output_file}: {exc.strerror}") from None
    console().print(f"[green]✓[/] wrote {output_file} from {image}@{att.digest}")
    _print_summary(att.summary, packages=False)


@sbom_app.command("verify")
def sbom_verify(
    image: Annotated[str, typer.Argument(help="IMAGE[:TAG|@DIGEST]")],
    predicate_type: PredicateOpt = "spdxjson",
    packages: Annotated[bool, typer.Option("--packages", help="List every package.")] = False,
    key: KeyOpt = None,
    certificate_identity: IdentityOpt = None,
    certificate_identity_regexp: IdentityRegexpOpt = None,
    certificate_oidc_issuer: IssuerOpt = None,
    certificate_oidc_issuer_regexp: IssuerRegexpOpt = None,
    trust_root: TrustRootOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
) -> None:
    """Verify an image's SBOM attestation and summarise it.

    Signature and signer (default: any workflow of cilium/cilium, GitHub's issuer),
    subject equal to the image digest, predicate type; then package count, licenses and
    package types (--packages lists them). Exit 1 on any failure.
    """
    from ciliumctl.verify.sbom import fetch_sbom, predicate_type_for

    verifier = _sbom_verifier(
        key,
        trust_root,
        identity=certificate_identity,
        identity_regexp=certificate_identity_regexp,
        issuer=certificate_oidc_issuer,
        issuer_regexp=certificate_oidc_issuer_regexp,
    )
    att = fetch_sbom(
        _client(insecure, ca_file), image, verifier, predicate_type_for(predicate_type)
    )
    if output is not OutputFormat.TEXT:
        data: dict[str, Any] = {
            "image": image,
            "digest": att.digest,
            "status": "ok",
            "predicateType": att.predicate_type,
            "attestation": att.check.source,
            **att.summary.as_dict(with_packages=packages),
        }
        if att.check.claims is not None:
            data["signer"] = att.check.claims.as_dict()
        emit(data, output)
        return
    signer = (
        f"{att.check.claims.identity} ({att.check.claims.issuer})" if att.check.claims else "key"
    )
    console().print(
        f"[green]✓[/] {image}@{att.digest}: SBOM attestation verified ({signer})", markup=True
    )
    _print_summary(att.summary, packages)
