"""A candidate image on the default user network reaches out through this host, never this host.

The run happens in a network namespace of the test's own, which stands for the runner: a
listener on its loopback (a service only the runner should reach), one on 169.254.169.254 (a
cloud runner's metadata service) and one on an ordinary address beyond the guest (the internet,
as far as the guest can tell).  A probe run over SSH in the guest connects to each.  Walled (the
default), the guest reaches only the last, and the other two listeners never see a connection;
with ``--qemu-network=open`` (the negative control) it reaches all three, so the probe sees a leak
when there is one.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import DNS, run_suites

pytestmark = pytest.mark.e2e

LISTENERS = Path(__file__).with_name("fakes") / "tcp_listeners.py"
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


def _namespace_script(tmp_path: Path) -> tuple[list[str], Path]:
    """The prefix that runs the plugin inside the test's namespace, and the listeners' log."""
    ip, unshare = shutil.which("ip"), shutil.which("unshare")
    assert ip and unshare, "ip and unshare are needed"
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    log, ready = tmp_path / "reached.log", tmp_path / "listeners.ready"
    log.touch()
    specs = " ".join(f"{name}={bind}:{port}" for name, (bind, _, port) in TARGETS.items())
    script = (f"{ip} link set lo up && {ip} addr add {OUTSIDE}/32 dev lo && "
              f"{ip} addr add 169.254.169.254/32 dev lo && "
              f"mount --bind {tmp_path / 'resolv.conf'} /etc/resolv.conf && "
              f"{{ {sys.executable} {DNS} & }} && "
              f"{{ {sys.executable} {LISTENERS} {log} {ready} {specs} & listeners=$!; }} && "
              f"for i in $(seq 100); do [ -e {ready} ] && break; sleep 0.1; done; "
              '"$@"; rc=$?; kill $listeners; exit $rc')
    return [unshare, "--net", "--mount", "--propagation", "private", "/bin/sh", "-c", script,
            "sh"], log


@pytest.mark.cost(150)
# open is the control: all three answer where the guest is not walled in.  In CI the walled run
# shows the probe works (the outside answers); the full matrix adds the control.
@pytest.mark.parametrize("network", ["user", pytest.param("open", marks=pytest.mark.matrix)])
def test_guest_reaches_out_but_not_this_host(network: str, good_image: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe" / "test_reach.py"
    probe.parent.mkdir()
    probe.write_text(PROBE)
    targets = {name: [connect, port] for name, (_, connect, port) in TARGETS.items()}
    prefix, log = _namespace_script(tmp_path)
    run = run_suites(tmp_path, "--provider=qemu", f"--image={good_image}", f"--qemu-network={network}",
                     select=str(probe), walled=False, prefix=prefix,
                     env={"DCT_PROBE_TARGETS": json.dumps(targets)})
    reached = {name for name in targets
               if any(f"[{name}]" in c and s == "passed" for c, s in run.checks.items())}
    assert len(run.checks) == len(targets), run.explain()
    seen = set(log.read_text().split())
    if network == "user":
        assert reached == {"outside"}, run.explain()
        assert seen == {"outside"}, f"the listeners saw {seen}"
    else:  # the control: the same probe sees a guest that reaches this host
        assert reached == set(TARGETS), run.explain()
        assert seen == set(TARGETS), f"the listeners saw {seen}"
