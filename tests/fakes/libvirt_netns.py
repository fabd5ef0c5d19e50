"""A real libvirtd of the test's own, in a network and mount namespace the test creates.

``unshare -n -m`` gives a namespace with only a loopback interface, where libvirt's NAT network
(vagrant-libvirt's 192.168.121.0/24) exists and nowhere else: nothing a guest sends can leave it.
Private copies of /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and
/run/libvirt are bind-mounted in it, so the daemon shares no state, socket or pid file with a
libvirtd of the host.  Programs run inside with ``nsenter`` (see :meth:`Namespace.prefix`).
Nothing here stands in for libvirt, Vagrant or QEMU: they are the real ones.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

PROGRAMS = ("unshare", "nsenter", "ip", "libvirtd", "virtlogd", "virsh", "dnsmasq", "iptables",
            "vagrant", "qemu-system-x86_64")
PRIVATE = {"etc": "/etc/libvirt", "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
           "log": "/var/log/libvirt", "run": "/run/libvirt"}
URI = "qemu:///system"

_HOLDER = """set -e
ip link set lo up
mkdir -p {mountpoints}
{binds}
{hide_kvm}
echo ready
exec sleep infinity
"""


def unavailable() -> str | None:
    """Why a namespaced libvirtd cannot run here, or None."""
    if os.geteuid() != 0:
        return "a libvirtd in a namespace of the test's own needs root"
    missing = [p for p in PROGRAMS if not shutil.which(p)]
    if missing:
        return (f"missing programs: {', '.join(missing)} (apt-get install vagrant vagrant-libvirt "
                "libvirt-daemon-system dnsmasq-base iptables qemu-system-x86)")
    try:
        import vagrant  # noqa: F401
    except ImportError:
        return "python-vagrant not installed (pip install 'debian-cloud-tests[vagrant]')"
    return None


def _kvm_hangs() -> bool:
    """/dev/kvm exists but the framework's bounded probe found it unusable."""
    from debian_cloud_tests.providers.qemu import accel

    from debian_cloud_tests.paths import cache_dir
    from debian_cloud_tests.spec import Accel, Arch

    if not Path("/dev/kvm").exists():
        return False
    chosen, _ = accel.choose(Accel.AUTO, Arch.host(), "qemu-system-x86_64", cache_dir())
    return chosen is Accel.TCG


def _die_with_us() -> None:
    """preexec_fn: the kernel kills the child when the test process dies."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


@dataclass
class Namespace:
    holder: subprocess.Popen[bytes]
    root: Path
    daemons: list[subprocess.Popen[bytes]]

    def prefix(self, cwd: Path | None = None) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        wd = [f"--wd={cwd}"] if cwd is not None else []
        return ["nsenter", "-t", str(self.holder.pid), "-n", "-m", *wd]

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix(cwd), *args], capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)

    def virsh(self, *args: str) -> list[str]:
        """The non-empty lines virsh prints (raises when it fails)."""
        proc = self.run("virsh", "-q", "-c", URI, *args)
        if proc.returncode != 0:
            raise RuntimeError(f"virsh {' '.join(args)}: {proc.stderr.strip()}")
        return [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]

    def inventory(self) -> dict[str, list[str]]:
        """Every domain, network, pool and volume libvirt knows, to compare before and after."""
        pools = self.virsh("pool-list", "--all", "--name")
        volumes = [f"{p}/{ln.split()[0]}" for p in pools for ln in self.virsh("vol-list", p)]
        return {"domains": self.virsh("list", "--all", "--name"),
                "networks": self.virsh("net-list", "--all", "--name"),
                "pools": pools, "volumes": sorted(volumes)}

    def processes(self) -> list[int]:
        """Every process in the namespace's network namespace but the holder and the daemons."""
        ours = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        skip = {self.holder.pid, *(d.pid for d in self.daemons)}
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) not in skip:
                with suppress(OSError):
                    if os.readlink(proc / "ns/net") == ours:
                        found.append(int(proc.name))
        return found


