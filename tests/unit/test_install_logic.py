"""Install/upgrade decisions that need no cluster: versions, paths, flavors, values check."""

from __future__ import annotations

from typing import Any

import pytest

from ciliumctl.errors import UsageError
from ciliumctl.install import detect, releases
from ciliumctl.install.install import ValuesCheckError, check_user_values, manifest_diff
from ciliumctl.validators.values import check_values
from ciliumctl.versions import chart_dir


def test_supported_versions_and_default() -> None:
    versions = releases.supported()
    assert versions[0] == "1.17.0" and versions[-1] == "1.18.5"
    assert releases.default_version() == "1.18.5"
    assert releases.check_supported("v1.17.3") == "1.17.3"


@pytest.mark.parametrize("bad", ["1.16.4", "1.19.0", "1.18.99", "latest", "1.18"])
def test_unsupported_version_lists_supported(bad: str) -> None:
    with pytest.raises(UsageError) as exc:
        releases.check_supported(bad)
    assert "1.18.5" in (exc.value.hint or "")


@pytest.mark.parametrize(
    ("current", "target", "problem"),
    [
        ("1.17.3", "1.18.5", None),
        ("1.18.5", "1.18.1", None),
        ("1.18.5", "1.17.9", None),
        ("1.16.0", "1.18.5", "skips minor 1.17"),
        ("1.18.0", "1.16.0", "more than one minor"),
    ],
)
def test_upgrade_paths(current: str, target: str, problem: str | None) -> None:
    found = releases.upgrade_path_problem(current, target)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_newest_patch() -> None:
    assert releases.newest_patch_of("1.17.2") == "1.17.12"
    assert releases.newest_patch_of("1.18.5") == "1.18.5"


@pytest.mark.parametrize(
    ("context", "server", "labels", "groups", "annotations", "flavor"),
    [
        ("kind-dev", "https://127.0.0.1:6443", {}, set(), {}, "kind"),
        ("minikube", "https://192.168.49.2:8443", {}, set(), {}, "minikube"),
        ("default", "https://x", {"node.kubernetes.io/instance-type": "k3s"}, set(), {}, "k3s"),
        ("microk8s", "https://x", {}, set(), {}, "microk8s"),
        ("rancher-desktop", "https://x", {}, set(), {}, "rancher-desktop"),
        ("gke_p_z_c", "https://x", {}, set(), {}, "gke"),
        ("x", "https://ABC.gr7.us-east-1.eks.amazonaws.com", {}, set(), {}, "eks"),
        ("x", "https://c-dns.hcp.westeurope.azmk8s.io:443", {}, set(), {}, "aks"),
        ("admin", "https://api.ocp:6443", {}, {"config.openshift.io"}, {}, "openshift"),
        (
            "ciliumctl-dev",
            "https://127.0.0.1:1",
            {},
            set(),
            {"kwok.x-k8s.io/node": "fake"},
            "dev-cluster",
        ),
        (
            "ciliumctl-a2",
            "https://127.0.0.1:1",
            {"dev-cluster.ciliumctl.io/real": "true"},
            set(),
            {},
            "dev-cluster-real",
        ),
        ("prod", "https://10.0.0.1:6443", {}, set(), {}, "generic"),
    ],
)
def test_flavor_detection(
    context: str,
    server: str,
    labels: dict[str, str],
    groups: set[str],
    annotations: dict[str, str],
    flavor: str,
) -> None:
    assert detect.flavor_of(context, server, labels, groups, annotations) == flavor


@pytest.mark.parametrize(
    ("context", "flavor", "name"),
    [
        ("gke_proj_zone_prod-1", "gke", "prod-1"),
        ("arn:aws:eks:eu-west-1:123:cluster/Prod_EU", "eks", "prod-eu"),
        ("kind-kind", "kind", "kind"),
        (
            "Very Long Context Name With Spaces And More Than Thirty Two",
            "generic",
            "very-long-context-name-with-spac",
        ),
    ],
)
def test_cluster_name_from_context(context: str, flavor: str, name: str) -> None:
    assert detect.cluster_name_from_context(context, flavor) == name


