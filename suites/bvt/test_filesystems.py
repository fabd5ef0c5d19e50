"""The file system table: valid, and naming the root by something that survives a change of
platform (the same image meets vda, xvda and nvme0n1)."""

from __future__ import annotations

from debian_cloud_tests.facts import Probe

from .test_kernel import STABLE_ROOT

PROBES = [
    Probe("fstab", "cat /etc/fstab"),
    Probe("fstab_verify", "findmnt --verify --verbose 2>&1", root=True),
]


def _entries(facts) -> list[list[str]]:
    return [line.split() for line in facts["fstab"].lines()
            if not line.lstrip().startswith("#") and len(line.split()) >= 2]


def test_fstab_valid(facts) -> None:
    """`findmnt --verify` finds no error in /etc/fstab and no entry whose device does not exist
    (a disk of the build machine, a typo)."""
    out = facts["fstab_verify"]
    errors = [line.strip() for line in out.stdout.splitlines()
              if line.strip().startswith("[E]") or (line.strip().startswith("[W]") and
                                                    "unreachable" in line)]
    assert out.ok and not errors, (f"/etc/fstab has errors: {errors[:5] or out.why()}; fix or remove "
                                   "those entries")


def test_fstab_root_by_stable_name(facts) -> None:
    """/etc/fstab mounts / by UUID or label (or leaves it to the kernel command line)."""
    roots = [e[0] for e in _entries(facts) if e[1] == "/"]
    unstable = [r for r in roots if not STABLE_ROOT.match(r)]
    assert not unstable, (f"/etc/fstab mounts / from {unstable[0]}, a disk name that differs per "
                          "platform; use UUID=… or LABEL=…")
