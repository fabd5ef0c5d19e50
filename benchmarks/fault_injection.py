#!/usr/bin/env python3
"""Kill runs at random moments and count what they leave behind: QEMU processes, run dirs, key
files, emulated EC2 instances, key pairs and security groups, and changes to the image.

Each kill is one `pytest --provider=qemu|aws` run of a small suite selection, killed with SIGINT
(to its process group, as a terminal does), SIGTERM or SIGKILL at a phase chosen at random
(overlay, boot, ssh wait, checks, teardown) and recognised from what the run shows (run dir,
console, progress lines, test verdicts).  Leaks are looked for after a bounded wait, and again
after one `debian-cloud-tests gc`: SIGKILL leaves cleanup to the guard process and gc by design.

Expected duration (2 cores, TCG): about 20 s a kill on average, so the default 200 kills take
about an hour; --max-minutes (default 70) stops earlier and reports what was done.

Usage: python3 benchmarks/fault_injection.py [--kills 200] [--providers qemu,aws]
       [--max-minutes 70] [--seed S] [--image IMAGE]
(needs root: the runs are walled in network namespaces with only loopback up).
"""

from __future__ import annotations

import argparse
import collections
import enum
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WALLED = "DCT_FAULT_INJECTION_WALLED"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
SIGN_TIMEOUT = 360.0  # a TCG boot on a loaded machine
EXIT_TIMEOUT = 120.0  # cleanup after SIGINT/SIGTERM (terminating an emulated instance included)
SETTLE = 30.0  # the guard's reaping after SIGKILL (an emulated instance's termination included)
GC_MIN_AGE = 61.0  # gc leaves run dirs younger than a minute alone (a run may be starting)


class Phase(enum.Enum):
    STARTUP = "startup"  # nothing observable yet (only ever observed, never aimed at)
    OVERLAY = "overlay"
    BOOT = "boot"
    SSH_WAIT = "ssh wait"
    CHECKS = "checks"
    TEARDOWN = "teardown"


#: the share of kills aimed at each phase: the last three need a booted guest (30-110 s each)
WEIGHTS = {Phase.OVERLAY: 0.40, Phase.BOOT: 0.52, Phase.SSH_WAIT: 0.03, Phase.CHECKS: 0.03,
           Phase.TEARDOWN: 0.02}
#: the extra delay after a phase's sign, drawn uniformly up to this many seconds (the two small
#: suites' checks take 1-2 s in all, and a qemu teardown well under a second)
DELAY = {Phase.OVERLAY: 0.3, Phase.BOOT: 10.0, Phase.SSH_WAIT: 3.0, Phase.CHECKS: 0.5,
         Phase.TEARDOWN: 0.2}
