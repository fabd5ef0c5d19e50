"""The programs the vagrant provider drives, found and checked before anything is created.

Vagrant is driven through python-vagrant; libvirt directly through ``virsh`` (a hard reset and
the clean-up of the box's storage volume are libvirt's business, not Vagrant's).  Every failure
becomes one line naming the fix: a missing program names its Debian package.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from debian_cloud_tests.errors import MissingDependencyError, ProviderError

#: vagrant-libvirt's default connection, and the one the generated Vagrantfile names
LIBVIRT_URI = "qemu:///system"
VIRSH_TIMEOUT = 60.0
_PROGRESS = re.compile(r"\x1b\[K|Progress: \d+%.*?(?=\x1b|$)")


def require_programs() -> None:
    """vagrant and virsh on PATH, or the apt-get line that installs them."""
    for program, package in (("vagrant", "vagrant vagrant-libvirt"), ("virsh", "libvirt-clients")):
        if not shutil.which(program):
            raise MissingDependencyError(
                f"vagrant: the {program} program is not installed (apt-get install {package})")


def python_vagrant() -> Any:
    """The python-vagrant module, imported only when the provider is used."""
    # python-vagrant warns through logging at import when vagrant is not on PATH; we say it better.
    logging.getLogger("vagrant").setLevel(logging.ERROR)
    try:
        import vagrant
    except ImportError:
        raise MissingDependencyError(
            "vagrant: python-vagrant is not installed (pip install 'debian-cloud-tests[vagrant]')"
        ) from None
    return vagrant


def environment(vagrant_home: Path | None) -> dict[str, str]:
    """Vagrant's environment: no update checks, and a private VAGRANT_HOME where one is given."""
    env = {**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
           "VAGRANT_NO_COLOR": "1", "VAGRANT_DEFAULT_PROVIDER": "libvirt"}
    env.pop("VAGRANT_CWD", None)  # the run dir is the project; a user's VAGRANT_CWD must not win
    if vagrant_home is not None:
        env["VAGRANT_HOME"] = str(vagrant_home)
    return env


def one_line(text: str, limit: int = 300) -> str:
    """The gist of a program's output: progress bars gone, the first meaningful lines joined."""
    cleaned = _PROGRESS.sub("", text)
    lines = [ln.strip() for ln in cleaned.splitlines() if ln.strip()]
    return " ".join(lines)[:limit] or "(no message)"


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = VIRSH_TIMEOUT,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a program to completion, its output captured; a hang becomes a ProviderError."""
    try:
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProviderError(f"vagrant: `{' '.join(args[:3])}` did not finish within {timeout:.0f}s") \
            from None


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``virsh -c qemu:///system ARGS``; a failure (with *check*) is a ProviderError."""
    proc = run(["virsh", "-q", "-c", LIBVIRT_URI, *args])
    if check and proc.returncode != 0:
        raise ProviderError(f"vagrant: virsh {' '.join(args)}: {one_line(proc.stderr)}")
    return proc


def check_libvirt() -> str:
    """libvirtd answers on qemu:///system; returns its version for the JUnit properties."""
    proc = virsh("version", "--daemon", check=False)
    if proc.returncode != 0:
        raise ProviderError(
            f"vagrant: cannot reach libvirt at {LIBVIRT_URI} ({one_line(proc.stderr, 160)}); "
            "start libvirtd (apt-get install libvirt-daemon-system) and run as root or as a "
            "member of the libvirt group")
    m = re.search(r"Running against daemon:\s*(\S+)", proc.stdout)
    return m.group(1) if m else "unknown"
