"""The already-running host as a :class:`Machine`: no console, nothing to destroy.

A hard reset is the closest the guest allows: an immediate forced reboot (no unit is stopped,
no file system synced), asked for over a verified connection with passwordless sudo.
"""

from __future__ import annotations

from debian_cloud_tests import ssh
from debian_cloud_tests.errors import DCTError, ProviderError
from debian_cloud_tests.machine import Machine, PlatformFacts, SSHEndpoint

RESET_COMMAND = "sudo -n systemctl reboot --force --force"


class SshMachine(Machine):
    """A host the run does not own: it is never created, modified (but reset) nor removed."""

    not_offered = {
        "console": "ssh: a host reached only over SSH has no console to read; its host key is "
                   "given (--host-key) instead of announced",
        "reset": "ssh: no platform can power-cycle a host the run does not own; hard_reset asks "
                 "the host itself for a forced reboot over SSH (passwordless sudo)",
    }

    def __init__(self, facts: PlatformFacts, endpoint: SSHEndpoint, host_keys: list[str]) -> None:
        self.facts = facts
        self._endpoint = endpoint
        self._host_keys = host_keys

    @property
    def ssh(self) -> SSHEndpoint:
        return self._endpoint

    def console_log(self) -> str:
        """A host reached only over SSH has no console we can read."""
        return ""

    def host_keys_hint(self) -> list[str] | None:
        return list(self._host_keys)

    def hard_reset(self) -> None:
        where = f"{self._endpoint.user}@{self._endpoint.host}:{self._endpoint.port}"
        try:
            client = ssh.connect(self._endpoint, self._host_keys, timeout=10)
        except (ssh.HandshakeFailed, ssh.LoginRefused) as exc:
            raise ProviderError(f"ssh: cannot reset {where}: {exc}") from None
        except DCTError:
            raise
        try:
            _, out, _ = client.exec_command(RESET_COMMAND, timeout=10)
            rc = out.channel.recv_exit_status() if out.channel.status_event.wait(5) else None
        except OSError:
            rc = None  # the connection dropped: the reboot has begun
        finally:
            client.close()
        if rc not in (None, 0):
            raise ProviderError(f"ssh: {where}: `{RESET_COMMAND}` failed with exit code {rc}; the "
                                "ssh provider resets a host through passwordless sudo")

    def destroy(self) -> list[BaseException]:
        return []

    def properties(self) -> dict[str, str]:
        return {"ssh_host": f"{self._endpoint.host}:{self._endpoint.port}"}
