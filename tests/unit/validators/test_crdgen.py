"""The committed CRDs are generated from the policy model and match it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ciliumctl.validators import crdgen
from ciliumctl.validators import policy_model as pm

ROOT = Path(__file__).resolve().parents[3]


def test_committed_crds_are_up_to_date() -> None:
    stale = crdgen.stale(ROOT)
    assert stale == [], (
        f"{[str(p) for p in stale]} are stale: run `python -m ciliumctl.validators.crdgen`"
    )


def test_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    crdgen.write(tmp_path)
    cmd = [sys.executable, "-m", "ciliumctl.validators.crdgen", "--check", "--root"]
    assert subprocess.run([*cmd, str(tmp_path)], capture_output=True).returncode == 0
    target = tmp_path / "charts/cilium/crds/ciliumnetworkpolicies.yaml"
    target.write_text(target.read_text().replace("maxItems: 40", "maxItems: 41"))
    result = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "ciliumnetworkpolicies.yaml" in result.stderr


def test_crds_have_upstream_names_and_status_subresource() -> None:
    for kind, plural, short, scope in (
        (pm.CNP_KIND, "ciliumnetworkpolicies", "cnp", "Namespaced"),
        (pm.CCNP_KIND, "ciliumclusterwidenetworkpolicies", "ccnp", "Cluster"),
    ):
        docs = list(yaml.safe_load_all((ROOT / f"charts/cilium/crds/{plural}.yaml").read_text()))
        assert len(docs) == 1
        crd = docs[0]
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["metadata"]["name"] == f"{plural}.cilium.io"
        spec = crd["spec"]
        assert spec["group"] == "cilium.io"
        assert spec["scope"] == scope
        assert spec["names"]["kind"] == kind
        assert spec["names"]["plural"] == plural
        assert short in spec["names"]["shortNames"]
        (version,) = spec["versions"]
        assert version["name"] == "v2" and version["served"] and version["storage"]
        assert version["subresources"] == {"status": {}}
        schema = version["schema"]["openAPIV3Schema"]
        rule = schema["properties"]["spec"]
        assert rule["properties"]["egress"]["type"] == "array"
        assert schema["properties"]["specs"]["items"] == rule
        assert {"endpointSelector", "nodeSelector"} == {
            next(iter(alt["required"])) for alt in rule["oneOf"]
        }
        assert "description" not in schema["properties"]


def test_schema_is_structural() -> None:
    """Every node has a type (or is int-or-string) and no unsupported keywords."""
    allowed = {
        "type", "description", "properties", "items", "required", "enum", "pattern",
        "maxLength", "minLength", "maxItems", "minItems", "minimum", "maximum", "format",
        "oneOf", "anyOf", "additionalProperties", "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    }  # fmt: skip

    def walk(node: dict[str, object], where: str) -> None:
        assert set(node) <= allowed, (where, set(node) - allowed)
        assert "type" in node or node.get("x-kubernetes-int-or-string"), where
        for name, child in (node.get("properties") or {}).items():  # type: ignore[attr-defined]
            walk(child, f"{where}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}[]")  # type: ignore[arg-type]
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}{{}}")  # type: ignore[arg-type]

    for kind in (pm.CNP_KIND, pm.CCNP_KIND):
        walk(crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"], kind)
