"""Offline validators: Cilium network policies, identity-relevant labels, system requirements.

Domain code only: functions return findings or raise :mod:`ciliumctl.errors` exceptions;
nothing here prints or exits. Heavy imports (the Kubernetes client, RE2) happen inside the
functions that need them.
"""
