"""Accounts and logins: no usable passwords, no keys or history baked into the image."""

from __future__ import annotations

import pytest

from debian_cloud_tests.facts import Probe

PROBES = [
    # Only the user name and the kind of password field leave the guest, never the hash.
    Probe("shadow_kinds", "awk -F: '{ f=$2; k = (f==\"\") ? \"empty\" : (f ~ /^[!*]/ ? \"locked\" : "
          "\"usable\"); print $1, k }' /etc/shadow", root=True),
    Probe("authorized_keys", "for f in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys "
          "/etc/ssh/authorized_keys/*; do [ -f \"$f\" ] && sed \"s|^|$f |\" \"$f\"; done; true",
          root=True),
    Probe("history_files", "for f in /root/.*history /home/*/.*history; do [ -s \"$f\" ] && "
          "echo \"$f\"; done; true", root=True),
]


def _kinds(facts) -> dict[str, str]:
    out = facts["shadow_kinds"]
    if not out.ok:
        pytest.fail(f"cannot read /etc/shadow: {out.why()}", pytrace=False)
    return dict(line.split() for line in out.lines())


def test_root_password_locked(facts) -> None:
    """root has no password (locked or disabled): cloud images log in with keys only."""
    assert _kinds(facts).get("root") == "locked", "root has a password or an empty one; `passwd -l root`"


def test_no_empty_passwords(facts) -> None:
    """No account has an empty password field (anyone could log in where passwords are allowed)."""
    empty = [u for u, k in _kinds(facts).items() if k == "empty"]
    assert not empty, f"accounts with an empty password: {empty}; `passwd -l USER`"


def test_no_usable_passwords(facts) -> None:
    """No account has a usable password hash baked into the image."""
    usable = [u for u, k in _kinds(facts).items() if k == "usable"]
    assert not usable, f"accounts with a password set at build time: {usable}; lock them"


def test_no_authorized_keys_baked(facts, machine) -> None:
    """The only authorised keys are those given at launch (root's are disabled by cloud-init)."""
    launch_user = machine.ssh.user
    foreign = []
    for line in facts["authorized_keys"].lines():
        path, _, entry = line.partition(" ")
        if path == f"/home/{launch_user}/.ssh/authorized_keys":
            continue
        # cloud-init's disable_root writes root's keys behind a command= that refuses the login
        if path == "/root/.ssh/authorized_keys" and "Please login as the user" in entry:
            continue
        foreign.append(f"{path}: {entry[:60]}…")
    assert not foreign, f"authorised keys not from this launch: {foreign}; remove them from the image"


def test_no_shell_history(facts) -> None:
    """No shell history from the build is left in any home directory."""
    found = facts["history_files"].lines()
    assert not found, f"shell history left in the image: {found}"
