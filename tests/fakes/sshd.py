"""A real OpenSSH server on 127.0.0.1 for the ssh provider's tests: its own host key, config and
authorized keys in a temporary directory, so nothing of the machine's own sshd is used."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from debian_cloud_tests import sshkeys
from debian_cloud_tests.spec import Arch, LaunchSpec

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    port: int
    user: str
    host_key: str  # "ssh-ed25519 AAAA…"
    client_key: Path
    log: Path
    #: the network namespace sshd listens in, when it has one of its own (enter it to connect)
    netns: str | None = None
    address: str = "127.0.0.1"
    #: the file sshd reads the authorised keys from at every login (a test may add keys to it)
    authorized_keys: Path | None = None


def spec_for(server: Sshd, **options: str) -> LaunchSpec:
    """The ssh provider's launch spec for *server* (an option given empty is left out)."""
    given = {"host": f"{server.user}@127.0.0.1:{server.port}", "ssh_key": str(server.client_key),
             "host_key": server.host_key, **options}
    return LaunchSpec(image="debian-12-genericcloud-amd64", arch=Arch.AMD64, run_id="r1",
                      boot_timeout=20, options={k: v for k, v in given.items() if v})


def unavailable() -> str | None:
    """Why a real sshd cannot run here, or None."""
    if not Path(SSHD).exists():
        return f"{SSHD} not installed"
    if os.geteuid() != 0:
        return "sshd with its own config needs root here"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_private_run(run_files: dict[str, str], tmp: Path, command: list[str],
                      hide: tuple[str, ...] = (), own_network: bool = False) -> list[str]:
    """*command* in a mount namespace of its own whose /run is a fresh tmpfs holding *run_files*
    (path under /run → content): the host's own /run is neither read nor changed.  Each directory
    in *hide* that exists is covered with an empty tmpfs there (the host's stays as it is).  With
    *own_network*, also in a network namespace with only loopback: what its sessions send (apt,
    DNS) reaches nothing."""
    plant = tmp / "run"
    plant.mkdir(parents=True, exist_ok=True)
    for name, content in run_files.items():
        (plant / name).parent.mkdir(parents=True, exist_ok=True)
        (plant / name).write_text(content)
    covers = "".join(f"if [ -d {path} ]; then mount -t tmpfs tmpfs {path}; fi && " for path in hide)
    lo_up = f"{shutil.which('ip')} link set lo up && " if own_network else ""
    script = (f"{lo_up}mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/sshd && "
              f"cp -a {plant}/. /run/ && {covers}exec \"$@\"")
    net = ["--net"] if own_network else []
    return ["unshare", "--mount", *net, "--propagation", "private", "sh", "-c", script, "sh", *command]


def _listening(address: str, port: int, log: Path, own_network: bool) -> bool:
    """Whether sshd answers yet (in its own namespace: whether it says it listens)."""
    if own_network:
        return f"Server listening on {address} port {port}" in log.read_text()
    try:
        socket.create_connection((address, port), timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def running_sshd(tmp: Path, run_files: dict[str, str] | None = None,
                 hide: tuple[str, ...] = (), own_network: bool = False,
                 address: str = "127.0.0.1", port: int | None = None,
                 extra_config: str = "") -> Iterator[Sshd]:
    """Start ``sshd -D`` with a fresh ed25519 host key; the client key is authorised for root.

    *run_files* are planted under a private /run the sessions see (e.g. cloud-init's state in
    /run/cloud-init), for checks that read what a guest's boot left there; the directories in
    *hide* look empty to the sessions (a platform feature the host has, planted away).  It
    listens on *address* (a loopback address) and *port* (default: a free one); *extra_config*
    is added to its sshd_config (e.g. a ForceCommand standing in for a guest's commands)."""
    tmp.mkdir(parents=True, exist_ok=True)
    host = sshkeys.generate("host")
    host_key = sshkeys.write_private(host, tmp / "host_ed25519")
    client = sshkeys.generate("client")
    client_key = sshkeys.write_private(client, tmp / "client_ed25519")
    (tmp / "authorized_keys").write_text(client.public_openssh + "\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    port = port or _free_port()
    config = tmp / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {host_key}\nPidFile none\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nLogLevel VERBOSE\n" + extra_config)
    log = tmp / "sshd.log"
    command = [SSHD, "-D", "-e", "-f", str(config)]
    if run_files or hide or own_network:
        command = _with_private_run(run_files or {}, tmp, command, hide, own_network)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        deadline = time.monotonic() + 10
        while not _listening(address, port, log, own_network):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield Sshd(port, "root", " ".join(host.public_openssh.split()[:2]), client_key, log,
                   f"/proc/{proc.pid}/ns/net" if own_network else None, address,
                   tmp / "authorized_keys")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
