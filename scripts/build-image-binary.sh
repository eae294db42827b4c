#!/bin/bash
# The image's `tapio` binary: release, the Swift runtime and Foundation linked in (`--static-swift-stdlib`), stripped,
# and the code an agent at rest runs laid out first and together (config/build/hot-code.order.gz, made by
# scripts/order-hot-code.sh): every function in a section of its own (`-function-sections`, `-ffunction-sections`)
# and lld placing the listed ones first (`--symbol-ordering-file`). An idle agent then keeps less of its text
# resident (README, "The agent's memory"). The order changes where code is, never what it does; a stale list only
# makes the layout less tight. Built in .build-image ($TAPIO_IMAGE_BUILD_PATH), apart from the development builds:
# SwiftPM does not recompile for changed -Xswiftc/-Xcc flags.
#
#   bash scripts/build-image-binary.sh OUT [--keep-symbols]     (--keep-symbols: not stripped, for profiling)
set -euo pipefail
out=$(realpath -m "${1:?usage: build-image-binary.sh OUT [--keep-symbols]}")
cd "$(dirname "$0")/.."
strip=(-Xlinker -s)
[ "${2:-}" = "--keep-symbols" ] && strip=()
# TAPIO_LINK_MAP=FILE: lld's link map too (which input section holds which symbol; scripts/resident-code.py --map).
# It changes nothing in the binary.
map=()
[ -n "${TAPIO_LINK_MAP:-}" ] && map=(-Xlinker "-Map=$(realpath -m "$TAPIO_LINK_MAP")")
order=$(mktemp)
trap 'rm -f "$order"' EXIT
ordering=()
if [ -f config/build/hot-code.order.gz ]; then
  gunzip -c config/build/hot-code.order.gz > "$order"
  ordering=(-Xlinker --symbol-ordering-file="$order" -Xlinker --no-warn-symbol-ordering)
fi
flags=(-c release --product tapio --static-swift-stdlib --build-path "${TAPIO_IMAGE_BUILD_PATH:-.build-image}")
swift build "${flags[@]}" "${strip[@]}" "${map[@]}" \
  -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xswiftc -use-ld=lld "${ordering[@]}"
install -D -m 0755 "$(swift build "${flags[@]}" --show-bin-path)/tapio" "$out"
