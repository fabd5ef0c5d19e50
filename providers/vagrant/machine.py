"""A Vagrant machine on libvirt: `vagrant up` in the background, `vagrant ssh-config` for the
endpoint, libvirt for the hard reset, `vagrant destroy -f` and the box's volume for the end.

`vagrant up` blocks until its own SSH probe (which does not verify host keys) succeeds; it runs
in the background instead, so the framework's readiness wait reads the console, shows progress,
verifies the host key announced there, and tells a refused login from a dead machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from debian_cloud_tests import ssh
from debian_cloud_tests.errors import ProviderError
from debian_cloud_tests.machine import Machine, PlatformFacts, SSHEndpoint

from . import box, pool, tools
from .project import Project

UP_LOG = "vagrant-up.log"
STOP_TIMEOUT = 60.0
_STATE_EVERY = 2.0


class VagrantMachine(Machine):
    """The one machine of a generated Vagrantfile, in the run dir."""

    def __init__(self, project: Project, facts: PlatformFacts, ssh_user: str, key_file: Path,
                 console_path: Path, injected_host_keys: list[str] | None,
                 properties: dict[str, str], run_box: str | None, seed_volume: str) -> None:
        self.project = project
        self.facts = facts
        self.console_path = console_path
        self._ssh_user = ssh_user
        self._key_file = key_file
        self._injected = injected_host_keys
        self._properties = properties
        #: a box added for this run only: its pool volume goes with the machine
        self._run_box = run_box
        #: the NoCloud seed, uploaded into the pool
        self._seed_volume = seed_volume
        self._up: subprocess.Popen[bytes] | None = None
        self._endpoint: SSHEndpoint | None = None
        self._state: tuple[float, bool] = (0.0, True)

    def start(self) -> None:
        """Start `vagrant up` in its own session (Ctrl-C is ours to handle, not Vagrant's).

        A run killed too hard to destroy its machine leaves it to the run dir's guard: `vagrant
        up`'s command line does not name the run dir, its working directory does, and the
        provider's ``gc.collect_run`` stops it by that before removing the run's domain and
        volumes (``debian-cloud-tests gc`` retries what the guard could not).
        """
        with (self.project.root / UP_LOG).open("wb") as log:
            # SIGINT at its default: a runner started in the background ignores it, and vagrant
            # would inherit that and outlive our Ctrl-C by STOP_TIMEOUT
            self._up = subprocess.Popen(
                ["env", "--default-signal=INT", "vagrant", "up", "--provider=libvirt", "--no-provision"],
                cwd=self.project.root,
                env=self.project.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)

    @property
    def domain_id(self) -> str:
        """The libvirt domain's UUID, as vagrant-libvirt records it ("" before it is created)."""
        try:
            return (self.project.root / ".vagrant/machines/default/libvirt/id").read_text().strip()
        except OSError:
            return ""

    @property
    def ssh(self) -> SSHEndpoint:
        """Asked of `vagrant ssh-config` once the guest has an address, then remembered."""
        if self._endpoint is None:
            try:
                conf = self.project.ssh_config()
            except ProviderError as exc:
                # Not an address yet (no DHCP lease): the readiness wait tries again.
                raise ssh.HandshakeFailed(f"no address from vagrant yet ({exc.message[:160]})") from None
            self._endpoint = SSHEndpoint(conf["HostName"], int(conf.get("Port", "22")),
                                         conf.get("User", self._ssh_user), self._key_file)
        return self._endpoint

    def console_log(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except OSError:
            return ""

    def host_keys_hint(self) -> list[str] | None:
        return self._injected

    def hard_reset(self) -> None:
        domain = self.domain_id
        if not domain:
            raise ProviderError("vagrant: hard reset: vagrant recorded no libvirt domain")
        tools.virsh("reset", domain)

    def is_alive(self) -> bool:
        """While `vagrant up` runs, yes; after it, what libvirt says (asked every 2 s at most)."""
        if self._up is not None and self._up.poll() is None:
            return True
        asked, alive = self._state
        if time.monotonic() - asked >= _STATE_EVERY:
            domain = self.domain_id
            state = tools.virsh("domstate", domain, check=False).stdout.strip() if domain else ""
            alive = state in ("running", "paused", "in shutdown")
            self._state = (time.monotonic(), alive)
        return alive

    def platform_log(self) -> str:
        """`vagrant up`'s output, without its progress bars."""
        try:
            text = (self.project.root / UP_LOG).read_text(errors="replace")
        except OSError:
            return ""
        # A Ruby backtrace says what went wrong on its first line, then "from …" frames.
        lines = [tools.one_line(ln) for ln in text.splitlines()
                 if ln.strip() and not ln.strip().startswith("from ")]
        return "\n".join(ln for ln in lines if ln != "(no message)")

    def _stop_up(self) -> None:
        """Interrupt a `vagrant up` still running, as Ctrl-C would, then kill it."""
        if self._up is None or self._up.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self._up.pid, sig)
                self._up.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return

    def destroy(self) -> list[BaseException]:
        """`vagrant destroy -f`, the run's box and seed volumes, then a check that the domain is
        gone."""
        errors: list[BaseException] = []
        domain = self.domain_id
        self._stop_up()
        try:
            self.project.destroy()
        except Exception as exc:
            errors.append(exc)
        if self._run_box:
            errors += pool.remove(box.volume_prefix(self._run_box))
        errors += pool.remove(self._seed_volume)
        if domain and tools.virsh("dominfo", domain, check=False).returncode == 0:
            errors.append(ProviderError(f"vagrant: libvirt domain {domain} still exists after "
                                        "`vagrant destroy -f`"))
        return errors

    def describe_access(self, known_hosts: Path | None = None) -> str:
        root = self.project.root
        home = self.project.env.get("VAGRANT_HOME")
        env = f"VAGRANT_HOME={home} " if home else ""
        return (f"{super().describe_access(known_hosts)}\n  console: {self.console_path}\n"
                f"  stop it: cd {root} && {env}vagrant destroy -f; rm -r {root}")

    def properties(self) -> dict[str, str]:
        return {**self._properties, "libvirt_domain": self.domain_id}
