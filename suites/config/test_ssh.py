"""sshd's effective configuration (`sshd -T`): keys only, no password or empty logins, no DSA."""

from __future__ import annotations

import pytest

from debian_cloud_tests.facts import Probe

PROBES = [
    Probe("sshd_T", "sshd -T -C user=nobody,host=localhost,addr=127.0.0.1", root=True),
    Probe("ssh_host_key_files", "ls -1 /etc/ssh/ssh_host_*_key", root=True),
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


def _sshd(facts) -> dict[str, list[str]]:
    out = facts["sshd_T"]
    if not out.ok:
        pytest.fail(f"`sshd -T` failed: {out.why()}", pytrace=False)
    config: dict[str, list[str]] = {}
    for line in out.lines():
        key, _, value = line.partition(" ")
        config.setdefault(key.lower(), []).append(value.strip())
    return config


@pytest.mark.parametrize("keyword", sorted(POLICY))
def test_sshd_setting(facts, keyword: str) -> None:
    """sshd's effective setting is the policy's (keys only; no root login by password)."""
    allowed, fix = POLICY[keyword]
    actual = _sshd(facts).get(keyword, ["(unset)"])[0]
    assert actual in allowed, f"sshd {keyword} is {actual!r}; set `{fix}` in /etc/ssh/sshd_config.d/"


def test_no_dsa_host_key(facts) -> None:
    """No DSA host key exists or is served (DSA is broken and removed from OpenSSH)."""
    served = [k for k in _sshd(facts).get("hostkey", []) if "dsa" in k and "ecdsa" not in k]
    files = [f for f in facts["ssh_host_key_files"].lines() if "_dsa_" in f]
    assert not served and not files, f"DSA host key present: {served or files}"
