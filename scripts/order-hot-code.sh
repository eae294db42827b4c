#!/bin/bash
# Issue 14: the agent's code that rest runs, first and together in the image's binary.
#
# An idle agent runs ~5 MiB of its code, spread thinly over the 40 MiB of its static binary's text; the kernel maps
# each touched page with its 64-KiB neighbourhood (fault-around), so the text it keeps resident is twice what it runs.
# This profiles which functions lie on the pages an agent at rest touches and writes them, in address order, to
# config/build/hot-code.order.gz, which scripts/build-image-binary.sh gives lld (--symbol-ordering-file): those
# functions are then laid out first, contiguously. Only functions in a section of their own are listed (all of
# Tapio's and its packages' code, built with function sections; most of the prebuilt Swift runtime's): a listed
# function's whole section moves, and an object without function sections would bring all its code along.
#
# How the pages are found exactly: the disk's readahead is set to 0 for the run (restored after), the binary's page
# cache dropped, and the agent releases its start-up pages at 30 s (--release-startup-pages); from then on a page it
# touches is read alone and nothing around it is cached for fault-around to map, so after 4 minutes of rest the
# present bits of its text (/proc/PID/pagemap) are the pages rest touched.
#
# Root (the benchmark makes real cgroups; readahead is a device setting); ~7 minutes with the builds. Usage:
#   swift build -c release --product tapio-bench
#   bash scripts/order-hot-code.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .build/release/tapio-bench ] || { echo "build first: swift build -c release --product tapio-bench" >&2; exit 2; }
build=${TAPIO_IMAGE_BUILD_PATH:-.build-image}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TAPIO_LINK_MAP=$work/link.map bash scripts/build-image-binary.sh "$build/tapio-symbols" --keep-symbols
bin=$build/tapio-symbols
out=config/build/hot-code.order.gz
# The disk under the binary's filesystem (a partition's parent; a whole disk is its own).
src=$(df --output=source "$bin" | tail -1)
dev=$(lsblk -no PKNAME "$src" 2>/dev/null | head -1 || true)
[ -n "$dev" ] || dev=$(basename "$src")
ra=/sys/block/$dev/queue/read_ahead_kb
[ -w "$ra" ] || { echo "cannot set readahead: $ra is not writable (the binary is on $src; LVM and overlay filesystems are not handled)" >&2; exit 2; }
saved=$(cat "$ra")
bench=
# Whatever happens: readahead back, the benchmark (and its agent and 100 cgroups) stopped, the scratch removed.
trap 'echo "$saved" > "$ra"; [ -n "$bench" ] && { kill "$bench" 2>/dev/null; wait "$bench" 2>/dev/null; }; rm -rf "$work"' EXIT
echo 0 > "$ra"
python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)' "$bin"
mkdir -p "$work/release"
cp .build/release/tapio-bench "$work/release/"
ln -s "$(realpath "$bin")" "$work/release/tapio"
TAPIO_AT_REST_SECONDS=300 "$work/release/tapio-bench" agent.at-rest-100-pods > "$work/bench.out" 2>&1 &
bench=$!
sleep 260
agent=$(pgrep -f "$work/release/tapio agent" | head -1)
[ -n "$agent" ] || { echo "no agent running; the benchmark said:" >&2; cat "$work/bench.out" >&2; exit 1; }
# Functions with a section of their own, as the link map names them; no whole objects (--whole-below 0).
python3 scripts/resident-code.py "$agent" "$bin" --order "$work/order" --map "$work/link.map" --whole-below 0
wait $bench || true
bench=
mkdir -p "$(dirname "$out")"
gzip -9n < "$work/order" > "$out"
echo "wrote $out ($(wc -l < "$work/order") functions)"
