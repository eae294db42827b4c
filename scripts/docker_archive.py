#!/usr/bin/env python3
"""Writes a one-layer image as a docker-archive tarball (the `docker save` format) from a root filesystem directory.

usage: docker_archive.py ROOTFS IMAGE_REF OUT.tar

Reproducible: entries sorted, owned by root, mtime 0. The image runs `tapio` as 65532:65532, as the Dockerfile's does.
"""
import hashlib, io, json, os, sys, tarfile

rootfs, ref, out = sys.argv[1:4]

def layer_bytes(root):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                paths.append(os.path.join(dirpath, name))
        for path in sorted(paths):
            info = tar.gettarinfo(path, arcname=os.path.relpath(path, root))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()

layer = layer_bytes(rootfs)
layer_digest = hashlib.sha256(layer).hexdigest()
config = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "User": "65532:65532",
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Entrypoint": ["tapio"],
        "Cmd": ["--help"],
        "ExposedPorts": {"9464/tcp": {}},
        "WorkingDir": "/",
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
    "history": [{"created_by": "scripts/image.sh"}],
}
config_bytes = json.dumps(config, sort_keys=True).encode()
config_digest = hashlib.sha256(config_bytes).hexdigest()
manifest = [{"Config": config_digest + ".json", "RepoTags": [ref], "Layers": [layer_digest + "/layer.tar"]}]

def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))

with tarfile.open(out, "w") as tar:
    add(tar, config_digest + ".json", config_bytes)
    add(tar, layer_digest + "/layer.tar", layer)
    add(tar, "manifest.json", json.dumps(manifest).encode())
