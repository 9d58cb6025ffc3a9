"""Image recipes: content hashing, layer reproducibility, registration, input checks."""

from __future__ import annotations

import dataclasses
import os
import tarfile
import time
from pathlib import Path

import pytest

from ciliumctl.devcluster import images
from ciliumctl.devcluster.images import builder as ib
from ciliumctl.devcluster.images import catalog
from ciliumctl.devcluster.images import recipe as rc
from ciliumctl.errors import UsageError

SOURCES = (
    ("debian.sources", "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n"),
)


def _key(recipe: rc.Recipe, **over: object) -> str:
    kwargs: dict[str, object] = {
        "base": rc.base_key(recipe, SOURCES),
        "file_hashes": {f.path: rc.sha256(f.data or b"") for f in recipe.files},
        "python_key": None,
        "ca_hash": None,
    }
    kwargs.update(over)
    return rc.recipe_key(recipe, **kwargs)  # type: ignore[arg-type]


BASE = rc.Recipe(
    name="t",
    packages=("curl",),
    files=(rc.File("/etc/x", data=b"x"),),
    entrypoint=("/bin/true",),
    env={"A": "1"},
)


def test_key_is_stable_for_equal_recipes() -> None:
    same = rc.Recipe(
        name="t",
        packages=("curl",),
        files=(rc.File("/etc/x", data=b"x"),),
        entrypoint=("/bin/true",),
        env={"A": "1"},
    )
    assert _key(BASE) == _key(same)
    # package order does not matter: mmdebstrap gets them sorted
    assert rc.base_key(dataclasses.replace(BASE, packages=("curl", "iproute2")), SOURCES) == (
        rc.base_key(dataclasses.replace(BASE, packages=("iproute2", "curl")), SOURCES)
    )


@pytest.mark.parametrize(
    "change",
    [
        {"packages": ("curl", "iproute2")},
        {"files": (rc.File("/etc/x", data=b"y"),)},
        {"files": (rc.File("/etc/x", data=b"x", mode=0o755),)},
        {"entrypoint": ("/bin/false",)},
        {"cmd": ("-v",)},
        {"env": {"A": "2"}},
        {"labels": {"k": "v"}},
        {"workdir": "/tmp"},
        {"tag": "v2"},
        {"symlinks": (rc.Symlink("/usr/bin/ash", "dash"),)},
        {"hooks": ('chroot "$1" ldconfig',)},
    ],
)
def test_every_field_changes_the_key(change: dict[str, object]) -> None:
    changed = dataclasses.replace(BASE, **change)  # type: ignore[arg-type]
    assert _key(changed) != _key(BASE)


def test_inputs_outside_the_recipe_change_the_key() -> None:
    assert _key(BASE, python_key="a") != _key(BASE, python_key="b")
    assert _key(BASE, ca_hash="a") != _key(BASE)
    other = (("debian.sources", SOURCES[0][1].replace("deb.debian.org", "mirror.local")),)
    assert _key(BASE, base=rc.base_key(BASE, other)) != _key(BASE)


def test_python_and_ca_imply_packages() -> None:
    r = rc.Recipe(name="p", packages=("curl",), python=rc.Python(), ca_arg="ca")
    assert r.debian_packages == ("ca-certificates", "curl", "python3")
    assert r.build_args() == ("ca",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad_Name"}, "is invalid"),
        ({"name": "ok", "tag": "bad tag"}, "invalid tag"),
        ({"name": "ok", "python": rc.Python()}, "needs a Debian base"),
        ({"name": "ok", "ca_arg": "ca"}, "CA bundle needs a Debian base"),
    ],
)
def test_bad_recipes_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        rc.Recipe(**kwargs)  # type: ignore[arg-type]


def test_bad_files_are_rejected() -> None:
    with pytest.raises(UsageError, match="exactly one of"):
        rc.File("/x", data=b"1", artifact="pause")
    with pytest.raises(UsageError, match="absolute"):
        rc.File("x", data=b"1")


