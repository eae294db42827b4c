# syntax=docker/dockerfile:1
# Tapio: one image for `tapio agent` (DaemonSet) and `tapio operator` (Deployment).
#
#   docker build -t ghcr.io/tapio-io/tapio:v0.1.0 .
#
# Stage 1 builds the BPF skeleton and the release binary with the Swift toolchain on Debian bookworm; stage 2 is
# bookworm-slim with only the shared libraries the binary links (libbpf, libelf, zlib). The BPF object is embedded
# in the binary through the skeleton, and CO-RE relocates it on the node's kernel at load, so the image runs on any
# BTF-enabled kernel regardless of the build host's.

ARG SWIFT_VERSION=6.2
ARG DEBIAN_VERSION=bookworm

FROM swift:${SWIFT_VERSION}-${DEBIAN_VERSION} AS build
# libbpf-dev: headers and libbpf.so for CLibbpf and the BPF programs (bpf_helpers.h); libelf-dev/zlib1g-dev: libbpf's
# link dependencies; bpftool: vmlinux.h and the skeleton. The Swift toolchain's own clang compiles the BPF C (it has
# the BPF target); Debian's `clang` package is not installed because it would replace /usr/bin/clang, which the
# Swift toolchain relies on for C targets.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf-dev libelf-dev zlib1g-dev bpftool pkg-config make \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Resolve dependencies in their own layer so source edits do not refetch them.
COPY Package.swift Package.resolved* ./
RUN swift package resolve

COPY . .
# Kernel BTF for vmlinux.h: the build host's /sys/kernel/btf/vmlinux by default (BuildKit mounts /sys); pass
# --build-arg TAPIO_VMLINUX_BTF=path/in/context on hosts without BTF. Any kernel's BTF works, thanks to CO-RE.
ARG TAPIO_VMLINUX_BTF=/sys/kernel/btf/vmlinux
RUN TAPIO_VMLINUX_BTF="${TAPIO_VMLINUX_BTF}" ./scripts/gen-bpf.sh
# Static Swift runtime and Foundation: the runtime stage needs no Swift libraries, only libbpf/libelf/zlib. The code
# an idle agent runs is laid out first (see the script).
RUN bash scripts/build-image-binary.sh /out/tapio

FROM debian:${DEBIAN_VERSION}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 libelf1 zlib1g ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/tapio /usr/local/bin/tapio
# Non-root by default: the operator runs as 65532 (config/operator). The agent's DaemonSet overrides this with
# runAsUser 0 plus only CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, because
# Kubernetes grants added capabilities to uid 0 only (no ambient capabilities).
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["tapio"]
CMD ["--help"]
