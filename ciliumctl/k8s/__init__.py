"""Kubernetes adapter: the only package that imports the ``kubernetes`` client (lazily)."""

from ciliumctl.k8s.client import FIELD_MANAGER, Client, ExecResult, ObjectRef, ResourceInfo
from ciliumctl.k8s.errors import (
    ConflictError,
    FieldCause,
    ForbiddenError,
    InvalidError,
    KubeconfigError,
    KubeError,
    KubeTimeoutError,
    NotFoundError,
    UnauthorizedError,
    UnreachableError,
)
from ciliumctl.k8s.readiness import Result, Status, compute

__all__ = [
    "FIELD_MANAGER",
    "Client",
    "ConflictError",
    "ExecResult",
    "FieldCause",
    "ForbiddenError",
    "InvalidError",
    "KubeError",
    "KubeTimeoutError",
    "KubeconfigError",
    "NotFoundError",
    "ObjectRef",
    "ResourceInfo",
    "Result",
    "Status",
    "UnauthorizedError",
    "UnreachableError",
    "compute",
]