class FakeDetectClient:
    server = "https://127.0.0.1:6443"
    context = "kind-dev"

    def __init__(self, kube_proxy: bool) -> None:
        self.kube_proxy = kube_proxy

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        if kind == "EndpointSlice":
            return [
                {
                    "ports": [{"name": "https", "port": 6443}],
                    "endpoints": [{"addresses": ["172.18.0.2"]}],
                }
            ]
        return [{"metadata": {"labels": {}, "annotations": {}}}]

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return {"kind": "DaemonSet"} if self.kube_proxy else None

    def request(self, method: str, path: str, *, what: str) -> Any:
        return {"groups": [{"name": "apps"}]}


def test_detect_without_kube_proxy_sets_kpr_and_api_server() -> None:
    found = detect.detect(FakeDetectClient(kube_proxy=False))
    assert found.flavor == "kind" and found.cluster_name == "dev"
    assert found.values["kubeProxyReplacement"] == "true"
    assert (found.values["k8sServiceHost"], found.values["k8sServicePort"]) == ("172.18.0.2", 6443)


def test_detect_with_kube_proxy_leaves_kpr_alone() -> None:
    found = detect.detect(FakeDetectClient(kube_proxy=True))
    assert "kubeProxyReplacement" not in found.values


def test_values_check_unknown_key_suggests_closest() -> None:
    with pytest.raises(ValuesCheckError) as exc:
        check_user_values({"hubble": {"enabeld": True}}, chart_dir(), "1.18.5")
    finding = exc.value.findings[0]
    assert finding.key == "hubble.enabeld"
    assert "hubble.enabled" in finding.fix


def test_values_check_removed_and_deprecated_keys() -> None:
    defaults = {"ciliumEndpointSlice": {"enabled": False}, "hubble": {"export": {}}}
    findings = check_values(
        {"enableCiliumEndpointSlice": True, "hubble": {"export": {"fileMaxSizeMb": 10}}},
        defaults,
        target_version="1.18.5",
    )
    by_key = {f.key: f for f in findings}
    assert by_key["enableCiliumEndpointSlice"].severity == "error"
    assert "ciliumEndpointSlice.enabled" in by_key["enableCiliumEndpointSlice"].fix
    assert by_key["hubble.export.fileMaxSizeMb"].severity == "warning"


def test_values_check_removed_key_is_fine_for_older_target() -> None:
    findings = check_values(
        {"enableCiliumEndpointSlice": True},
        {"enableCiliumEndpointSlice": False},
        target_version="1.17.9",
    )
    assert findings == []


def test_values_check_unmodelled_upstream_key_is_an_error() -> None:
    findings = check_values(
        {"bgpControlPlane": {"enabled": True}},
        {"debug": {}},
        target_version="1.18.5",
        unmodelled={"bgpControlPlane"},
    )
    assert [(f.severity, f.key) for f in findings] == [("error", "bgpControlPlane")]
    assert "would be ignored" in findings[0].message


def test_changed_default_reported_only_on_upgrade_and_when_condition_holds() -> None:
    defaults = {"ipam": {"mode": "cluster-pool"}, "enableIPv4Masquerade": None}
    eni = {"ipam": {"mode": "eni"}}
    upgrade = check_values(
        eni, defaults, target_version="1.18.5", from_version="1.17.9", effective=eni
    )
    assert any(f.key == "enableIPv4Masquerade" and f.severity == "info" for f in upgrade)
    fresh = check_values(eni, defaults, target_version="1.18.5", effective=eni)
    assert not any(f.key == "enableIPv4Masquerade" for f in fresh)
    pinned = check_values(
        {**eni, "enableIPv4Masquerade": True},
        defaults,
        target_version="1.18.5",
        from_version="1.17.9",
    )
    assert not any(f.key == "enableIPv4Masquerade" for f in pinned)


