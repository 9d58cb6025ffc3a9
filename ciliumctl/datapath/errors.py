"""Errors of the datapath: what is missing or wrong, and how to fix it."""

from __future__ import annotations

from ciliumctl.errors import CiliumctlError


class DatapathError(CiliumctlError):
    """A kernel-side failure: no bpffs, no headers, not root, a map or program refused."""


class VerifierError(DatapathError):
    """The kernel's verifier rejected a program; the message carries the log's tail."""


class PolicyTooLargeError(DatapathError):
    """A policy does not fit the endpoint's policy map; the old policy stays in force."""
