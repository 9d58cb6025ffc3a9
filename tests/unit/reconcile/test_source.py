"""Loading the desired-state directory: good input, and bad input naming file and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ciliumctl.reconcile.errors import DesiredStateError
from ciliumctl.reconcile.source import load
from ciliumctl.versions import chart_dir

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gitops"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(DesiredStateError) as exc:
        load(root, chart_dir())
    return [str(p) for p in exc.value.problems]


CNC = """\
    apiVersion: cilium.io/v2
    kind: CiliumNodeConfig
    metadata:
      name: cnc
    spec:
      nodeSelector: {}
      defaults:
        debug: "true"
    """


def test_example_directory_loads() -> None:
    state = load(EXAMPLE, chart_dir())
    assert state.version == "1.18.5" and state.release == "cilium"
    assert state.namespace == "kube-system" and state.inventory == "cilium"
    # values files merge first, inline values win
    assert state.values["operator"]["replicas"] == 1
    assert state.values["hubble"] == {"enabled": True, "relay": {"enabled": True}}
    kinds = {(o.source, o.key.kind) for o in state.objects}
    assert ("nodeconfigs", "CiliumNodeConfig") in kinds
    assert ("policies", "CiliumNetworkPolicy") in kinds
    assert ("policies", "CiliumClusterwideNetworkPolicy") in kinds
    assert ("extra", "Namespace") in kinds
    user = [r for r in state.ignore if not r.builtin]
    assert user and user[0].kind == "Deployment" and user[0].pointers == ("/spec/replicas",)
    assert any(r.builtin and r.name == "hubble-server-certs" for r in state.ignore)


def test_defaults_and_namespaces(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "cilium.yaml": "version: v1.17.12\n",
            "nodeconfigs/a.yaml": CNC,
            "extra/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        },
    )
    state = load(root, chart_dir(), default_release="rel", default_namespace="cilium")
    assert (state.version, state.release, state.namespace) == ("1.17.12", "rel", "cilium")
    assert state.inventory == "rel"
    by_kind = {o.key.kind: o for o in state.objects}
    assert by_kind["CiliumNodeConfig"].key.namespace == "cilium"  # CNCs live with Cilium
    assert by_kind["ConfigMap"].key.namespace == "default"


def test_missing_cilium_yaml(tmp_path: Path) -> None:
    found = problems(tmp_path)
    assert found == [f"{tmp_path / 'cilium.yaml'}: missing: the desired state needs a cilium.yaml"]


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    root = write(tmp_path, {"cilium.yaml": "version: 1.18.5\nvalues:\n  debug: [\n"})
    (found,) = problems(root)
    assert found.startswith(f"{root / 'cilium.yaml'}:") and "invalid YAML" in found


def test_unknown_version_names_field(tmp_path: Path) -> None:
    root = write(tmp_path, {"cilium.yaml": "version: 1.16.0\n"})
    (found,) = problems(root)
    assert f"{root / 'cilium.yaml'}:1: version:" in found
    assert "not supported" in found and "1.18.5" in found


def test_unknown_key_suggests(tmp_path: Path) -> None:
    root = write(tmp_path, {"cilium.yaml": "version: 1.18.5\nvaluesFile: [a.yaml]\n"})
    (found,) = problems(root)
    assert ":2: valuesFile: unknown key (did you mean 'valuesFiles'?)" in found


def test_bad_values_name_the_file_and_key(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "cilium.yaml": "version: 1.18.5\nvaluesFiles: [v.yaml]\nvalues:\n  debug:\n"
            "    enabeld: true\n",
            "v.yaml": "hubble:\n  enabled: true\n  relay:\n    enabeld: true\n",
        },
    )
    found = problems(root)
    assert any(
        f.startswith(f"{root / 'v.yaml'}: hubble.relay.enabeld:") and "hubble.relay.enabled" in f
        for f in found
    )
    assert any(f.startswith(f"{root / 'cilium.yaml'}: values.debug.enabeld:") for f in found), found


def test_malformed_values_file(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"cilium.yaml": "version: 1.18.5\nvaluesFiles: [v.yaml, gone.yaml]\n", "v.yaml": "a: [\n"},
    )
    found = problems(root)
    assert any(f"{root / 'v.yaml'}:" in f and "not valid YAML" in f for f in found)
    assert any("valuesFiles[1]" in f and "does not exist" in f for f in found)


def test_failing_policy_stops_with_file_line_and_path(tmp_path: Path) -> None:
    policy = """\
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: p, namespace: app}
        spec:
          endpointSelector: {}
          egress:
            - toCIDR: ["10.0.0.300/8"]
        """
    root = write(tmp_path, {"cilium.yaml": "version: 1.18.5\n", "policies/p.yaml": policy})
    found = problems(root)
    assert any(
        f.startswith(f"{root / 'policies/p.yaml'}:7: spec.egress[0].toCIDR[0]:") for f in found
    ), found


def test_wrong_kinds_in_sections(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "cilium.yaml": "version: 1.18.5\n",
            "policies/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "nodeconfigs/np.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
        },
    )
    found = problems(root)
    assert any("policies/cm.yaml:2: kind: policies/ holds only" in f for f in found), found
    assert any("nodeconfigs/np.yaml:2: kind: nodeconfigs/ holds only" in f for f in found)


def test_cnc_fields_are_checked(tmp_path: Path) -> None:
    cnc = CNC.replace('debug: "true"', "debug: true").replace(
        "nodeSelector: {}", "nodeSelector:\n        matchExpresions: []"
    )
    cnc2 = CNC.replace("name: cnc", "name: other\n      namespace: elsewhere")
    root = write(
        tmp_path,
        {"cilium.yaml": "version: 1.18.5\n", "nodeconfigs/a.yaml": cnc, "nodeconfigs/b.yaml": cnc2},
    )
    found = problems(root)
    assert any("a.yaml:9: spec.defaults.debug: must be a string" in f for f in found), found
    assert any(
        "spec.nodeSelector.matchExpresions: unknown field (did you mean 'matchExpressions'?)" in f
        for f in found
    ), found
    assert any("b.yaml:5: metadata.namespace:" in f and "'elsewhere'" in f for f in found)


def test_duplicates_and_missing_names(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "cilium.yaml": "version: 1.18.5\n",
            "nodeconfigs/a.yaml": CNC,
            "nodeconfigs/b.yaml": CNC,
            "extra/x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
        },
    )
    found = problems(root)
    assert any("b.yaml" in f and "also defined in" in f and "a.yaml" in f for f in found)
    assert any("x.yaml:3: metadata.name: missing" in f for f in found), found


def test_generated_kinds_are_never_desired(tmp_path: Path) -> None:
    ident = (
        "apiVersion: cilium.io/v2\nkind: CiliumIdentity\nmetadata: {name: '1234'}\n"
        "security-labels: {}\n"
    )
    root = write(tmp_path, {"cilium.yaml": "version: 1.18.5\n", "extra/ids.yaml": ident})
    state = load(root, chart_dir())
    assert state.objects == []
    assert any("CiliumIdentity" in w and "never touches" in w for w in state.warnings)


def test_ignore_rules_are_checked(tmp_path: Path) -> None:
    config = """\
        version: 1.18.5
        ignoreDifferences:
          - kind: ConfigMap
            name: x
            jsonPointers: [data/key]
          - jsonPointers: [/data/key]
          - kind: Secret
            jsonPointer: [/data/x]
        """
    root = write(tmp_path, {"cilium.yaml": config})
    found = problems(root)
    assert any(
        "ignoreDifferences[0].jsonPointers[0]: JSON pointer 'data/key' must start" in f
        for f in found
    ), found
    assert any("ignoreDifferences[1].kind: missing" in f for f in found)
    assert any(
        "ignoreDifferences[2].jsonPointer: unknown key (did you mean 'jsonPointers'?)" in f
        for f in found
    )


def test_duplicate_key_in_a_policy_is_reported_with_its_line(tmp_path: Path) -> None:
    policy = """\
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: p, namespace: app}
        spec:
          endpointSelector: {matchLabels: {app: a}}
          endpointSelector: {matchLabels: {app: b}}
        """
    root = write(tmp_path, {"cilium.yaml": "version: 1.18.5\n", "policies/p.yaml": policy})
    found = problems(root)
    assert any(
        f.startswith(f"{root / 'policies/p.yaml'}:6: spec.endpointSelector: key appears")
        for f in found
    ), found


def test_policy_warnings_carry_their_line(tmp_path: Path) -> None:
    policy = """\
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: p, namespace: app}
        spec:
          endpointSelector: {}
        """
    root = write(tmp_path, {"cilium.yaml": "version: 1.18.5\n", "policies/p.yaml": policy})
    state = load(root, chart_dir())
    assert [o.key.name for o in state.objects] == ["p"]
    assert any(
        w.startswith(f"{root / 'policies/p.yaml'}:5 spec.endpointSelector") for w in state.warnings
    ), state.warnings
