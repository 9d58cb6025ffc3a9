"""The registry, cosign and key fixtures of tests/verify, for tests that also need the dev
cluster (whose fixtures come from tests/integration/conftest.py)."""

from tests.verify.conftest import (  # noqa: F401
    cosign_binary,
    keys,
    registry,
    registry_binary,
    sign,
)
