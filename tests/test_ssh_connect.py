"""ssh.connect against a real OpenSSH server whose login is slow: a login that takes longer than
the wait is "not ready yet" (retried), never "refused" (a failed check)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from debian_cloud_tests import ssh, sshkeys
from debian_cloud_tests.machine import SSHEndpoint

from .fakes.sshd import running_sshd, unavailable

LOGIN_DELAY = 3


@pytest.fixture
def slow_login_sshd(tmp_path: Path):
    """sshd whose key lookup takes LOGIN_DELAY seconds, as a loaded guest's PAM or disk can."""
    why = unavailable()
    if why:
        pytest.skip(why)
    slow_keys = tmp_path / "slow_keys"
    slow = (f'AuthorizedKeysCommand /bin/sh -c "sleep {LOGIN_DELAY}; cat {slow_keys}"\n'
            "AuthorizedKeysCommandUser root\n")
    with running_sshd(tmp_path / "sshd", extra_config=slow) as server:
        assert server.authorized_keys is not None
        server.authorized_keys.rename(slow_keys)  # only the slow lookup knows the key now
        yield server


def _endpoint(server) -> SSHEndpoint:
    return SSHEndpoint("127.0.0.1", server.port, server.user, server.client_key)


def test_a_login_slower_than_the_wait_is_not_a_refusal(slow_login_sshd) -> None:
    with pytest.raises(ssh.HandshakeFailed, match=r"(?i)timeout"):
        ssh.connect(_endpoint(slow_login_sshd), [slow_login_sshd.host_key], timeout=1,
                    auth_timeout=1)


def test_a_slow_login_succeeds_with_the_default_wait(slow_login_sshd) -> None:
    began = time.monotonic()
    client = ssh.connect(_endpoint(slow_login_sshd), [slow_login_sshd.host_key], timeout=1)
    try:
        assert time.monotonic() - began >= LOGIN_DELAY - 0.5  # the slow path was taken
        _, out, _ = client.exec_command("echo ok", timeout=30)
        assert out.read().strip() == b"ok"
    finally:
        client.close()


def test_a_wrong_key_is_still_a_refusal(slow_login_sshd, tmp_path: Path) -> None:
    other = tmp_path / "other"
    sshkeys.write_private(sshkeys.generate("other"), other)
    endpoint = SSHEndpoint("127.0.0.1", slow_login_sshd.port, slow_login_sshd.user, other)
    with pytest.raises(ssh.LoginRefused):
        ssh.connect(endpoint, [slow_login_sshd.host_key], timeout=1)
