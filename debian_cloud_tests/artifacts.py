"""What a run records: JUnit properties describing it, and the logs collected from its machines."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from . import __version__, parallel
from .facts import Facts
from .junitprops import Prop
from .lifecycle import Instance
from .machine import Machine
from .probes import CLOUD_INIT_STATUS, DPKG_PACKAGES, LISTENING, OS_RELEASE
from .provider import Provider
from .spec import LaunchSpec

EPHEMERAL_PORTS = 32768  # Linux's default ip_local_port_range starts here
GUEST_LOGS = {
    "cloud-init.log": "cat /var/log/cloud-init.log",
    "cloud-init-output.log": "cat /var/log/cloud-init-output.log",
    "journal.txt": "journalctl -b --no-pager",
    "cloud-init-status.txt": "cloud-init status --long",
}


def run_properties(provider: Provider, spec: LaunchSpec, run_id: str) -> dict[str, str]:
    """Properties known before anything boots (recorded even when the launch fails)."""
    props = {
        Prop.DCT_VERSION: __version__, Prop.RUN_ID: run_id, Prop.PROVIDER: provider.name,
        Prop.IMAGE: spec.image, Prop.ARCH: spec.arch.value,
        Prop.FIRMWARE: spec.firmware.value if spec.firmware else "",
        Prop.INSTANCE_TYPE: spec.instance_type or "",
        Prop.IMAGE_TYPE: spec.image_type.value if spec.image_type else "",
    }
    if spec.release:  # the release under test (--release or the image's name), not the guest's word
        props[Prop.RELEASE] = spec.release
    path = Path(spec.image)
    if path.is_file():
        from .imagesum import sha256

        props[Prop.IMAGE_SHA256] = sha256(path)
        props[Prop.IMAGE_SIZE] = str(path.stat().st_size)
    props.update(provider.properties())
    props.update(parallel.properties())
    return props


def instance_properties(inst: Instance, artifacts_dir: Path) -> dict[str, str]:
    """Properties known once the machine is ready, without asking the guest: boot time, accel."""
    props = {f"{k}": v for k, v in inst.machine.properties().items()}
    props[Prop.BOOT_SECONDS] = f"{inst.ready.boot_seconds:.1f}"
    if inst.ready.keys_seconds is not None:  # the console announced the host keys at
        props[Prop.HOST_KEYS_KNOWN_SECONDS] = f"{inst.ready.keys_seconds:.1f}"
    if inst.ready.cloud_init_seconds is not None:
        props[Prop.CLOUD_INIT_WAIT_SECONDS] = f"{inst.ready.cloud_init_seconds:.1f}"
    props[Prop.INSTANCE_ID] = inst.machine.facts.instance_id
    props[Prop.CONSOLE_LOG] = str(console_path(inst.machine, artifacts_dir))
    return props


def guest_properties(facts: Facts) -> dict[str, str]:
    """What the guest says of itself, read by the gather the checks share (probes.FOR_PROPERTIES):
    its os-release, and the facts the gate compares with the last published image (packages,
    listening sockets, cloud-init's stage times) as JSON, so any two runs can be compared."""
    props: dict[str, str] = {}
    release = facts[OS_RELEASE.name]
    if release.ok:
        fields = os_release_fields(release.stdout)
        props[Prop.OS_RELEASE] = fields.get("PRETTY_NAME", "")
        props[Prop.OS_VERSION_ID] = fields.get("VERSION_ID", "")
    pkgs = facts[DPKG_PACKAGES.name]
    if pkgs.ok:
        versions = {f[2]: f[3] for f in (ln.split() for ln in pkgs.lines()) if len(f) == 4}
        props[Prop.PACKAGES] = json.dumps(versions, sort_keys=True)
    socks = facts[LISTENING.name]
    if socks.ok:
        # protocol and local port only: addresses and ephemeral ports differ between runs
        found = set()
        for fields in (ln.split() for ln in socks.stdout.splitlines()):
            port = fields[4].rsplit(":", 1)[-1] if len(fields) > 4 else ""
            if port.isdigit() and int(port) < EPHEMERAL_PORTS:
                found.add(f"{fields[0]}/{port}")
        props[Prop.LISTENING_SOCKETS] = json.dumps(sorted(found))
    status = facts[CLOUD_INIT_STATUS.name]
    if status.ok:
        try:
            v1 = json.loads(status.stdout).get("v1", {})
            stages = {name: round(st["finished"] - st["start"], 2) for name, st in v1.items()
                      if isinstance(st, dict) and st.get("start") and st.get("finished")}
            props[Prop.CLOUD_INIT_STAGE_SECONDS] = json.dumps(stages, sort_keys=True)
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
    props[Prop.PROBE_SECONDS] = json.dumps({name: list(span) for name, span in facts.timings().items()})
    return props


def os_release_fields(text: str) -> dict[str, str]:
    """os-release(5): KEY=value lines, values shell-quoted."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.lstrip().startswith("#"):
            try:
                words = shlex.split(value)
            except ValueError:
                continue
            fields[key.strip()] = " ".join(words)
    return fields


def collect(inst: Instance, artifacts_dir: Path, with_guest_logs: bool) -> list[Path]:
    """Copy the console log, and on failure the guest's cloud-init logs and journal."""
    written: list[Path] = []
    try:
        console = collect_console(inst.machine, artifacts_dir)
        written += [console] if console else []
        prefix = inst.machine.facts.instance_id
        if with_guest_logs and inst.host is not None:
            for name, cmd in GUEST_LOGS.items():
                rc, out, err = _bounded(inst, f"sudo -n sh -c {shlex.quote(cmd)}")
                target = artifacts_dir / f"{prefix}.{name}"
                target.write_text(out if rc == 0 else f"rc={rc}\n{err}")
                written.append(target)
    except Exception as exc:  # a dead guest must not hide the test results
        print(f"debian-cloud-tests: warning: collecting logs failed: {exc}", file=sys.stderr)
    return written


#: seconds a guest log may take to come: a machine that went down mid-run (a boot stopped in its
#: initramfs) may still hold a connection open that never answers again
GUEST_LOG_SECONDS = 60.0


def _bounded(inst: Instance, command: str) -> tuple[int, str, str]:
    """*command*'s exit status, stdout and stderr, or an error after GUEST_LOG_SECONDS."""
    transport = inst.host.backend.client.get_transport()
    chan = transport.open_session(timeout=GUEST_LOG_SECONDS)
    try:
        chan.settimeout(GUEST_LOG_SECONDS)
        chan.exec_command(command)
        out = chan.makefile("rb").read().decode(errors="replace")
        err = chan.makefile_stderr("rb").read().decode(errors="replace")
        return chan.recv_exit_status(), out, err
    finally:
        chan.close()


def console_path(machine: Machine, artifacts_dir: Path) -> Path:
    """Where a machine's console log is collected (and what the JUnit property names)."""
    return artifacts_dir / f"{machine.facts.instance_id}.console.log"


def collect_console(machine: Machine, artifacts_dir: Path) -> Path | None:
    """Copy a machine's console log (for one that never became ready, the only record of why)."""
    try:
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        target = console_path(machine, artifacts_dir)
        target.write_text(machine.console_log())
        return target
    except OSError:
        return None
