"""lazypkg: a package installed without running its __init__; re-exported names import from
their submodules on first read."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.cni import lazypkg


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "lazydemo"
    (root / "heavy").mkdir(parents=True)
    (root / "__init__.py").write_text(
        "raise RuntimeError('the __init__ ran')\n"
        "from lazydemo.light import Light\n"
        "from lazydemo.heavy.mod import Heavy as Big\n"
    )
    (root / "light.py").write_text("class Light: pass\n")
    (root / "heavy" / "__init__.py").write_text("")
    (root / "heavy" / "mod.py").write_text("class Heavy: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m == "lazydemo" or m.startswith("lazydemo.")]:
        del sys.modules[name]


def test_reexports_map_names_to_their_submodules(package: Path) -> None:
    assert lazypkg.reexports(package / "__init__.py", "lazydemo") == {
        "Light": "lazydemo.light",
        "Big": "lazydemo.heavy.mod",
    }


def test_seeded_package_imports_names_lazily(package: Path) -> None:
    lazypkg.seed("lazydemo", lazypkg.reexports(package / "__init__.py", "lazydemo"))
    assert "lazydemo.light" not in sys.modules
    from lazydemo import Light  # type: ignore[import-not-found]

    assert Light.__module__ == "lazydemo.light"
    assert "lazydemo.heavy.mod" not in sys.modules  # only what was asked for
    from lazydemo import heavy  # a submodule still imports through __path__

    assert heavy.__name__ == "lazydemo.heavy"
    with pytest.raises(ImportError):
        from lazydemo import Missing  # noqa: F401


def test_seed_refuses_what_is_not_a_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plainmod.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="not a package"):
        lazypkg.seed("plainmod", {})
    sys.modules.pop("plainmod", None)
