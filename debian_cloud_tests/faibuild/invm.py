"""`build --in-vm`: run fai-diskimage inside a disposable QEMU machine made for this one build.

The build host then runs no build as root and needs no vfat, loop or FAI of its own: the builder
VM has them.  The builder image is a Debian cloud image with FAI, made by the test-image builder
(cached); it boots as the QEMU provider boots any machine (overlay, seed, verified SSH, destroyed
however the run ends).  The config space goes in as a tar stream; the image comes out on a second
disk the host created sparse, written with only its allocated blocks, so no copy of the image
crosses SSH and the host reads the result as a plain raw file.  The guest finds that disk by a
nonce the host wrote at its start, which the image then overwrites.  The build runs for the image's
own architecture: an arm64 image is built in an arm64 machine (emulated on an amd64 host).
"""

from __future__ import annotations

import io
import secrets
import shlex
import tarfile
import time
from pathlib import Path

import paramiko

from .. import paths
from ..lifecycle import Fleet, Instance
from ..provider import get_provider
from ..providers.qemu.settings import QemuHooks
from ..rundir import new_run_id
from ..spec import Arch, HostKeySource, KeepInstance, LaunchSpec
from ..testimage.builder import Recipe, build_image
from . import fai
from .errors import BuildError
from .spec import BuildSpec

#: what fai-diskimage needs besides a cloud image (mkfs.vfat for an ESP, qemu-img, sfdisk)
BUILDER_PACKAGES = ("fai-server", "fai-setup-storage", "qemu-utils", "dosfstools", "fdisk",
                    "parted", "xz-utils", "zstd")
#: FAI installs with apt and dpkg: give it memory, and room for the raw image beside the system
BUILDER_SHAPE = "2x2048"
GUEST_CSPACE = "/srv/fai/config"
GUEST_WORK = "/var/tmp/dct-build"
#: the output disk: the one block device that starts with the nonce
FIND_OUTPUT = ("for d in /sys/block/*; do dev=/dev/${{d##*/}}; [ \"$(head -c {n} $dev 2>/dev/null)\" "
               "= {nonce} ] && echo $dev; done")
#: FAI prints as it goes: this long without a byte means the build hangs
SILENCE_TIMEOUT = 1800.0


def builder_recipe(spec: BuildSpec) -> Recipe:
    """The builder VM's image: the build's release and architecture, with FAI."""
    return Recipe(release=spec.release, arch=spec.arch, size_gib=3,
                  extra_packages=BUILDER_PACKAGES, purpose="fai-builder")


def run(spec: BuildSpec, cspace: Path, raw: Path, log: Path) -> fai.FaiRun:
    """Build *spec* in a fresh VM into *raw* (created here), FAI's output into *log*."""
    builder = build_image(builder_recipe(spec))
    nonce = f"dct-output-{secrets.token_hex(8)}"
    with raw.open("wb") as fh:
        fh.write(nonce.encode())
        fh.truncate(spec.size_bytes)  # sparse: the guest writes only the blocks the image uses
    provider = get_provider("qemu")
    launch = provider.validate(LaunchSpec(
        image=str(builder), arch=Arch(spec.arch), instance_type=BUILDER_SHAPE,
        disk_size=f"+{spec.size_bytes // 1024**3 + 2}G", run_id=new_run_id(),
        host_key_source=HostKeySource.INJECTED, ca_certs=paths.local_ca_certs(),
        # open: the builder is not a candidate image, and may use a proxy on this host
        options={"qemu_network": "open"}, hooks=QemuHooks(extra_disk=raw.resolve())))
    fleet = Fleet(provider, launch, KeepInstance.NEVER)
    try:
        inst = fleet.launch()
        client = _client(inst)
        _upload(client, cspace)
        image = f"{GUEST_WORK}/{spec.name}.raw"
        command = fai.command(spec, Path(GUEST_CSPACE), Path(image))
        with log.open("wb") as out:
            out.write(f"# in a builder VM ({builder.name}): {shlex.join(command)}\n".encode())
            rc = _stream(client, "sudo -n env LC_ALL=C " + shlex.join(command), out)
            text = log.read_text(errors="replace")
            if rc != 0:
                raise BuildError(f"fai-diskimage failed in the builder VM (exit {rc}): "
                                 f"{fai.first_error(text)}; log: {log}")
            disk = _output(client, "sudo -n sh -c " + shlex.quote(
                FIND_OUTPUT.format(n=len(nonce), nonce=nonce))).split()
            if len(disk) != 1:
                raise BuildError(f"the builder VM does not see its output disk (found {disk})")
            # only the image's allocated blocks cross; the first block always (it holds the nonce)
            rc = _stream(client, f"sudo -n sh -c 'qemu-img convert -n --target-is-zero -f raw -O raw "
                         f"{image} {disk[0]} && dd if={image} of={disk[0]} bs=4096 count=1 "
                         "conv=notrunc,fsync status=none && sync'", out)
            if rc != 0:
                raise BuildError(f"cannot write the image out of the builder VM (exit {rc}); log: {log}")
        version = _output(client, "dpkg-query -W -f '${Version}' fai-client") or "unknown"
        return fai.FaiRun(logdir=fai.logdir(text), fai_version=version)
    finally:
        fleet.close(failed=False)


def _client(inst: Instance) -> paramiko.SSHClient:
    if inst.ready.client is None:
        raise BuildError(f"cannot log in to the builder VM: {inst.ready.login_error}")
    return inst.ready.client


def _upload(client: paramiko.SSHClient, cspace: Path) -> None:
    """The config space as one tar stream, owned by root as FAI expects."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(cspace, arcname=".")
    chan = client.get_transport().open_session()  # type: ignore[union-attr]
    chan.exec_command(f"sudo -n sh -c 'rm -rf {GUEST_CSPACE} {GUEST_WORK} && mkdir -p "
                      f"{GUEST_CSPACE} {GUEST_WORK} && tar --no-same-owner -C {GUEST_CSPACE} -xf -'")
    chan.sendall(buf.getvalue())
    chan.shutdown_write()
    err = chan.makefile_stderr("rb").read().decode(errors="replace")
    if chan.recv_exit_status() != 0:
        raise BuildError(f"cannot copy the config space into the builder VM: {err.strip()[:300]}")


def _stream(client: paramiko.SSHClient, command: str, out: io.BufferedWriter) -> int:
    """Run *command*, its output appended to *out* as it comes; its exit status."""
    chan = client.get_transport().open_session()  # type: ignore[union-attr]
    chan.set_combine_stderr(True)
    chan.settimeout(SILENCE_TIMEOUT)
    chan.exec_command(command)
    try:
        while data := chan.recv(65536):
            out.write(data)
            out.flush()
    except TimeoutError:
        raise BuildError(f"the build printed nothing for {SILENCE_TIMEOUT:.0f} s: it hangs") from None
    while not chan.exit_status_ready():  # the output closes a moment before the status comes
        time.sleep(0.05)
    return chan.recv_exit_status()


def _output(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, _ = client.exec_command(command, timeout=60)
    return stdout.read().decode(errors="replace").strip()
