#!/usr/bin/env bash
# README command 2 (and CI's): set up a fresh machine, build once, run the whole test suite.
# Kernel tests need root (CI runs as root); run as another user they skip with a printed reason.
# TAPIO_TEST_KUBECONFIG=/path/to/kubeconfig runs the API tests against that server instead of the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh debug
# Against a real server the tests share one tapio-system (the agents' Leases, Insights about this machine's own
# processes): each test removes what it wrote there, and this run removes the namespace itself when it created it.
if [[ -n ${TAPIO_TEST_KUBECONFIG:-} ]] && command -v kubectl >/dev/null 2>&1 \
   && [[ $(kubectl --kubeconfig "$TAPIO_TEST_KUBECONFIG" --request-timeout=10s get namespace tapio-system 2>&1) == *NotFound* ]]; then
  trap 'kubectl --kubeconfig "$TAPIO_TEST_KUBECONFIG" delete namespace tapio-system --ignore-not-found --timeout=120s >/dev/null 2>&1 || true' EXIT
fi
# Serially: the kernel and end-to-end tests use real processes, cgroups and timers, and on a 2-core machine
# parallel tests starve each other (the cooperative pool is as wide as the machine).
swift test --skip-build --disable-xctest --no-parallel "$@"
