"""A candidate image on the default user network reaches out through this host, never this host.

The run happens in a network namespace of the test's own, which stands for the runner: a
listener on its loopback (a service only the runner should reach), one on 169.254.169.254 (a
cloud runner's metadata service) and one on an ordinary address beyond the guest (the internet,
as far as the guest can tell).  A probe run over SSH in the guest connects to each.  Walled (the
default), the guest reaches only the last, and the other two listeners never see a connection;
with ``--qemu-network=open`` (the negative control) it reaches all three, so the probe sees a leak
when there is one.

Beyond the guest there is also a Debian mirror (``fakes/archive_mirror.py``) serving this machine's
InRelease files as Debian signed them, over https with a test CA given by ``--ca-cert`` as behind a
TLS-intercepting proxy: the same boot is the positive control of ``config.apt_update_works`` (offline
it is not applicable), the good image's unchanged sources updating from outside the wall.  The
mirror also serves bookworm-security's package index as this machine's apt holds it, so that
``config.no_pending_security_updates`` passes on the good image there, and fails on an image
whose openssh-server is behind it (its negative control: offline it is not applicable either).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from hashlib import sha256
from pathlib import Path

import pytest

from debian_cloud_tests.plugin import suites_dir

from .conftest import run_suites
from .fakes.archive_mirror import MIRROR_ADDRESS

pytestmark = pytest.mark.e2e

LISTENERS = Path(__file__).with_name("fakes") / "tcp_listeners.py"
MIRROR = Path(__file__).with_name("fakes") / "archive_mirror.py"
APT_LISTS = Path("/var/lib/apt/lists")
APT_CHECKS = ("config/test_apt.py::test_apt_update_works",
              "config/test_apt.py::test_no_pending_security_updates")
SECURITY_CHECK = "config.no_pending_security_updates"
#: the index of bookworm-security the mirror serves, as apt names its list file
SECURITY_INDEX = "deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages"
OUTSIDE = "192.0.2.10"  # TEST-NET-1, an address of the test's namespace (on its lo)
#: name -> (address the listener binds in the namespace, address the guest connects to, port)
TARGETS = {
    "outside": (OUTSIDE, OUTSIDE, 8082),
    "host-loopback": ("127.0.0.1", "10.0.2.2", 8081),  # QEMU's alias of the host
    "link-local": ("169.254.169.254", "169.254.169.254", 80),
}

PROBE = '''
import json
import os

import pytest

TARGETS = json.loads(os.environ["DCT_PROBE_TARGETS"])
CONNECT = ("python3 -c 'import socket, sys; s = socket.create_connection((sys.argv[1], "
           "int(sys.argv[2])), timeout=8); print(s.recv(64).decode().strip())' {} {}")


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_reaches(instance, name):
    address, port = TARGETS[name]
    result = instance.host.run(CONNECT.format(address, port))
    assert result.stdout.strip().startswith("reached"), (result.rc, result.stdout, result.stderr)
'''


def _release_files(dest: Path) -> str | None:
    """Copy this machine's InRelease files from deb.debian.org, as Debian signed them, into
    *dest*; or say why the mirror cannot serve them."""
    files = {f.name.split("_dists_")[-1].removesuffix("_InRelease"): f
             for f in APT_LISTS.glob("deb.debian.org_*_InRelease")}
    if not {"bookworm", "bookworm-updates", "bookworm-security"} <= set(files):
        return "this machine's apt has no bookworm InRelease files from deb.debian.org"
    for f in files.values():
        m = re.search(rb"^Valid-Until: (.+)$", f.read_bytes(), re.M)
        if m and parsedate_to_datetime(m.group(1).decode()) < datetime.now(UTC):
            return f"{f.name} has expired: run apt-get update on this machine"
        shutil.copy(f, dest / f.name)
    return _security_index(dest)


def _security_index(dest: Path) -> str | None:
    """Put bookworm-security's amd64 package index, uncompressed, into *dest* under both names apt
    may ask for (by hash, as the InRelease allows, and plain); or say why it cannot be served."""
    stored = sorted(APT_LISTS.glob(SECURITY_INDEX + "*"))
    if not stored:
        return "this machine's apt has no bookworm-security package index"
    readers = {"": ["cat"], ".lz4": ["lz4cat"], ".gz": ["zcat"], ".xz": ["xzcat"], ".zst": ["zstdcat"]}
    suffix = stored[0].name.removeprefix(SECURITY_INDEX)
    reader = readers.get(suffix)
    if not reader or not shutil.which(reader[0]):
        return f"cannot read {stored[0].name} here"
    data = subprocess.run([*reader, str(stored[0])], capture_output=True, check=True).stdout
    digest = sha256(data).hexdigest()
    release = APT_LISTS / SECURITY_INDEX.replace("_main_binary-amd64_Packages", "_InRelease")
    if f" {digest} " not in release.read_text():
        return f"{stored[0].name} is not the index its InRelease names: run apt-get update"
    (dest / SECURITY_INDEX).write_bytes(data)
    (dest / SECURITY_INDEX.replace("_Packages", f"_by-hash_SHA256_{digest}")).write_bytes(data)
    return None


def _mirror(tmp_path: Path) -> tuple[str, Path] | str:
    """The shell line that starts the mirror in the namespace and the CA the guest is given, or
    why this machine cannot serve it (the mirror's DNS answers every name with its address)."""
    trustme = pytest.importorskip("trustme")
    lists = tmp_path / "lists"
    lists.mkdir()
    why = _release_files(lists)
    if why:
        return why
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    pem = tmp_path / "mirror.pem"
    ca.issue_cert("deb.debian.org").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ready = tmp_path / "mirror.ready"
    start = (f"{{ {sys.executable} {MIRROR} {lists} {ready} {pem} {pem} 2>{tmp_path / 'mirror.log'} "
             f"& mirror=$!; }} && for i in $(seq 100); do [ -e {ready} ] && break; sleep 0.1; done")
    return start, tmp_path / "ca.pem"


def _namespace_script(tmp_path: Path, mirror: str | None) -> tuple[list[str], Path]:
    """The prefix that runs the plugin inside the test's namespace, and the listeners' log."""
    ip, unshare = shutil.which("ip"), shutil.which("unshare")
    assert ip and unshare, "ip and unshare are needed"
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    log, ready = tmp_path / "reached.log", tmp_path / "listeners.ready"
    specs = " ".join(f"{name}={bind}:{port}" for name, (bind, _, port) in TARGETS.items())
    dns = f"{sys.executable} -m debian_cloud_tests.datasources.dns"
    services = f"{mirror} && " if mirror else f"mirror=; {{ {dns} & }} && "
    script = (f"{ip} link set lo up && {ip} addr add {OUTSIDE}/32 dev lo && "
              f"{ip} addr add 169.254.169.254/32 dev lo && {ip} addr add {MIRROR_ADDRESS}/32 dev lo && "
              f"mount --bind {tmp_path / 'resolv.conf'} /etc/resolv.conf && {services}"
              f"{{ {sys.executable} {LISTENERS} {log} {ready} {specs} & listeners=$!; }} && "
              f"for i in $(seq 100); do [ -e {ready} ] && break; sleep 0.1; done; "
              '"$@"; rc=$?; kill $listeners $mirror; exit $rc')
    return [unshare, "--net", "--mount", "--propagation", "private", "/bin/sh", "-c", script,
            "sh"], log


@pytest.mark.cost(180)
# open is the control: all three answer where the guest is not walled in.  In CI the walled run
# shows the probe works (the outside answers); the full matrix adds the control.
@pytest.mark.parametrize("network", ["user", pytest.param("open", marks=pytest.mark.matrix)])
def test_guest_reaches_out_but_not_this_host(network: str, good_image: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe" / "test_reach.py"
    probe.parent.mkdir()
    probe.write_text(PROBE)
    targets = {name: [connect, port] for name, (_, connect, port) in TARGETS.items()}
    mirror = _mirror(tmp_path)
    if isinstance(mirror, str):
        no_mirror, start, apt = mirror, None, []
    else:  # the suite's checks, by path, beside the probe
        no_mirror, start = None, mirror[0]
        apt = [f"--ca-cert={mirror[1]}", *(f"{suites_dir()}/{check}" for check in APT_CHECKS)]
    serving = no_mirror is None
    prefix, log = _namespace_script(tmp_path, start)
    run = run_suites(tmp_path, "--provider=qemu", f"--image={good_image}", f"--qemu-network={network}",
                     *apt, select=str(probe), walled=False, prefix=prefix,
                     env={"DCT_PROBE_TARGETS": json.dumps(targets)})
    reached = {name for name in targets
               if any(f"[{name}]" in c and s == "passed" for c, s in run.checks.items())}
    probes = {c for c in run.checks if "test_reaches[" in c}
    assert len(probes) == len(targets), run.explain()
    # the rest (the apt checks, the console scan that ends a run of the suites) passed
    assert all(s == "passed" for c, s in run.checks.items() if c not in probes), run.checks
    seen = set(log.read_text().split())
    if network == "user":
        assert reached == {"outside"}, run.explain()
        assert seen == {"outside"}, f"the listeners saw {seen}"
    else:  # the control: the same probe sees a guest that reaches this host
        assert reached == set(TARGETS), run.explain()
        assert seen == set(TARGETS), f"the listeners saw {seen}"
    if not serving:
        pytest.skip(f"the wall holds; the apt checks not proven: {no_mirror}")
    served = (tmp_path / "mirror.log").read_text()
    for check in ("config.apt_update_works", SECURITY_CHECK):
        assert run.checks.get(check) == "passed", f"{run.explain()}\n{served}"
    assert served.count("InRelease HTTP/1.1\" 200") >= 3, served  # the guest really fetched them
    assert re.search(r"binary-amd64/\S+ HTTP/1.1\" 200", served), served  # and the -security index


@pytest.mark.cost(150)
def test_a_missed_security_update_fails_behind_the_wall(image_factory, tmp_path: Path) -> None:
    """config.no_pending_security_updates's negative control: the same mirror, an image whose
    dpkg records openssh-server before its security updates."""
    mirror = _mirror(tmp_path)
    if isinstance(mirror, str):
        pytest.skip(f"{SECURITY_CHECK} not proven: {mirror}")
    image = image_factory("security-update-missed")
    prefix, _ = _namespace_script(tmp_path, mirror[0])
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image}", "--qemu-network=user",
                     f"--ca-cert={mirror[1]}", select=f"{suites_dir()}/{APT_CHECKS[1]}",
                     walled=False, prefix=prefix)
    served = (tmp_path / "mirror.log").read_text()
    assert run.checks.get(SECURITY_CHECK) == "failed", f"{run.explain()}\n{served}"
    assert "openssh-server 1:9.2p1-0 → " in run.messages[SECURITY_CHECK], run.messages