def _start_holder(root: Path) -> subprocess.Popen[bytes]:
    for name in PRIVATE:
        (root / name).mkdir(parents=True, exist_ok=True)
    shutil.copytree("/etc/libvirt", root / "etc", dirs_exist_ok=True, symlinks=True)
    # The host's default network (192.168.122.0/24) is not ours to start.
    for autostart in (root / "etc/qemu/networks/autostart").glob("*.xml"):
        autostart.unlink()
    binds = "\n".join(f"mount --bind {root / name} {target}" for name, target in PRIVATE.items())
    hide_kvm = ""
    if _kvm_hangs():
        # libvirtd probes QEMU's capabilities with accel=kvm:tcg, which stalls for minutes where
        # KVM hangs: inside the namespace /dev/kvm is an empty file, so that probe falls back to
        # TCG at once (the provider picks TCG by the same probe as the qemu provider).
        (root / "no-kvm").touch()
        hide_kvm = f"mount --bind {root / 'no-kvm'} /dev/kvm"
        # libvirt's per-guest /dev would try to move that bind mount, and fail.
        with (root / "etc/qemu.conf").open("a") as conf:
            conf.write("\nnamespaces = []\n")
    script = _HOLDER.format(mountpoints=" ".join(PRIVATE.values()), binds=binds,
                            hide_kvm=hide_kvm)
    holder = subprocess.Popen(["unshare", "-n", "-m", "--propagation", "private", "sh", "-c", script],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, preexec_fn=_die_with_us)
    assert holder.stdout is not None
    if holder.stdout.readline().strip() != b"ready":
        holder.kill()
        err = holder.stderr.read().decode(errors="replace") if holder.stderr else ""
        raise RuntimeError(f"could not set up the namespace: {err.strip()[-500:]}")
    return holder


#: the mount point of every namespace's private run dir, and what says the tests made it
RUN_DIR = Path(PRIVATE["run"])
MADE_HERE = RUN_DIR / ".made-by-tests"


@contextmanager
def _run_dir_in_use() -> Iterator[None]:
    """Hold RUN_DIR while a namespace mounts over it: a shared lock on the directory itself.  The
    last holder removes it if the tests made it; removing it earlier would detach the bind mounts
    of every other namespace (tests on other xdist workers) and take their libvirtd's socket."""
    while True:
        with suppress(FileExistsError):
            RUN_DIR.mkdir()
            MADE_HERE.touch()
        fd = os.open(RUN_DIR, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_SH)
        with suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), RUN_DIR.stat()):
                break
        os.close(fd)  # the last holder removed it while we waited: make it again
    try:
        yield
    finally:
        with suppress(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if MADE_HERE.exists():
                MADE_HERE.unlink()
                with suppress(OSError):
                    RUN_DIR.rmdir()
        os.close(fd)


@contextmanager
def running_libvirtd(root: Path, daemon: bool = True) -> Iterator[Namespace]:
    """A namespace with its own libvirtd and virtlogd (or with none, when *daemon* is False)."""
    with _run_dir_in_use():
        yield from _running_libvirtd(root, daemon)


def _running_libvirtd(root: Path, daemon: bool) -> Iterator[Namespace]:
    holder = _start_holder(root)
    ns = Namespace(holder, root, [])
    try:
        if daemon:
            log = (root / "daemons.log").open("wb")
            for argv in (["virtlogd", "-p", "/run/libvirt/virtlogd.pid"],
                         ["libvirtd", "-p", "/run/libvirt/libvirtd.pid"]):
                ns.daemons.append(subprocess.Popen([*ns.prefix(), *argv], stdout=log, stderr=log,
                                                   stdin=subprocess.DEVNULL,
                                                   preexec_fn=_die_with_us))
            log.close()
            _wait_for_libvirtd(ns)
            # A libvirt host as vagrant-libvirt expects one: a "default" directory pool.
            ns.virsh("pool-define-as", "default", "dir", "--target", "/var/lib/libvirt/images")
            ns.virsh("pool-build", "default")
            ns.virsh("pool-start", "default")
        yield ns
    finally:
        _stop(ns)


def _wait_for_libvirtd(ns: Namespace, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if ns.run("virsh", "-c", URI, "version").returncode == 0:
            return
        dead = [d for d in ns.daemons if d.poll() is not None]
        if dead or time.monotonic() > deadline:
            log = (ns.root / "daemons.log").read_text(errors="replace")
            raise RuntimeError(f"libvirtd did not start: {log.strip()[-800:]}")
        time.sleep(0.2)


def _stop(ns: Namespace) -> None:
    """Stop the guests and networks libvirt runs (QEMU, dnsmasq outlive libvirtd), then the
    daemons, then whatever is left in the namespace, then the namespace."""
    if ns.daemons and all(d.poll() is None for d in ns.daemons):
        with suppress(Exception):
            for domain in ns.virsh("list", "--name"):
                ns.run("virsh", "-c", URI, "destroy", domain)
            for network in ns.virsh("net-list", "--name"):
                ns.run("virsh", "-c", URI, "net-destroy", network)
    for proc in ns.daemons:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in ns.processes():
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    ns.holder.kill()
    ns.holder.wait()
