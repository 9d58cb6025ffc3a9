"""Every reconcile unit test gets its own cache directory (renders, parsed CRDs)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "_cache"
    monkeypatch.setenv("CILIUMCTL_RECONCILE_CACHE", str(home))
    return home
