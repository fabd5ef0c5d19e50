"""A libvirt Vagrant box: the qcow2 image as ``box.img``, ``metadata.json`` saying libvirt and the
disk's virtual size, and a Vagrantfile with nothing of its own, in a tar (vagrant-libvirt's
format)."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

BOX_VAGRANTFILE = 'Vagrant.configure("2") do |config|\nend\n'


def make_box(image: Path, out: Path, provider: str = "libvirt") -> Path:
    """*image* (qcow2) packed as a box for *provider* at *out*."""
    from debian_cloud_tests.providers.qemu import image as image_mod

    meta = {"provider": provider, "format": "qcow2",
            "virtual_size": math.ceil(image_mod.inspect(image).virtual_size / 1024**3)}
    with tarfile.open(out, "w") as tar:
        for name, data in (("metadata.json", json.dumps(meta).encode()),
                           ("Vagrantfile", BOX_VAGRANTFILE.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(image, arcname="box.img")
    return out
