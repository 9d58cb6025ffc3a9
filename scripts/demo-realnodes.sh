#!/usr/bin/env bash
# `make demo`, real nodes: a second dev cluster ("real") with 2 kwok nodes plus 2 real nodes
# (kubelet + containerd in namespaces of their own, bridge CNI, kube-proxy, cluster DNS, images
# built here), and a pod on each real node answering the other. Needs root; left running.
set -euo pipefail

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "real nodes need root (namespaces, cgroups, nftables): skipping that part of the demo"
    exit 0
fi

step "cilium dev-cluster up --name real --nodes 2 --real-nodes 2 --cni bridge"
cilium dev-cluster up --name real --nodes 2 --real-nodes 2 --cni bridge

KUBECONFIG="$(cilium dev-cluster kubeconfig --name real)"
export KUBECONFIG
eval "$(cilium dev-cluster env --name real | grep '^export PATH=')"

step "kubectl get nodes -o wide (kwok and real nodes side by side)"
kubectl get nodes -o wide -L dev-cluster.ciliumctl.io/real

step "one echo pod per real node (image quay.io/cilium/json-mock, built here, from the local registry)"
for i in 0 1; do
    kubectl apply -f - <<POD
apiVersion: v1
kind: Pod
metadata: {name: echo-$i, namespace: default, labels: {app: demo-echo}}
spec:
  nodeName: real-node-$i
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: quay.io/cilium/json-mock:v1.3.8
    readinessProbe: {tcpSocket: {port: 8080}}
POD
done
kubectl wait --for=condition=Ready pod/echo-0 pod/echo-1 --timeout=120s
kubectl get pods -o wide -l app=demo-echo

ip1="$(kubectl get pod echo-1 -o jsonpath='{.status.podIP}')"
ip0="$(kubectl get pod echo-0 -o jsonpath='{.status.podIP}')"
step "echo-0 (real-node-0) -> echo-1 (real-node-1) at $ip1: the answer shows the source it saw"
kubectl exec echo-0 -- curl -s --connect-timeout 3 "http://$ip1:8080/from-node-0"; echo
step "echo-1 (real-node-1) -> echo-0 (real-node-0) at $ip0"
kubectl exec echo-1 -- curl -s --connect-timeout 3 "http://$ip0:8080/from-node-1"; echo

step "cilium dev-cluster status --name real"
cilium dev-cluster status --name real

step "cilium connectivity test on the real nodes (bridge CNI: nothing enforces policy, so the policy tests are skipped with that reason)"
cilium connectivity test --node-selector dev-cluster.ciliumctl.io/real=true --timeout 5m \
  | grep -v 'not implemented in ciliumctl'

cat <<'NEXT'

The "real" cluster is left running. Try:
  export KUBECONFIG="$(.venv/bin/cilium dev-cluster kubeconfig --name real)"
  kubectl logs echo-0
  kubectl exec echo-0 -- curl -s https://one.one.one.one/      # the sealed network's "world"
  kubectl exec echo-0 -- curl -s --connect-timeout 2 http://192.0.2.1/ || echo sealed
  .venv/bin/cilium dev-cluster down --name real
NEXT