SUITES = ("config/test_ssh.py", "config/test_system.py")
STAGE = re.compile(r"^\[(?:qemu|aws)\] (\S+(?: \S+)?)\s+[\d.]+s$", re.M)
VERDICT = re.compile(r" (PASSED|FAILED|ERROR)\b")
ANY_VERDICT = re.compile(r" (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
COLLECTED = re.compile(r"collected (\d+) items?")


@dataclass
class Kill:
    provider: str
    sig: str
    aimed: Phase
    phase: Phase = Phase.STARTUP  # where the run was when the signal went out
    killed: bool = False  # False: the run ended before the phase's sign
    before_gc: list[str] = field(default_factory=list)
    after_gc: list[str] = field(default_factory=list)
    image_changed: bool = False
    seconds: float = 0.0


class Run:
    """One pytest subprocess in its own process group, its output collected as it comes."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.text = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.text += line.decode(errors="replace")

    def after_ready(self) -> str | None:
        """The output after the "ssh ready" progress line (None before it)."""
        m = next((m for m in STAGE.finditer(self.text) if m.group(1) == "ssh"), None)
        return self.text[m.end():] if m else None

    def all_verdicts(self) -> bool:
        """Every collected check has its verdict (pytest's [100%] comes after the teardown)."""
        m = COLLECTED.search(self.text)
        return m is not None and len(ANY_VERDICT.findall(self.text)) >= int(m.group(1))

    def stages(self) -> set[str]:
        return {m.group(1) for m in STAGE.finditer(self.text)}


def _consoles(*dirs: Path) -> bool:
    return any(p.stat().st_size > 0 for d in dirs for p in d.glob("dct-run-*/console.log")
               if p.exists())


def observed(run: Run, tmpdir: Path, emu_dir: Path | None) -> Phase:
    """The phase the run is in, from its signs."""
    after = run.after_ready()
    if after is not None:
        if run.all_verdicts():  # the session's machine is torn down after the last verdict
            return Phase.TEARDOWN
        return Phase.CHECKS if VERDICT.search(after) else Phase.SSH_WAIT
    if run.stages() & {"host keys", "login prompt"}:
        return Phase.SSH_WAIT
    if run.stages() or _consoles(tmpdir, *([emu_dir] if emu_dir else [])):
        return Phase.BOOT
    return Phase.OVERLAY if any(tmpdir.glob("dct-run-*")) else Phase.STARTUP


def reached(aim: Phase, run: Run, tmpdir: Path, emu_dir: Path | None) -> bool:
    """Whether the sign of *aim* is showing (a later phase counts: the run moved on)."""
    order = list(Phase)
    return order.index(observed(run, tmpdir, emu_dir)) >= order.index(aim)


def _wait(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def _mentioning(needle: Path) -> list[str]:
    """Processes whose command line names *needle* (QEMU, guards, ssh of a run)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(needle).encode() in cmdline:
                program = cmdline.split(b"\0")[0].decode(errors="replace")
                found.append(f"pid {proc.name} {program}")
    return found


def _private_keys(base: Path) -> list[str]:
    keys = []
    for root, _dirs, files in os.walk(base):  # a run dir may vanish while it is walked
        for name in files:
            path = Path(root) / name
            try:
                if b"PRIVATE KEY" in path.read_bytes()[:64]:
                    keys.append(f"key {path}")
            except OSError:
                continue
    return keys


class Emulator:
    """moto's EC2 on 127.0.0.1 whose instances are QEMU guests (tests/fakes), for every aws run."""

    def __init__(self, image: Path, work: Path) -> None:
        sys.path.insert(0, str(ROOT))
        import pytest

        from tests.fakes.aws_qemu import QemuMachines
        from tests.fakes.aws_world import make_world
        from tests.fakes.moto_ec2 import CheckIp, MotoEc2

        self.dir = work / "emulator"
        self.dir.mkdir()
        tempfile.tempdir = str(self.dir)  # the emulated instances' run dirs land here
        self.moto, self.machines, self.checkip = MotoEc2(), QemuMachines(), CheckIp()
        self.patch = pytest.MonkeyPatch()
        self.world = make_world(self.moto, self.patch, work, self.machines, self.checkip)
        self.machines.images[self.world.ami] = image

    def leftovers(self) -> list[str]:
        from tests.fakes.moto_ec2 import leftovers

        left = [f"{kind} {i}" for kind, ids in leftovers(self.moto, self.world.region).items()
                for i in ids]
        return left + _mentioning(self.dir) + [f"run dir {p}" for p in self.dir.glob("dct-run-*")]

    def clean(self) -> None:
        """Remove a leak by hand so the next kill starts from nothing."""
        ec2 = self.world.ec2
        ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
        for group in ec2.describe_security_groups()["SecurityGroups"]:
            if group["GroupName"] != "default":
                ec2.delete_security_group(GroupId=group["GroupId"])
        for key in ec2.describe_key_pairs()["KeyPairs"]:
            ec2.delete_key_pair(KeyName=key["KeyName"])

    def close(self) -> None:
        self.machines.close()
        self.checkip.shutdown()
        self.moto.stop()
        self.patch.undo()


def _walled(cmd: list[str]) -> list[str]:
    """*cmd* in a network namespace of its own with only loopback up (as tests/conftest.py)."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not (unshare and ip):
        sys.exit("unshare (util-linux) and ip (iproute2) are needed to wall the runs in")
    return [unshare, "--net", "/bin/sh", "-c", f'{ip} link set lo up && exec "$@"', "sh", *cmd]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def plan(kills: int, providers: list[str], rng: random.Random) -> list[tuple[str, Phase, signal.Signals]]:
    """Kills spread over the providers, each phase and signal in proportion, in random order."""
    out = []
    for i, provider in enumerate(providers):
        n = kills // len(providers) + (1 if i < kills % len(providers) else 0)
        least = 1 if n >= len(WEIGHTS) else 0  # every phase once, when there are kills enough
        phases = [p for p, w in WEIGHTS.items() for _ in range(max(least, round(w * n)))]
        while len(phases) > n:  # the minimum of one each may overshoot: trim a cheap phase
            counts = Counter(phases)
            cheap = [p for p in (Phase.OVERLAY, Phase.BOOT) if counts[p]] or list(counts)
            phases.remove(max(cheap, key=lambda p: counts[p] - WEIGHTS[p] * n))
        phases += rng.choices(list(WEIGHTS), list(WEIGHTS.values()), k=n - len(phases))
        sigs = [SIGNALS[j % 3] for j in range(n)]
        rng.shuffle(sigs)
        out += [(provider, p, s) for p, s in zip(phases, sigs, strict=True)]
    rng.shuffle(out)
    return out


class Injector:
    def __init__(self, image: Path, work: Path, emulator: Emulator | None, rng: random.Random) -> None:
        from debian_cloud_tests.plugin import suites_dir

        self.image, self.work, self.emulator, self.rng = image, work, emulator, rng
        self.suites = [str(suites_dir() / s) for s in SUITES]
        self.digest = sha256(image)
        self.count = 0

    def command(self, provider: str, tmp: Path) -> list[str]:
        base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
                f"--artifacts-dir={tmp / 'artifacts'}", *self.suites]
        if provider == "qemu":  # a full guest network, walled in
            return _walled([*base, "--provider=qemu", f"--image={self.image}", "--qemu-network=user"])
        assert self.emulator is not None  # shares this namespace: moto and the guests are here
        return [*base, "--provider=aws", f"--image={self.emulator.world.ami}",
                f"--region={self.emulator.world.region}"]

    def leaks(self, tmpdir: Path) -> list[str]:
        left = _mentioning(tmpdir) + [f"run dir {p.name}" for p in tmpdir.glob("dct-run-*")]
        left += _private_keys(tmpdir)
        return left + (self.emulator.leftovers() if self.emulator else [])

    def one(self, provider: str, aim: Phase, sig: signal.Signals) -> Kill:
        self.count += 1
        tmp = self.work / f"kill-{self.count:03d}"
        tmpdir = tmp / "tmp"
        tmpdir.mkdir(parents=True)
        emu_dir = self.emulator.dir if self.emulator and provider == "aws" else None
        kill = Kill(provider, sig.name, aim)
        started = time.monotonic()
        env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"}
        run = Run(self.command(provider, tmp), tmp, env)
        try:
            if _wait(lambda: reached(aim, run, tmpdir, emu_dir) or run.proc.poll() is not None,
                     SIGN_TIMEOUT) and run.proc.poll() is None:
                time.sleep(self.rng.uniform(0, DELAY[aim]))
                kill.phase = observed(run, tmpdir, emu_dir)
                if run.proc.poll() is None:
                    kill.killed = True
                    if sig is signal.SIGINT:  # the terminal signals the foreground group
                        os.killpg(run.proc.pid, sig)
                    else:
                        run.proc.send_signal(sig)
            try:
                run.proc.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                kill.before_gc.append(f"run still alive {EXIT_TIMEOUT:.0f} s after {sig.name}")
        finally:
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)
                run.proc.wait()
        _wait(lambda: not self.leaks(tmpdir), SETTLE, 0.5)
        kill.before_gc += self.leaks(tmpdir)
        if kill.before_gc:
            self.gc(provider, tmpdir)
            kill.after_gc = self.leaks(tmpdir)
            if kill.after_gc:
                self.clean(tmpdir)
        if kill.after_gc or not kill.killed:
            (tmp / "output.txt").write_text(run.text)
        kill.image_changed = sha256(self.image) != self.digest
        kill.seconds = time.monotonic() - started
        if kill.killed and not kill.after_gc:
            shutil.rmtree(tmp, ignore_errors=True)
        return kill

    def gc(self, provider: str, tmpdir: Path) -> None:
        """One `debian-cloud-tests gc`, once the run dirs are old enough for it to touch."""
        dirs = list(tmpdir.glob("dct-run-*"))
        youngest = max((p.stat().st_mtime for p in dirs if p.exists()), default=0.0)
        time.sleep(max(0.0, youngest + GC_MIN_AGE - time.time()))
        cmd = [sys.executable, "-m", "debian_cloud_tests.cli", "gc"]
        if provider == "aws" and self.emulator:
            cmd += ["--provider", "aws", "--region", self.emulator.world.region]
        subprocess.run(cmd, env={**os.environ, "TMPDIR": str(tmpdir)}, capture_output=True, timeout=300)

    def clean(self, tmpdir: Path) -> None:
        from debian_cloud_tests.rundir import reap

        for path in tmpdir.glob("dct-run-*"):
            reap(path)
        for line in _mentioning(tmpdir):
            os.kill(int(line.split()[1]), signal.SIGKILL)
        if self.emulator:
            self.emulator.clean()


def report(kills: list[Kill], planned: int, wall: float, facts: str, image: Path) -> int:
    print(f"machine: {facts}; image {image.name}")
    print(f"{'provider':<8} {'signal':<7} {'phase':<9} {'kills':>5} {'missed':>6} {'gc-needed':>9} "
          f"{'leaks':>5} {'images':>6} {'seconds':>8}")
    rows: dict[tuple[str, str, str], list[Kill]] = defaultdict(list)
    for k in kills:
        rows[(k.provider, k.sig, k.phase.value if k.killed else f"({k.aimed.value})")].append(k)
    for (prov, sig, phase), ks in sorted(rows.items()):
        done = [k for k in ks if k.killed]
        print(f"{prov:<8} {sig:<7} {phase:<9} {len(done):>5} {len(ks) - len(done):>6} "
              f"{sum(bool(k.before_gc) for k in ks):>9} {sum(bool(k.after_gc) for k in ks):>5} "
              f"{sum(k.image_changed for k in ks):>6} {sum(k.seconds for k in ks):>8.0f}")
    for k in kills:
        for leak in k.after_gc:
            print(f"LEAK {k.provider} {k.sig} {k.phase.value}: {leak}")
    leaks = sum(bool(k.after_gc) for k in kills)
    changed = sum(k.image_changed for k in kills)
    print(f"kills: {sum(k.killed for k in kills)} of {planned} planned ({len(kills)} runs, "
          f"{sum(not k.killed for k in kills)} ended before their phase); needed gc: "
          f"{sum(bool(k.before_gc) for k in kills)}; leaks found: {leaks}; images changed: "
          f"{changed} (target 0 and 0); wall time {wall / 60:.1f} min")
    return 1 if leaks or changed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n")[2])
    parser.add_argument("--kills", type=int, default=200, help="total kills (default 200)")
    parser.add_argument("--providers", default="qemu,aws", help="qemu, aws or both (default)")
    parser.add_argument("--max-minutes", type=float, default=70.0, help="stop early (default 70)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--image", help="default: the good test image, built or taken from the cache")
    args = parser.parse_args()
    providers = [p for p in args.providers.split(",") if p]
    if not set(providers) <= {"qemu", "aws"}:
        parser.error("--providers: qemu, aws")
    if os.environ.get(WALLED) != "1":
        # the image is built (or found) before the walls go up; then everything runs walled in
        if not args.image:
            from debian_cloud_tests.imagebuild.builder import Recipe, build_image

            args.image = str(build_image(Recipe()))
        seed = args.seed if args.seed is not None else random.randrange(1 << 32)
        cmd = [sys.executable, __file__, f"--kills={args.kills}", f"--providers={','.join(providers)}",
               f"--max-minutes={args.max_minutes}", f"--seed={seed}", f"--image={args.image}"]
        inner = subprocess.Popen(_walled(cmd), env={**os.environ, WALLED: "1"})
        while True:
            try:
                return inner.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the inner run too: it stops and reports
                continue

    rng = random.Random(args.seed)
    image = Path(args.image).resolve()
    from qemu_fleet import machine_facts

    facts = machine_facts()
    print(f"seed {args.seed}, {args.kills} kills on {', '.join(providers)}, image {image}", flush=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="dct-faults-"))
    kills: list[Kill] = []
    try:
        emulator = Emulator(image, work) if "aws" in providers else None
        try:
            injector = Injector(image, work, emulator, rng)
            todo = collections.deque(plan(args.kills, providers, rng))
            # a run that ends before the moment aimed at is no kill: it is aimed again, later
            # (bounded: some phases, a quick teardown, are hard to hit on a fast run)
            replays = max(5, args.kills // 10)
            while todo:
                provider, aim, sig = todo.popleft()
                if time.monotonic() - started > args.max_minutes * 60:
                    print(f"--max-minutes {args.max_minutes:g} reached", flush=True)
                    break
                try:
                    k = injector.one(provider, aim, sig)
                except KeyboardInterrupt:  # Ctrl-C: report what was done
                    print("interrupted", flush=True)
                    break
                kills.append(k)
                landed = sum(x.killed for x in kills)
                if not k.killed and replays and landed + len(todo) < args.kills:
                    replays -= 1
                    todo.append((provider, aim, sig))
                print(f"{len(kills):3d} {provider:<4} {sig.name:<7} aimed {aim.value:<8} "
                      f"{'at ' + k.phase.value if k.killed else 'ended first':<14} {k.seconds:5.1f}s "
                      f"gc {'yes' if k.before_gc else 'no '} leaks {len(k.after_gc)}"
                      + (f" ({'; '.join(k.after_gc[:3])})" if k.after_gc else ""), flush=True)
        finally:
            if emulator:
                emulator.close()
    finally:
        if any(k.after_gc or not k.killed for k in kills):  # for a look at what happened
            print(f"outputs of the leaking or missed runs: {work}/kill-*/output.txt")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return report(kills, args.kills, time.monotonic() - started, facts, image)


if __name__ == "__main__":
    sys.exit(main())
