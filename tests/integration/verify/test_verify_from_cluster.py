"""`cilium verify images --from-cluster`: the images of the pods in the Cilium namespace of a
real dev cluster, checked against a real registry with cosign signatures."""

from __future__ import annotations

import json
import secrets

from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client
from ciliumctl.verify import oci
from tests.verify.conftest import Keys, cilium
from tests.verify.registry import Registry, push_image


def pod(name: str, images: list[str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"k8s-app": name}},
        "spec": {
            "containers": [{"name": f"c{i}", "image": img} for i, img in enumerate(images)],
        },
    }


def test_from_cluster_checks_every_running_image(  # type: ignore[no-untyped-def]
    dev_cluster: DevCluster,
    client: Client,
    namespace: str,
    registry: Registry,
    sign,
    keys: Keys,
) -> None:
    reg = oci.RegistryClient(insecure=True)
    prefix = f"{registry.host}/c{secrets.token_hex(3)}/cilium"
    agent = oci.Reference.parse(f"{prefix}/cilium:v1.18.4")
    operator = oci.Reference.parse(f"{prefix}/operator-generic:v1.18.4")
    sign(f"{agent.name}@{push_image(reg, agent)}")
    push_image(reg, operator)  # never signed
    for name, images in (
        ("cilium-a", [str(agent)]),
        ("cilium-b", [str(agent)]),
        ("operator", [str(operator)]),
    ):
        client.apply(
            {
                **pod(name, images),
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            }
        )
    proc = cilium(
        "--kubeconfig",
        str(dev_cluster.kubeconfig_path),
        "-n",
        namespace,
        "verify",
        "images",
        "--from-cluster",
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
        "-o",
        "json",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    data = json.loads(proc.stdout)
    rows = {r["image"]: r for r in data["images"]}
    assert set(rows) == {str(agent), str(operator)}  # one row per distinct image
    assert rows[str(agent)]["status"] == "ok"
    assert rows[str(operator)]["status"] == "failed"
    assert "no signatures found" in rows[str(operator)]["reason"]
    assert "verified" not in out.lower()


def test_from_cluster_empty_namespace(
    dev_cluster: DevCluster,
    namespace: str,  # type: ignore[no-untyped-def]
    keys: Keys,
) -> None:
    proc = cilium(
        "--kubeconfig",
        str(dev_cluster.kubeconfig_path),
        "-n",
        namespace,
        "verify",
        "images",
        "--from-cluster",
        "--key",
        str(keys.public("ecdsa")),
    )
    assert proc.returncode == 2
    assert f"no pods in namespace {namespace}" in proc.stderr
