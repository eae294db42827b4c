#!/usr/bin/env bash
# Sets up a fresh machine for Tapio: the Debian packages it needs (installed only when missing), the generated
# BPF skeletons, and the Swift build. Idempotent: a second run only rebuilds what changed.
#   scripts/setup.sh            debug build (what the tests use)
#   scripts/setup.sh release    release build (what `tapio sniff` and the benchmarks use)
#   scripts/setup.sh none       packages and BPF skeletons only
set -euo pipefail
cd "$(dirname "$0")/.."

config="${1:-debug}"
case "$config" in debug|release|none) ;; *) echo "setup.sh: unknown configuration '$config' (debug|release|none)" >&2; exit 2;; esac

# libbpf/libelf/zlib: the BPF loader; bpftool: vmlinux.h and skeletons; pkg-config: SwiftPM finds libbpf;
# openssl: the test API server's certificates; python3: the tests' memory-leaking workloads; tmux: the terminal test.
# libcap2-bin (capsh): the test that loads the probes with only the DaemonSet's capabilities.
# prometheus (promtool), prometheus-alertmanager: the alert rules' unit tests and their end-to-end test.
# lua5.4: the Argo CD health checks' tests (config/argocd).
packages=(libbpf-dev libelf-dev zlib1g-dev bpftool pkg-config openssl python3 tmux procps iproute2 libcap2-bin prometheus prometheus-alertmanager lua5.4)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected the toolchain at /opt/swift)" >&2; exit 1; }

bash scripts/gen-bpf.sh

if [[ $config == none ]]; then
  :  # packages and skeletons only (scripts/image.sh builds its own way)
elif [[ $config == release ]]; then
  swift build -c release --product tapio
else
  swift build --build-tests
fi