def test_write_layer_is_reproducible(tmp_path: Path) -> None:
    def tree(root: Path, stamp: float) -> None:
        (root / "usr/bin").mkdir(parents=True)
        (root / "usr/bin/b").write_text("b")
        (root / "usr/bin/a").write_text("a")
        (root / "usr/bin/a").chmod(0o755)
        (root / "usr/bin/ash").symlink_to("dash")
        for p in [root, *root.rglob("*")]:
            if not p.is_symlink():
                os.utime(p, (stamp, stamp))

    tree(tmp_path / "one", 1_000_000)
    tree(tmp_path / "two", time.time())
    ib.write_layer(tmp_path / "one", tmp_path / "one.tar")
    ib.write_layer(tmp_path / "two", tmp_path / "two.tar")
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    with tarfile.open(tmp_path / "one.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["usr", "usr/bin", "usr/bin/a", "usr/bin/ash", "usr/bin/b"]
    assert {m.mtime for m in members} == {ib.SOURCE_DATE_EPOCH}
    assert {(m.uid, m.gid) for m in members} == {(0, 0)}
    assert members[2].mode == 0o755 and members[3].issym() and members[3].linkname == "dash"


def test_merged_usr_paths() -> None:
    assert ib.image_path("/bin/ash", merged_usr=True) == "/usr/bin/ash"
    assert ib.image_path("/lib/x.so", merged_usr=True) == "/usr/lib/x.so"
    assert ib.image_path("/etc/x", merged_usr=True) == "/etc/x"
    assert ib.image_path("/bin/ash", merged_usr=False) == "/bin/ash"


def test_pinned_dependencies_follow_the_installed_closure() -> None:
    from importlib import metadata

    pins = ib.pinned_dependencies(("kubernetes",))
    assert pins["kubernetes"] == metadata.version("kubernetes")
    assert {"pyyaml", "urllib3", "requests"} <= set(pins)
    assert "typer" not in pins  # only what kubernetes needs
    everything = ib.pinned_dependencies(None)
    assert {"typer", "rich", "kubernetes", "cryptography"} <= set(everything)
    assert ib.pinned_dependencies(()) == {}


def test_unknown_build_argument_and_missing_file(tmp_path: Path) -> None:
    recipe = rc.Recipe(name="argtest", files=(rc.File("/ca.crt", arg="ca"),))
    with pytest.raises(UsageError, match="no build argument nope"):
        ib.build_recipe(recipe, args={"nope": tmp_path})
    with pytest.raises(UsageError, match="needs build argument ca"):
        ib.build_recipe(recipe)
    with pytest.raises(UsageError, match="does not exist"):
        ib.build_recipe(recipe, args={"ca": tmp_path / "missing.crt"})


def test_register_and_aliases() -> None:
    recipe = rc.Recipe(name="unit-agent", files=(rc.File("/x", data=b"1"),))
    try:
        images.register(recipe, aliases=("quay.io/cilium/cilium:v1.18.0",))
        assert "unit-agent" in images.names()
        assert catalog.aliases_for(recipe) == ["quay.io/cilium/cilium:v1.18.0"]
        assert images.UPSTREAM_ALIASES["quay.io/cilium/cilium:v1.18.0"] == (
            f"ciliumctl/unit-agent:{recipe.tag}"
        )
        with pytest.raises(UsageError, match="already registered"):
            images.register(dataclasses.replace(recipe, env={"X": "1"}))
        images.register(dataclasses.replace(recipe, env={"X": "1"}), replace=True)
        assert images.get("unit-agent").env == {"X": "1"}
    finally:
        catalog.RECIPES.pop("unit-agent", None)
        catalog.UPSTREAM_ALIASES.pop("quay.io/cilium/cilium:v1.18.0", None)
    with pytest.raises(UsageError, match="unknown image"):
        images.get("unit-agent")


def test_builtin_catalog_covers_the_connectivity_test_images() -> None:
    assert {"pause", "client", "echo", "dns-test", "cluster-dns", "kube-proxy"} <= set(
        images.names()
    )
    aliases = images.UPSTREAM_ALIASES
    assert aliases["quay.io/cilium/alpine-curl:v1.10.0"].startswith("ciliumctl/client:")
    assert aliases["quay.io/cilium/json-mock:v1.3.8"].startswith("ciliumctl/echo:")
    assert aliases["docker.io/coredns/coredns:1.12.0"].startswith("ciliumctl/dns-test:")
    for local in aliases.values():
        name = local.split("/", 1)[1].split(":")[0]
        assert name in images.names()
    client = images.get("client")
    assert client.ca_arg == images.WORLD_CA
    assert any(f.path == "/usr/bin/pause" for f in client.files)  # cilium-cli's command


def test_host_apt_sources_name_the_suite() -> None:
    sources = ib.host_apt_sources()
    assert sources
    assert all(rc.DEBIAN_SUITE in text for _, text in sources)


def test_unused_bases_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CILIUMCTL_CACHE_DIR", str(tmp_path))
    base = tmp_path / "images" / "base"
    base.mkdir(parents=True)
    for key, age_days in (("old", ib.BASE_MAX_IDLE_DAYS + 1), ("new", 1)):
        for suffix in (".tar", ".packages", ".log"):
            (base / f"{key}{suffix}").write_text(key)
        (base / f"{key}.oci").mkdir()
        stamp = time.time() - age_days * 86400
        os.utime(base / f"{key}.packages", (stamp, stamp))
    ib._prune_bases()
    assert sorted(p.name for p in base.iterdir()) == [
        "new.log",
        "new.oci",
        "new.packages",
        "new.tar",
    ]


def test_console_scripts_and_the_agent_images_cilium_alias(tmp_path: Path) -> None:
    """The agent image's ``cilium`` runs cilium-dbg's code, as upstream's image has it
    (cilium-cli execs ``cilium status -o json`` there); an alias of a missing script is a
    build error naming it."""
    from ciliumctl.devcluster import runtime_images
    from ciliumctl.devcluster.images.builder import ImageBuildError, write_scripts

    agent, operator = runtime_images.recipes()
    assert agent.python is not None and agent.python.script_aliases == (("cilium", "cilium-dbg"),)
    assert operator.python is not None and operator.python.script_aliases == ()
    eps = ["cilium = ciliumctl.cli.app:main", "cilium-dbg = ciliumctl.dbg.main:main"]
    write_scripts(tmp_path, eps, agent.python.script_aliases)
    assert (tmp_path / "cilium").read_text() == (
        "#!/usr/bin/python3\nimport sys\nfrom ciliumctl.dbg.main import main\nsys.exit(main())\n"
    )
    assert (tmp_path / "cilium-dbg").read_text() == (tmp_path / "cilium").read_text()
    assert (tmp_path / "cilium").stat().st_mode & 0o777 == 0o755
    with pytest.raises(ImageBuildError, match="script alias x=nope: the wheel has no script"):
        write_scripts(tmp_path, eps, (("x", "nope"),))
