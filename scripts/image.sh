#!/usr/bin/env bash
# Builds Tapio's container image without Docker, in the Dockerfile's runtime layout: the release binary (static
# Swift runtime) at /usr/local/bin/tapio, the shared C libraries it links (libbpf, libelf, zlib, libc — copied from
# this machine as ldd resolves them, with the dynamic loader), the CA bundle, /etc/passwd with uid 65532, entrypoint
# `tapio`, user 65532:65532, port 9464. Writes a docker-archive tarball (what `docker save` writes; `ctr images
# import`, `docker load` and `podman load` read it) and imports it into containerd's k8s.io namespace when a
# containerd socket is there.
#
#   scripts/image.sh [IMAGE_REF] [OUT.tar]      defaults: localhost/tapio:dev, .build/image/tapio.tar
#   CONTAINERD_ADDRESS=/run/containerd/containerd.sock   where to import (NO_IMPORT=1: only the tarball)
#
# Deploy it with an overlay that sets the image (see README, "Deploying to a cluster").
set -euo pipefail
cd "$(dirname "$0")/.."

ref="${1:-localhost/tapio:dev}"
out="${2:-.build/image/tapio.tar}"
case "$ref" in *:*) ;; *) echo "image.sh: IMAGE_REF needs a tag, e.g. localhost/tapio:dev (got '$ref')" >&2; exit 2;; esac
address="${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}"

bash scripts/setup.sh none
bin=.build-image/tapio
bash scripts/build-image-binary.sh "$bin"

root=$(mktemp -d /tmp/tapio-image.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp"
install -m 0755 "$bin" "$root/usr/local/bin/tapio"
printf 'root:x:0:0:root:/root:/bin/false\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
# Every library the binary needs, at the path the loader looks for it (no Swift runtime: it is linked in).
while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done < <(ldd "$bin" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }')
if ldd "$bin" | grep -q 'libswift'; then echo "image.sh: the binary links the Swift runtime dynamically" >&2; exit 1; fi

mkdir -p "$(dirname "$out")"
python3 scripts/docker_archive.py "$root" "$ref" "$out"
echo "image.sh: wrote $out ($ref, $(du -h "$out" | cut -f1))" >&2

if [[ -z ${NO_IMPORT:-} && -S $address ]] && command -v ctr >/dev/null; then
  ctr --address "$address" -n k8s.io images import "$out" >&2
  echo "image.sh: imported $ref into containerd ($address, namespace k8s.io)" >&2
fi
