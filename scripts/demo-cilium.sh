#!/usr/bin/env bash
# `make demo`, the project's own Cilium: a dev cluster ("cilium") with 2 real nodes and no CNI,
# `cilium install` (the agent and operator images built and signed here, from the cluster's
# registry), `cilium status --wait` with every agent's own status, and a CiliumNetworkPolicy
# enforced: the allowed port answers, the other is dropped and `cilium-dbg monitor` says
# "Policy denied"; then `cilium connectivity test` (a subset) against it. Needs root; left
# running.
set -euo pipefail

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "real nodes need root: skipping the Cilium part of the demo"
    exit 0
fi

step "cilium dev-cluster up --name cilium --real-nodes 2 (no CNI: Cilium will be it)"
cilium dev-cluster up --name cilium --real-nodes 2

KUBECONFIG="$(cilium dev-cluster kubeconfig --name cilium)"
export KUBECONFIG
eval "$(cilium dev-cluster env --name cilium | grep '^export PATH=')"

step "cilium install --wait (agent and operator images from the cluster's registry)"
cilium install --wait

step "cilium status --wait (each agent is asked for its own status)"
cilium status --wait --wait-duration 5m

step "an echo pod (HTTP on 8080 and 9090) on real-node-0, a client pod on real-node-1"
kubectl apply -f - <<'PODS'
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: default, labels: {app: echo}}
spec:
  nodeName: real-node-0
  terminationGracePeriodSeconds: 1
  containers:
  - {name: http, image: "quay.io/cilium/json-mock:v1.3.8", env: [{name: PORT, value: "8080"}]}
  - {name: http-alt, image: "quay.io/cilium/json-mock:v1.3.8", env: [{name: PORT, value: "9090"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec:
  nodeName: real-node-1
  terminationGracePeriodSeconds: 1
  containers:
  - {name: client, image: "quay.io/cilium/alpine-curl:v1.10.0"}
PODS
kubectl wait --for=condition=Ready pod/echo pod/client --timeout=180s
kubectl get pods -o wide
kubectl get ciliumendpoints
echo_ip="$(kubectl get pod echo -o jsonpath='{.status.podIP}')"
curl_code() {  # 000 when the connection is refused or dropped
    kubectl exec client -- curl -s -o /dev/null -w '%{http_code}' --connect-timeout 3 -m 5 "$1" \
        2>/dev/null || true
}

step "no policy yet: both ports answer"
echo "8080: $(curl_code "http://$echo_ip:8080/")   9090: $(curl_code "http://$echo_ip:9090/")"

step "a CiliumNetworkPolicy: app=echo accepts app=client on TCP 8080 only"
kubectl apply -f - <<'CNP'
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: echo-8080, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: echo}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
CNP
agent="$(kubectl -n kube-system get pods -l k8s-app=cilium --field-selector spec.nodeName=real-node-0 -o jsonpath='{.items[0].metadata.name}')"
for _ in $(seq 20); do  # until the echo endpoint's policy is regenerated
    [ "$(curl_code "http://$echo_ip:9090/")" = "200" ] || break
    sleep 1
done
kubectl -n kube-system exec "$agent" -c cilium-agent -- timeout 8 cilium-dbg monitor --type drop > /tmp/ciliumctl-demo-drops.txt 2>&1 &
monitor=$!
sleep 2
echo "8080: $(curl_code "http://$echo_ip:8080/")   9090: $(curl_code "http://$echo_ip:9090/") (000: dropped)"
wait "$monitor" || true
step "cilium-dbg monitor --type drop in the agent of real-node-0"
grep -v '^command terminated' /tmp/ciliumctl-demo-drops.txt || true  # timeout's exit 124
rm -f /tmp/ciliumctl-demo-drops.txt

step "cilium connectivity test against the project's agent: a subset that fits in about a minute (the whole suite: no --test)"
cilium connectivity test --test '^no-policies/' --test '^client-ingress/' \
  --test '^all-ingress-deny/' --test '^health/' --timeout 5m | grep -v 'Skipping test'

cat <<'NEXT'

The "cilium" cluster is left running. Try:
  export KUBECONFIG="$(.venv/bin/cilium dev-cluster kubeconfig --name cilium)"
  kubectl -n kube-system exec ds/cilium -c cilium-agent -- cilium-dbg status --verbose
  kubectl -n kube-system exec ds/cilium -c cilium-agent -- cilium-dbg endpoint list
  kubectl delete cnp echo-8080    # and 9090 answers again
  .venv/bin/cilium dev-cluster down --name cilium
NEXT
