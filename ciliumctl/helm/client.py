"""The Helm adapter: pyhelm3's command layer, run without a shell, as plain sync calls.

pyhelm3 builds the helm command lines and parses their JSON; its runner uses a shell, so
:class:`_ExecCommand` overrides it with ``create_subprocess_exec``: no
command of ciliumctl goes through a shell. Errors become :class:`HelmError` with helm's own message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from ciliumctl.errors import CiliumctlError

T = TypeVar("T")


class HelmError(CiliumctlError):
    """A helm command failed; the message is helm's, without its 'Error:' prefix."""


class ReleaseNotFoundError(HelmError):
    """The named release does not exist in the namespace."""


def _command_class() -> type:
    from pyhelm3.command import Command

    class _ExecCommand(Command):  # type: ignore[misc]
        """pyhelm3's Command, executing helm directly instead of through a shell."""

        async def run(self, command: list[Any], input: bytes | None = None) -> bytes:
            from pyhelm3 import errors

            argv = [self._executable, *command]
            if self._kubeconfig:
                argv += ["--kubeconfig", self._kubeconfig]
            if self._kubecontext:
                argv += ["--kube-context", self._kubecontext]
            argv = [a if isinstance(a, str | bytes) else str(a) for a in argv]
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else None,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await proc.communicate(input)
            if proc.returncode == 0:
                return stdout
            text = stderr.decode(errors="replace").lower()
            cls: type[Exception] = errors.Error
            if "release: not found" in text:
                cls = errors.ReleaseNotFoundError
            raise cls(proc.returncode or 1, stdout, stderr)

    return _ExecCommand


class Helm:
    """Helm for one cluster (kubeconfig + context)."""

    def __init__(
        self,
        executable: str | Path,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout: str = "5m",
    ) -> None:
        self.executable = str(executable)
        self._command = _command_class()(
            executable=self.executable,
            kubeconfig=kubeconfig,
            kubecontext=context,
            default_timeout=timeout,
            history_max_revisions=10,
        )

    def _run(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        from pyhelm3 import errors

        try:
            return asyncio.run(coro)
        except errors.ReleaseNotFoundError as exc:
            raise ReleaseNotFoundError(f"{what}: release not found") from exc
        except errors.Error as exc:
            message = exc.stderr.decode(errors="replace").strip()
            message = "\n".join(
                line.removeprefix("Error: ") for line in message.splitlines() if line.strip()
            )
            raise HelmError(f"{what}: {message or 'helm failed'}") from exc

    # ------------------------------------------------------------------ reads
    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        """The release's current status document, or None when there is no release."""
        try:
            result: dict[str, Any] = self._run(
                self._command.status(release, namespace=namespace), f"helm status {release}"
            )
        except ReleaseNotFoundError:
            return None
        return result

    def get_values(
        self, release: str, namespace: str, *, all_values: bool = False, revision: int | None = None
    ) -> dict[str, Any]:
        """User-supplied values of the release (``all_values``: merged with chart defaults)."""
        result: dict[str, Any] = self._run(
            self._command.get_values(
                release, computed=all_values, namespace=namespace, revision=revision
            ),
            f"helm get values {release}",
        )
        return result

    def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        """Every revision of the release, oldest first."""
        return list(
            self._run(
                self._command.history(release, namespace=namespace), f"helm history {release}"
            )
        )

    def template_text(
        self,
        release: str,
        namespace: str,
        chart: Path,
        values: dict[str, Any],
        *,
        include_crds: bool = False,
        is_upgrade: bool = False,
        kube_version: str | None = None,
        api_versions: list[str] | None = None,
    ) -> str:
        """``helm template`` output as text.

        ``kube_version``/``api_versions`` describe the target cluster (helm template
        otherwise assumes an old default Kubernetes version).
        """
        import json

        command: list[Any] = [
            "template",
            release,
            str(chart),
            "--namespace",
            namespace,
            "--include-crds" if include_crds else "--skip-crds",
            "--values",
            "-",
        ]
        if is_upgrade:
            command.append("--is-upgrade")
        if kube_version:
            command += ["--kube-version", kube_version]
        for api in api_versions or []:
            command += ["--api-versions", api]
        out = self._run(self._command.run(command, json.dumps(values).encode()), "helm template")
        return str(out.decode())

    def template(
        self,
        release: str,
        namespace: str,
        chart: Path,
        values: dict[str, Any],
        *,
        include_crds: bool = False,
        is_upgrade: bool = False,
        kube_version: str | None = None,
        api_versions: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Render the chart as ``helm template`` does; returns the objects."""
        from ciliumctl import yamlio

        text = self.template_text(
            release,
            namespace,
            chart,
            values,
            include_crds=include_crds,
            is_upgrade=is_upgrade,
            kube_version=kube_version,
            api_versions=api_versions,
        )
        return [d for d in yamlio.load_all(text) if isinstance(d, dict)]

    # ------------------------------------------------------------------ writes
    def install_or_upgrade(
        self,
        release: str,
        namespace: str,
        chart: Path,
        values: dict[str, Any],
        *,
        reset_values: bool = False,
        reuse_values: bool = False,
        wait: bool = False,
        timeout: str | None = None,
        dry_run: bool = False,
        description: str | None = None,
        skip_crds: bool = False,
    ) -> dict[str, Any]:
        """``helm upgrade --install``; returns the new revision's status document."""
        result: dict[str, Any] = self._run(
            self._command.install_or_upgrade(
                release,
                chart,
                values,
                namespace=namespace,
                create_namespace=True,
                reset_values=reset_values,
                reuse_values=reuse_values,
                wait=wait,
                timeout=timeout,
                dry_run=dry_run,
                description=description,
                skip_crds=skip_crds,
                atomic=False,
                atomic_arg="--atomic",
            ),
            f"helm upgrade --install {release}",
        )
        return result

    def rollback(
        self,
        release: str,
        namespace: str,
        revision: int | None = None,
        *,
        wait: bool = False,
        timeout: str | None = None,
    ) -> None:
        """Roll the release back to ``revision`` (default: the previous one)."""
        self._run(
            self._command.rollback(
                release, revision, namespace=namespace, wait=wait, timeout=timeout
            ),
            f"helm rollback {release}",
        )

    def uninstall(
        self, release: str, namespace: str, *, wait: bool = False, timeout: str | None = None
    ) -> None:
        """Remove the release and the objects it owns (not its CRDs)."""
        self._run(
            self._command.uninstall(release, namespace=namespace, wait=wait, timeout=timeout),
            f"helm uninstall {release}",
        )

    # ------------------------------------------------------------------ charts
    def pull(
        self,
        reference: str,
        version: str,
        destination: Path,
        *,
        repo: str | None = None,
        plain_http: bool = False,
    ) -> None:
        """``helm pull --untar`` chart ``reference`` at ``version`` into ``destination``.

        ``repo`` names a Helm HTTP repository (``reference`` is then the chart's name there);
        without it ``reference`` is an ``oci://`` reference. ``plain_http`` talks HTTP to an
        OCI registry (only ever chosen for loopback registries).
        """
        command: list[Any] = ["pull", reference, "--version", version, "--untar"]
        command += ["--untardir", str(destination)]
        if repo:
            command += ["--repo", repo]
        if plain_http:
            command.append("--plain-http")
        self._run(self._command.run(command), f"helm pull {reference} {version}")
