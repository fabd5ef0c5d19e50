"""The wall around a guest's network, without a guest: the namespace command, the missing tool's
one line, and slirp4netns connecting a real namespace and forwarding SSH into it.
(A guest behind it: tests/test_guest_network_wall.py.)"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from debian_cloud_tests.providers.qemu import netwall
from debian_cloud_tests.providers.qemu.machine import free_port

from debian_cloud_tests.errors import MissingDependencyError


def test_a_missing_tool_is_named_with_its_package_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "slirp4netns" else real(name))
    with pytest.raises(MissingDependencyError) as caught:
        netwall.check_tools()
    message = str(caught.value)
    assert "apt-get install slirp4netns" in message and "--qemu-network=open" in message
    assert "\n" not in message


def test_qemu_runs_in_a_namespace_where_link_local_is_prohibited(tmp_path: Path) -> None:
    tools = {"unshare": "/usr/bin/unshare", "ip": "/sbin/ip", "mount": "/bin/mount",
             "umount": "/bin/umount", "slirp4netns": "/usr/bin/slirp4netns"}
    qemu = ["qemu-system-x86_64", "-name", "a b"]
    args = netwall.wrap(qemu, tmp_path, tools)
    assert args[0] == "/usr/bin/unshare" and {"--net", "--mount"} <= set(args)
    assert args[-len(qemu):] == qemu  # exec'd as given: QEMU keeps the pid the run registered
    script = args[args.index("-c") + 1]
    assert "/sbin/ip route add prohibit 169.254.0.0/16" in script and 'exec "$@"' in script
    assert (tmp_path / "resolv.conf").read_text() == f"nameserver {netwall.RESOLVER}\n"


def _listen_in(pid: int, ready: Path) -> subprocess.Popen[bytes]:
    """A server on the namespace's side of the wall, where QEMU's SSH forward would listen."""
    program = ("import socket, sys; s = socket.create_server(('0.0.0.0', int(sys.argv[1]))); "
               "open(sys.argv[2], 'w').close(); c, _ = s.accept(); c.sendall(b'inside\\n')")
    return subprocess.Popen(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", program,
                             str(netwall.INNER_SSH_PORT), str(ready)])


@pytest.mark.e2e
def test_slirp4netns_connects_the_namespace_and_forwards_ssh_into_it(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("slirp4netns") or not shutil.which("nsenter"):
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail("end-to-end tests required but impossible here: needs root, slirp4netns")
        pytest.skip("needs root, slirp4netns and nsenter")
    exit_read, exit_write = os.pipe()
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"],  # stands in for QEMU
                              pass_fds=(exit_write,))
    os.close(exit_write)
    listener = None
    try:
        time.sleep(0.2)
        wall = netwall.Wall.start(holder.pid, exit_read, tmp_path, netwall.check_tools(), None, False)
        try:
            listener = _listen_in(holder.pid, tmp_path / "ready")
            deadline = time.monotonic() + 10
            while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            port = free_port(None)
            assert wall.forward("127.0.0.1", port)
            assert not wall.forward("127.0.0.1", port), "a port forwarded twice"
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                assert conn.recv(16) == b"inside\n"
            holder.kill()  # QEMU gone, however: slirp4netns goes with it
            wall.proc.wait(timeout=10)
        finally:
            assert wall.stop() == []
    finally:
        holder.kill()
        if listener is not None:
            listener.kill()
