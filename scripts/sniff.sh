#!/usr/bin/env bash
# README command 1: set up a fresh machine, build Tapio (release) and run `tapio sniff` on this machine.
# Arguments are passed to `tapio sniff` (e.g. `scripts/sniff.sh -o json --duration 30s`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh release >&2
exec "$(swift build -c release --show-bin-path)/tapio" sniff "$@"
