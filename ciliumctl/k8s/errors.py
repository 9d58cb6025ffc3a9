"""The Kubernetes error hierarchy: API failures translated into actionable errors.

Translation works on duck-typed exception objects (``status``, ``reason``, ``body``) so
this module does not import the ``kubernetes`` client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ciliumctl.errors import CiliumctlError, ConfigError


class KubeError(CiliumctlError):
    """Any failure talking to the Kubernetes API."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class KubeconfigError(ConfigError):
    """The kubeconfig file or context cannot be used."""


class UnreachableError(KubeError):
    """The API server did not answer; carries the server URL."""

    def __init__(self, server: str, reason: str, hint: str | None = None) -> None:
        super().__init__(
            f"cannot reach the Kubernetes API server at {server}: {reason}",
            hint or "check that the cluster is running and that --kubeconfig/--context point at it",
        )
        self.server = server


class NotFoundError(KubeError):
    """HTTP 404: the object (or its kind) does not exist."""


class ConflictError(KubeError):
    """HTTP 409: already exists, a resourceVersion conflict, or a field-manager conflict."""


class ForbiddenError(KubeError):
    """HTTP 403: RBAC denied the request."""


class UnauthorizedError(KubeError):
    """HTTP 401: the credentials in the kubeconfig were rejected."""


@dataclass(frozen=True)
class FieldCause:
    """One field-level cause of an Invalid (422) error."""

    field: str
    message: str
    reason: str = ""


class InvalidError(KubeError):
    """HTTP 422: the object failed validation; ``causes`` names each bad field."""

    def __init__(self, message: str, causes: list[FieldCause], hint: str | None = None) -> None:
        super().__init__(message, hint, status=422)
        self.causes = causes

    def __str__(self) -> str:
        lines = [super().__str__()]
        lines += [f"  {c.field}: {c.message}" for c in self.causes]
        return "\n".join(lines)


class KubeTimeoutError(KubeError):
    """A request or a wait did not finish in time."""


def _status_body(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {"message": body.strip()}
        return parsed if isinstance(parsed, dict) else {}
    return body if isinstance(body, dict) else {}


def translate_api_error(exc: Any, what: str) -> KubeError:
    """Map an API exception (anything with ``status`` and ``body``) to the hierarchy.

    ``what`` names the request, e.g. ``"get ConfigMap kube-system/cilium-config"``.
    """
    status = int(getattr(exc, "status", 0) or 0)
    body = _status_body(getattr(exc, "body", None))
    message = str(body.get("message") or getattr(exc, "reason", "") or "request failed")
    text = f"{what}: {message}"
    if status == 404:
        return NotFoundError(text, status=status)
    if status == 409:
        return ConflictError(text, status=status)
    if status == 403:
        return ForbiddenError(
            text,
            "grant the missing RBAC permission or use a context with more rights",
            status=status,
        )
    if status == 401:
        return UnauthorizedError(
            text, "refresh the credentials of this context in the kubeconfig", status=status
        )
    if status == 422:
        details = body.get("details") or {}
        causes = [
            FieldCause(
                field=str(c.get("field", "")),
                message=str(c.get("message", "")),
                reason=str(c.get("reason", "")),
            )
            for c in details.get("causes") or []
            if isinstance(c, dict)
        ]
        return InvalidError(text, causes)
    if status in (408, 504) or body.get("reason") == "Timeout":
        return KubeTimeoutError(text, status=status)
    return KubeError(text, status=status or None)
