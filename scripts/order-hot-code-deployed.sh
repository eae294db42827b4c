#!/bin/bash
# Issue 14: the code a *deployed* agent runs, put first in the hot-code list (config/build/hot-code.order.gz).
#
# scripts/order-hot-code.sh lists what the agent of `agent.at-rest-100-pods` touches: the emulator, no probes, no pod
# starting. A deployed agent also answers the kubelet's liveness and readiness probes every 10 s, speaks HTTP/2 over
# TLS to a real kube-apiserver and sees pods start and stop. Measured on the realk8s node (4 December): with the
# operator scaled away and the binary's page cache dropped, the agent mapped 14.3 MiB of text again within two
# minutes of rest, 5.1 MiB of it outside the listed block, in ~80 separate 64-KiB neighbourhoods (each fault maps
# its neighbourhood from a page cache that this kernel's exec readahead fills 8 MiB at a time).
#
# This measures a deployed agent the way order-hot-code.sh measures the benchmark's: the disk's readahead set to 0
# (restored after), the operator scaled to 0 (its pages would be cached too; restored after), the agent's pod
# recreated so that it opens its binary with no readahead, and after its start-up release (30 s) a burst of pods
# (namespace tapio-hot-code: 25 pods × 4 containers, busybox `sleep`; deleted after) and four minutes of rest. The
# text pages then present are the pages it touched. Their functions go first in the list — and the objects built
# without function sections (the toolchain's Foundation and parts of the Swift runtime) that hold a touched page and
# are smaller than 64 KiB, whole (`resident-code.py --map`) — the previous list's others after them (what the
# benchmark's agent runs and this one did not).
#
# Needs: root; KUBECONFIG at a cluster whose node runs on this machine, with Tapio deployed from this tree's image
# (`scripts/image.sh`; the script rebuilds the binary with symbols and checks its layout against the running
# agent's); the pod image `localhost/busybox:1` (TAPIO_BURST_IMAGE) on that node; containerd's store on a disk
# (CONTAINERD_ROOT, default /var/lib/containerd; or name the disk: TAPIO_READAHEAD_DEV=vda). ~5 minutes. Usage:
#   bash scripts/order-hot-code-deployed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ns=${TAPIO_NAMESPACE:-tapio-system}
burst_image=${TAPIO_BURST_IMAGE:-localhost/busybox:1}
build=${TAPIO_IMAGE_BUILD_PATH:-.build-image}
out=config/build/hot-code.order.gz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TAPIO_LINK_MAP=$work/link.map bash scripts/build-image-binary.sh "$build/tapio-symbols" --keep-symbols
bin=$build/tapio-symbols
agent_pid() {
  local p
  for p in $(pgrep -f "tapio agent" || true); do
    [[ $(readlink "/proc/$p/exe" 2>/dev/null) == /usr/local/bin/tapio ]] && { echo "$p"; return; }
  done
}
layout() { readelf -SW "$1" | awk '/^ +\[/ && $0 !~ /\.debug|\.symtab|\.strtab|\.shstrtab/ {print $2, $4, $5, $6}'; }
old=$(agent_pid)
[ -n "$old" ] || { echo "no deployed agent (a 'tapio agent' process running /usr/local/bin/tapio) on this machine" >&2; exit 2; }
cmp -s <(layout "$bin") <(layout "/proc/$old/exe") || {
  echo "the deployed agent's binary is not this tree's image (section layout differs): run scripts/image.sh and roll the DaemonSet first" >&2; exit 2; }
# The disk under containerd's image store (the container sees an overlay; its files' pages are the disk's), or
# TAPIO_READAHEAD_DEV (a name under /sys/block).
src=$(df --output=source "${CONTAINERD_ROOT:-/var/lib/containerd}" | tail -1)
dev=${TAPIO_READAHEAD_DEV:-$(lsblk -no PKNAME "$src" 2>/dev/null | head -1 || true)}
[ -n "$dev" ] || dev=$(basename "$src")
ra=/sys/block/$dev/queue/read_ahead_kb
[ -w "$ra" ] || { echo "cannot set readahead: $ra is not writable" >&2; exit 2; }
saved=$(cat "$ra")
replicas=$(kubectl -n "$ns" get deploy tapio-operator -o jsonpath='{.spec.replicas}')
recreated=
restore() {
  echo "$saved" > "$ra"
  # The agent opened its binary with readahead 0 and would keep that: start it again as a node would.
  [ -n "$recreated" ] && kubectl -n "$ns" delete pod -l app.kubernetes.io/component=agent --wait=false >/dev/null || true
  kubectl delete namespace tapio-hot-code --ignore-not-found --wait=false >/dev/null || true
  kubectl -n "$ns" scale deploy tapio-operator --replicas="$replicas" >/dev/null || true
  rm -rf "$work"
}
trap restore EXIT
kubectl -n "$ns" scale deploy tapio-operator --replicas=0 >/dev/null
kubectl -n "$ns" wait --for=delete pod -l app.kubernetes.io/component=operator --timeout=120s >/dev/null 2>&1 || true
echo 0 > "$ra"
pod=$(kubectl -n "$ns" get pods -l app.kubernetes.io/component=agent -o jsonpath='{.items[0].metadata.name}')
recreated=1
kubectl -n "$ns" delete pod "$pod" --wait=true >/dev/null
kubectl -n "$ns" rollout status ds tapio-agent --timeout=180s >/dev/null
pod=$(kubectl -n "$ns" get pods -l app.kubernetes.io/component=agent -o jsonpath='{.items[0].metadata.name}')
echo "agent pod $pod: waiting for its start-up release"
for i in $(seq 150); do
  kubectl -n "$ns" logs "$pod" 2>/dev/null | grep -q "released start-up pages" && break
  [ "$i" = 150 ] && { echo "agent pod $pod logged no start-up release in 5 minutes (is --release-startup-pages off?)" >&2; exit 1; }
  sleep 2
done
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: tapio-hot-code}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: burst, namespace: tapio-hot-code}
spec:
  replicas: 25
  selector: {matchLabels: {app: burst}}
  template:
    metadata: {labels: {app: burst}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
$(for c in a b c d; do echo "      - {name: $c, image: $burst_image, imagePullPolicy: IfNotPresent, command: [sleep, \"100000\"], resources: {limits: {memory: 32Mi}}}"; done)
EOF
kubectl -n tapio-hot-code rollout status deploy burst --timeout=300s >/dev/null
echo "burst running; four minutes of rest"
sleep 240
agent=$(agent_pid)
[ -n "$agent" ] || { echo "the agent is no longer running (pod $pod); nothing measured" >&2; exit 1; }
python3 scripts/resident-code.py "$agent" "$bin" --mapped-as /usr/local/bin/tapio --order "$work/deployed" \
  --map "$work/link.map"
# The deployed agent's functions first; then the previous list's others, in their order (awk: the first of each).
{ cat "$work/deployed"; [ -f "$out" ] && gunzip -c "$out"; } | awk 'NF && !seen[$0]++' > "$work/order"
gzip -9n < "$work/order" > "$out"
echo "wrote $out ($(wc -l < "$work/deployed") functions from the deployed agent first, $(wc -l < "$work/order") in all)"
