#!/usr/bin/env bash
# Generates what the CTapioBPF C target needs before `swift build`: vmlinux.h from the running kernel's BTF,
# every bpf/*.bpf.c compiled for BPF (CO-RE), linked into one object, and its skeleton header (which embeds
# the object, so the binary needs no .o at run time) at Sources/CTapioBPF/generated/tapio.skel.h.
# Idempotent and fast when nothing changed (make-style timestamps). Needs clang with the BPF target (the
# Swift toolchain's), bpftool, and libbpf-dev's headers.
#   TAPIO_VMLINUX_BTF=/path/to/btf  use another kernel's BTF (default /sys/kernel/btf/vmlinux)
#   CLANG=/path/to/clang            another clang
set -euo pipefail
cd "$(dirname "$0")/.."

out=bpf/.output
gen=Sources/CTapioBPF/generated
btf="${TAPIO_VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"
clang="${CLANG:-$(command -v clang || true)}"
mkdir -p "$out" "$gen"

die() { echo "gen-bpf.sh: $*" >&2; exit 1; }
[[ -n $clang ]] || die "clang not found (the Swift toolchain's clang has the BPF target; set CLANG=)"
command -v bpftool >/dev/null || die "bpftool not found (apt-get install bpftool)"
[[ -r $btf ]] || die "no kernel BTF at $btf (CONFIG_DEBUG_INFO_BTF); set TAPIO_VMLINUX_BTF to a BTF file"
[[ -r /usr/include/bpf/bpf_helpers.h ]] || die "libbpf headers missing (apt-get install libbpf-dev)"

# newer TARGET DEPS…: true when TARGET is missing or older than any dependency.
newer() { local t=$1; shift; [[ -e $t ]] || return 0; local d; for d in "$@"; do [[ $d -nt $t ]] && return 0; done; return 1; }

# vmlinux.h only changes with the kernel: regenerate when the BTF file is newer (a reboot into another kernel).
if newer "$out/vmlinux.h" "$btf"; then
  bpftool btf dump file "$btf" format c > "$out/vmlinux.h.tmp"
  mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi

arch=$(uname -m)
case "$arch" in
  x86_64) target_arch=x86 ;;
  aarch64) target_arch=arm64 ;;
  *) die "unsupported architecture $arch" ;;
esac

headers=(bpf/*.h "$out/vmlinux.h")
objs=()
for src in bpf/*.bpf.c; do
  name=$(basename "$src" .bpf.c)
  obj="$out/$name.bpf.o"
  objs+=("$obj")
  if newer "$obj" "$src" "${headers[@]}" "$0"; then
    "$clang" -O2 -g -Wall -target bpf -D__TARGET_ARCH_$target_arch \
      -I"$out" -Ibpf -idirafter /usr/include -c "$src" -o "$obj"
  fi
done

# One linked object (a single copy of the shared maps) and its skeleton. The skeleton is named after the
# object: tapio.bpf.o -> struct tapio_bpf, tapio_bpf__elf_bytes().
mkdir -p "$out/linked"
linked="$out/linked/tapio.bpf.o"
if newer "$gen/tapio.skel.h" "${objs[@]}"; then
  bpftool gen object "$linked" "${objs[@]}"
  bpftool gen skeleton "$linked" name tapio_bpf > "$gen/tapio.skel.h.tmp"
  mv "$gen/tapio.skel.h.tmp" "$gen/tapio.skel.h"
fi

