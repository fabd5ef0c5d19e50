"""sshd's effective configuration (`sshd -T`): keys only, no password or empty logins, no DSA
host key loaded."""

from __future__ import annotations

import re

import pytest

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import SSHD_T, sshd_config, sshd_host_keys

PROBES = [
    SSHD_T,
    Probe("ssh_host_key_files", "stat -c '%a %U %n' /etc/ssh/ssh_host_*_key", root=True),
    Probe("ssh_host_public_keys", "stat -c '%a %U %G %n' /etc/ssh/ssh_host_*_key.pub", root=True),
]

#: keyword -> (allowed values, fix)
POLICY = {
    "passwordauthentication": ({"no"}, "PasswordAuthentication no"),
    "kbdinteractiveauthentication": ({"no"}, "KbdInteractiveAuthentication no"),
    "permitemptypasswords": ({"no"}, "PermitEmptyPasswords no"),
    "permitrootlogin": ({"no", "prohibit-password", "without-password", "forced-commands-only"},
                        "PermitRootLogin prohibit-password"),
    "pubkeyauthentication": ({"yes"}, "PubkeyAuthentication yes"),
    "hostbasedauthentication": ({"no"}, "HostbasedAuthentication no"),
    "ignorerhosts": ({"yes"}, "IgnoreRhosts yes"),
    "permituserenvironment": ({"no"}, "PermitUserEnvironment no"),
    "strictmodes": ({"yes"}, "StrictModes yes"),
    "usedns": ({"no"}, "UseDNS no"),  # logins must not wait on reverse DNS
    "permittunnel": ({"no"}, "PermitTunnel no"),
    "gssapiauthentication": ({"no"}, "GSSAPIAuthentication no"),
    "maxauthtries": ({str(n) for n in range(1, 7)}, "MaxAuthTries 6"),
    "logingracetime": ({str(n) for n in range(1, 121)}, "LoginGraceTime 120"),
}
#: `sshd -T` keyword (and its name before OpenSSH 8.5) -> algorithms broken or too weak to offer:
#: CBC and RC4 ciphers, MD5 and truncated MACs, SHA-1 key exchange, SHA-1 RSA and DSA signatures
WEAK_ALGORITHMS = {
    "ciphers": ((), {"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "blowfish-cbc",
                     "cast128-cbc", "rijndael-cbc@lysator.liu.se", "arcfour", "arcfour128",
                     "arcfour256"}),
    "macs": ((), {"hmac-md5", "hmac-md5-96", "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com",
                  "hmac-sha1-96", "hmac-sha1-96-etm@openssh.com", "hmac-ripemd160",
                  "hmac-ripemd160-etm@openssh.com", "umac-32@openssh.com"}),
    "kexalgorithms": ((), {"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
                           "diffie-hellman-group-exchange-sha1"}),
    "hostkeyalgorithms": ((), {"ssh-rsa", "ssh-dss", "ssh-rsa-cert-v01@openssh.com",
                               "ssh-dss-cert-v01@openssh.com"}),
    "pubkeyacceptedalgorithms": (("pubkeyacceptedkeytypes",),
                                 {"ssh-rsa", "ssh-dss", "ssh-rsa-cert-v01@openssh.com",
                                  "ssh-dss-cert-v01@openssh.com"}),
}


def _sshd(facts) -> dict[str, list[str]]:
    out = facts["sshd_T"]
    if not out.ok:
        pytest.fail(f"`sshd -T` failed: {out.why()}", pytrace=False)
    return sshd_config(facts)


@pytest.mark.parametrize("keyword", sorted(POLICY))
def test_sshd_setting(facts, keyword: str) -> None:
    """sshd's effective setting is the policy's (keys only; no root login by password)."""
    allowed, fix = POLICY[keyword]
    actual = _sshd(facts).get(keyword, ["(unset)"])[0]
    assert actual in allowed, f"sshd {keyword} is {actual!r}; set `{fix}` in /etc/ssh/sshd_config.d/"


def test_no_dsa_host_key(facts) -> None:
    """sshd loads no DSA host key (DSA is broken and removed from OpenSSH).  A DSA key file that
    sshd is not configured with is never served (cloud-init's default key types make one on
    bookworm) and passes."""
    _sshd(facts)  # sshd -T itself must work for the listing to mean anything
    loaded = [line.rsplit(" ", 1)[-1] for line in sshd_host_keys(facts) if " (DSA) " in line]
    assert not loaded, (f"sshd loads a DSA host key ({', '.join(loaded)}); drop its HostKey line "
                        "from sshd_config")


@pytest.mark.parametrize("keyword", sorted(WEAK_ALGORITHMS))
def test_sshd_no_weak_algorithms(facts, keyword: str) -> None:
    """sshd offers no broken cipher, MAC, key exchange or signature algorithm (OpenSSH's own
    defaults offer none; a build that re-enables one opens every instance to downgrade)."""
    aliases, weak = WEAK_ALGORITHMS[keyword]
    config = _sshd(facts)
    name = next((k for k in (keyword, *aliases) if k in config), None)
    assert name is not None, f"`sshd -T` reports no {keyword}"
    offered = sorted(set(config[name][0].split(",")) & weak)
    assert not offered, (f"sshd offers weak {keyword}: {', '.join(offered)}; drop them from "
                         f"{keyword} in /etc/ssh/sshd_config.d/")


def test_host_private_keys_private(facts) -> None:
    """The host's private keys are root's alone (mode 600): a key other users can read lets
    them impersonate the host."""
    out = facts["ssh_host_key_files"]
    assert out.ok and out.lines(), f"cannot stat the host keys: {out.why()}"
    keys = [f for line in out.lines() if len(f := line.split(" ", 2)) == 3 and re.fullmatch("[0-7]+", f[0])]
    assert keys, f"cannot read the host keys' modes: {out.stdout.strip()[:200]}"
    loose = [f"{path} ({owner} {mode})" for mode, owner, path in keys
             if owner != "root" or int(mode, 8) & 0o077]
    assert not loose, f"host private keys readable beyond root: {loose}; chmod 600, chown root"


def test_host_public_keys_root_owned(facts) -> None:
    """The host's public keys are root's and writable by root alone: whoever can replace one
    decides which key clients are told to trust (cloud-init prints them for the first login)."""
    out = facts["ssh_host_public_keys"]
    keys = [f for line in out.lines() if len(f := line.split(" ", 3)) == 4 and re.fullmatch("[0-7]+", f[0])]
    assert keys, f"cannot stat the host public keys: {out.why()}"
    loose = [f"{path} ({owner}:{group} {mode})" for mode, owner, group, path in keys
             if owner != "root" or group != "root" or int(mode, 8) & 0o022]
    assert not loose, f"host public keys others may change: {loose}; chmod 644, chown root:root"
