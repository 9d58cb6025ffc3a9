#!/usr/bin/env bash
# `make demo`: a 3-node dev cluster built from the real Kubernetes binaries, and ciliumctl
# pointed at it. Run from the repository root with .venv/bin on PATH (the Makefile does).
set -euo pipefail

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "cilium version --client"
cilium version --client

step "cilium dev-cluster up --nodes 3"
cilium dev-cluster up --nodes 3

eval "$(cilium dev-cluster env)"

step "kubectl get nodes -o wide"
kubectl get nodes -o wide

step "cilium version (against the dev cluster)"
cilium version

step "cilium dev-cluster status"
cilium dev-cluster status

step "cilium install --wait (Helm, the bundled chart, values detected for the dev cluster)"
version_json=$(cilium version -o json)
if grep -q '"installed": true' <<<"$version_json"; then
    echo "Cilium is already installed on this dev cluster; keeping it."
else
    cilium install --wait
fi

step "cilium status --wait"
cilium status --wait

step "cilium reconcile apply --source examples/gitops (chart, values, node configs, policies)"
cilium reconcile apply --source examples/gitops

step "cilium reconcile diff --source examples/gitops (exit 0: the cluster matches the directory)"
cilium reconcile diff --source examples/gitops

step "cilium config view"
# captured first: `head` exits after 20 lines, and under pipefail the writer's broken pipe
# would fail the demo
view=$(cilium config view)
printf '%s\n' "$view" | head -20
echo "..."

step "cilium config node: one CiliumNodeConfig and the effective config of a node"
cilium config node set demo-xdp --selector kubernetes.io/hostname=kwok-node-0 \
  bpf-lb-acceleration=native hubble-event-queue-size=32768
cilium config node list
cilium config node effective kwok-node-0 --overrides-only
cilium config node plan

step "cilium sysdump --quick: a redacted troubleshooting archive and its summary"
rm -f demo-sysdump.zip
cilium sysdump --quick --output-filename demo-sysdump
python -c "import zipfile; z = zipfile.ZipFile('demo-sysdump.zip'); \
print(z.read(next(n for n in z.namelist() if n.endswith('index.md'))).decode())"

"$(dirname "$0")/demo-realnodes.sh"
"$(dirname "$0")/demo-cilium.sh"

cat <<'NEXT'

Next commands to try:
  eval "$(.venv/bin/cilium dev-cluster env)"     # kubectl, helm and KUBECONFIG for this shell
  kubectl get pods -A
  .venv/bin/cilium version -o json
  .venv/bin/cilium upgrade --dry-run --set debug.enabled=true   # per-object diff, no change
  .venv/bin/cilium hubble enable --ui
  .venv/bin/cilium status -o json
  .venv/bin/cilium dev-cluster status -o json
  .venv/bin/cilium dev-cluster down              # stop it and remove its state
NEXT
