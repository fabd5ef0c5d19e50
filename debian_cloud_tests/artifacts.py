"""What a run records: JUnit properties describing it, and the logs collected from its machines."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from . import __version__
from .lifecycle import Instance
from .machine import Machine
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
        "dct_version": __version__, "run_id": run_id, "provider": provider.name,
        "image": spec.image, "arch": spec.arch.value,
        "firmware": spec.firmware.value if spec.firmware else "",
        "instance_type": spec.instance_type or "",
        "image_type": spec.image_type.value if spec.image_type else "",
    }
    path = Path(spec.image)
    if path.is_file():
        from .imagesum import sha256

        props["image_sha256"] = sha256(path)
        props["image_size"] = str(path.stat().st_size)
    props.update(provider.properties())
    return props


def instance_properties(inst: Instance, artifacts_dir: Path) -> dict[str, str]:
    """Properties known once the machine is ready: boot time, accel, the guest's os-release."""
    props = {f"{k}": v for k, v in inst.machine.properties().items()}
    props["boot_seconds"] = f"{inst.ready.boot_seconds:.1f}"
    if inst.ready.keys_seconds is not None:  # the console announced the host keys at
        props["host_keys_known_seconds"] = f"{inst.ready.keys_seconds:.1f}"
    if inst.ready.cloud_init_seconds is not None:
        props["cloud_init_wait_seconds"] = f"{inst.ready.cloud_init_seconds:.1f}"
    props["instance_id"] = inst.machine.facts.instance_id
    props["console_log"] = str(console_path(inst.machine, artifacts_dir))
    if inst.host is not None:
        res = inst.host.run(". /etc/os-release && echo \"$PRETTY_NAME|$VERSION_ID\"")
        if res.rc == 0:
            pretty, _, version = res.stdout.strip().partition("|")
            props["os_release"] = pretty
            props["os_version_id"] = version
        props.update(comparable_facts(inst))
    return props


def comparable_facts(inst: Instance) -> dict[str, str]:
    """Facts the gate compares with the last published image: packages, listening sockets and
    cloud-init's stage times (JSON in JUnit properties, so any two runs can be compared)."""
    facts: dict[str, str] = {}
    pkgs = inst.host.run("dpkg-query -W -f '${Package} ${Version}\\n'")
    if pkgs.rc == 0:
        facts["packages"] = json.dumps(dict(line.split(" ", 1) for line in pkgs.stdout.splitlines()
                                            if " " in line), sort_keys=True)
    socks = inst.host.run("ss -Htuln")
    if socks.rc == 0:
        # protocol and local port only: addresses and ephemeral ports differ between runs
        found = set()
        for fields in (ln.split() for ln in socks.stdout.splitlines()):
            port = fields[4].rsplit(":", 1)[-1] if len(fields) > 4 else ""
            if port.isdigit() and int(port) < EPHEMERAL_PORTS:
                found.add(f"{fields[0]}/{port}")
        facts["listening_sockets"] = json.dumps(sorted(found))
    status = inst.host.run("cat /run/cloud-init/status.json")
    if status.rc == 0:
        try:
            v1 = json.loads(status.stdout).get("v1", {})
            stages = {name: round(st["finished"] - st["start"], 2) for name, st in v1.items()
                      if isinstance(st, dict) and st.get("start") and st.get("finished")}
            facts["cloud_init_stage_seconds"] = json.dumps(stages, sort_keys=True)
        except (ValueError, TypeError, KeyError):
            pass
    return facts


def collect(inst: Instance, artifacts_dir: Path, with_guest_logs: bool) -> list[Path]:
    """Copy the console log, and on failure the guest's cloud-init logs and journal."""
    written: list[Path] = []
    try:
        console = collect_console(inst.machine, artifacts_dir)
        written += [console] if console else []
        prefix = inst.machine.facts.instance_id
        if with_guest_logs and inst.host is not None:
            for name, cmd in GUEST_LOGS.items():
                res = inst.host.run(f"sudo -n sh -c {shlex.quote(cmd)}")
                target = artifacts_dir / f"{prefix}.{name}"
                target.write_text(res.stdout if res.rc == 0 else f"rc={res.rc}\n{res.stderr}")
                written.append(target)
    except Exception as exc:  # a dead guest must not hide the test results
        print(f"debian-cloud-tests: warning: collecting logs failed: {exc}", file=sys.stderr)
    return written


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
