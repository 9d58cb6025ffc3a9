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

cat <<'NEXT'

Next commands to try:
  eval "$(.venv/bin/cilium dev-cluster env)"     # kubectl, helm and KUBECONFIG for this shell
  kubectl get pods -A
  .venv/bin/cilium version -o json
  .venv/bin/cilium dev-cluster status -o json
  .venv/bin/cilium dev-cluster down              # stop it and remove its state
NEXT