def test_open_maps_accept_any_key() -> None:
    assert (
        check_values(
            {"podAnnotations": {"a/b": "c"}}, {"podAnnotations": {}}, target_version="1.18.5"
        )
        == []
    )


def test_manifest_diff_labels_objects() -> None:
    old = [
        {"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}, "data": {"k": "1"}},
        {"kind": "Service", "metadata": {"name": "gone"}},
    ]
    new = [
        {"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}, "data": {"k": "2"}},
        {"kind": "Secret", "metadata": {"name": "new"}},
    ]
    diff = manifest_diff(old, new)
    assert "# ConfigMap n/a: changed" in diff and "-  k: '1'" in diff and "+  k: '2'" in diff
    assert "# Service gone: deleted" in diff and "# Secret new: created" in diff
    assert manifest_diff(old, old) == "# no changes\n"


class FakeHelm:
    """Just enough of the Helm adapter for upgrade's planning (dry runs)."""

    def __init__(self, user_values: dict[str, Any], first_version: str = "1.17.12") -> None:
        self.user_values = user_values
        self.first_version = first_version

    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        return {"version": 3, "info": {"status": "deployed"}}

    def get_values(
        self, release: str, namespace: str, *, all_values: bool = False, revision: int | None = None
    ) -> dict[str, Any]:
        if revision == 1:
            return {"ciliumVersion": self.first_version}
        if all_values:
            return {"ciliumVersion": "1.18.4", **self.user_values}
        return dict(self.user_values)

    def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        return [{"revision": 1, "app_version": "1.18.5"}, {"revision": 3}]


def _planned(helm: FakeHelm, mode: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
    from ciliumctl.install.install import Target, upgrade

    outcome = upgrade(
        None,
        helm,
        Target("cilium", "kube-system", chart_dir()),  # type: ignore[arg-type]
        user or {},
        version="1.18.5",
        values_mode=mode,
        dry_run_helm_values=True,
    )
    assert outcome.values is not None
    return outcome.values


def test_upgrade_pins_first_installed_minor() -> None:
    values = _planned(FakeHelm({"debug": {"enabled": True}}), "reset-then-reuse")
    assert values["upgradeCompatibility"] == "1.17"
    assert values["debug"] == {"enabled": True}


def test_reset_values_keeps_an_earlier_pin_but_drops_other_values() -> None:
    helm = FakeHelm({"debug": {"enabled": True}, "upgradeCompatibility": "1.16"})
    values = _planned(helm, "reset")
    assert values["upgradeCompatibility"] == "1.16"
    assert "debug" not in values


def test_user_pin_wins() -> None:
    values = _planned(FakeHelm({}), "reset-then-reuse", {"upgradeCompatibility": "1.18"})
    assert values["upgradeCompatibility"] == "1.18"


def test_real_dev_cluster_runs_the_local_runtime_images_and_others_upstreams() -> None:
    """On real dev-cluster nodes the chart's image overrides name the images the cluster's
    registry holds; every other flavor keeps upstream's images."""
    from ciliumctl.devcluster import images, realnodes

    assert detect.DEV_REGISTRY == realnodes.REGISTRY_NAME
    assert detect.DEV_REAL_LABEL == realnodes.REAL_LABEL
    values = detect._FLAVOR_VALUES["dev-cluster-real"]
    assert values["image"]["override"] == f"{realnodes.REGISTRY_NAME}/ciliumctl/cilium:{images.TAG}"
    assert values["operator"]["image"]["override"] == (
        f"{realnodes.REGISTRY_NAME}/ciliumctl/operator-generic:{images.TAG}"
    )
    for flavor, other in detect._FLAVOR_VALUES.items():
        if flavor != "dev-cluster-real":
            assert "image" not in other and "operator" not in other, flavor
