"""What a provider hands back: a running machine, and what the platform set for it.

Suites see machines only through this module, never through a provider: the metadata suite
compares :class:`PlatformFacts` with what the guest reports, the BVT suite reads the console.
"""

from __future__ import annotations

import abc
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .spec import Arch, Firmware


@dataclass(frozen=True)
class SSHEndpoint:
    host: str
    port: int
    user: str
    key_file: Path


@dataclass
class PlatformFacts:
    """What the platform set for an instance, to compare with the guest's own view."""

    provider: str
    instance_id: str
    hostname: str
    arch: Arch
    firmware: Firmware | None
    datasource: str  # cloud-init's datasource name, e.g. "NoCloud", "Ec2"
    instance_type: str | None = None
    region: str | None = None
    zone: str | None = None
    disk_size: int | None = None  # bytes, as the platform attached it
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkEnd:
    """One machine's side of a :class:`PeerLink`: the address the other reaches it at, and, for
    a link of a test's own, the MAC of the interface the check gives that address with *prefix*
    (None: the address is already the machine's, as a cloud instance's private address is)."""

    address: str
    mac: str | None = None
    prefix: int = 32


class PeerLink:
    """Two machines of the run able to reach each other on a TCP port, for a check between them:
    a network only the two share (QEMU), or their cloud network with the port opened from one to
    the other.  :meth:`close` takes it away; it never raises."""

    def __init__(self, ends: tuple[LinkEnd, LinkEnd]) -> None:
        self.ends = ends

    def close(self) -> list[BaseException]:
        return []


class Machine(abc.ABC):
    """One running instance.  Destroy never raises: it logs and returns what went wrong."""

    facts: PlatformFacts
    #: seconds from launch to a verified SSH handshake; set by the readiness wait
    boot_seconds: float | None = None
    #: cloud-init's "status --wait" outcome as seen during readiness
    ssh_login_error: str | None = None
    #: the console is read as the guest prints it (a local serial port), not a cloud's delayed
    #: snapshot: only then does silence on it mean something
    console_is_live: bool = False
    #: the platform steps this machine does not offer ("console": a serial console to read,
    #: "reset": a power cycle through the platform), each with why, in one line: the contract
    #: tests assert the reason instead of skipping the step silently
    not_offered: Mapping[str, str] = {}

    @property
    @abc.abstractmethod
    def ssh(self) -> SSHEndpoint:
        """Where and as whom to connect."""

    @abc.abstractmethod
    def console_log(self) -> str:
        """Everything the serial console printed so far ("" where the platform has none yet)."""

    @abc.abstractmethod
    def host_keys_hint(self) -> list[str] | None:
        """Public host keys known without the console (injected ones), else None."""

    @abc.abstractmethod
    def hard_reset(self) -> None:
        """Reset through the platform, as a power cycle: the guest gets no say."""

    def power_cycle(self) -> None:
        """Stop the machine and start it again on the same disk, where the platform can (a
        last resort for a platform that hangs in its own reset)."""
        raise NotImplementedError

    @abc.abstractmethod
    def destroy(self) -> list[BaseException]:
        """Remove the instance and everything created for it; returns the failures, never raises."""

    def describe_access(self, known_hosts: Path | None = None) -> str:
        """How a human reaches the machine when it is kept running: with *known_hosts* (the host
        keys the run verified), ssh checks the key strictly instead of trusting the first answer."""
        ep = self.ssh
        check = (f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))} -o StrictHostKeyChecking=yes "
                 if known_hosts is not None else "")
        return f"ssh -i {shlex.quote(str(ep.key_file))} -p {ep.port} {check}{ep.user}@{ep.host}"

    def properties(self) -> dict[str, str]:
        """Provider-specific JUnit properties (versions, accel…)."""
        return {}

    def platform_log(self) -> str:
        """The platform's own messages about the machine (e.g. QEMU's stderr), for errors."""
        return ""

    def provisioning_reports(self) -> list[str] | None:
        """The states the guest reported to its platform's provisioning service, in order, where
        the platform waits for such a report and lets the run see it (Azure's wireserver
        health reports, emulated); None where that is not known."""
        return None

    def is_alive(self) -> bool:
        """False once the instance is known to be gone (crashed, powered off)."""
        return True

    def link_to(self, other: Machine, port: int) -> PeerLink:
        """Let this machine and *other*, of the same run, reach each other on TCP *port*.

        Raises:
            NotImplementedError: these two cannot be (the provider's ``peer_link_refused`` says
                why none of its machines can).
            ProviderError: they could and it failed.
        """
        raise NotImplementedError("the platform has no way to let two machines reach each other")
