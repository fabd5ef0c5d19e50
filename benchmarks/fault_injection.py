#!/usr/bin/env python3
"""Kill runs at random moments and count what they leave behind: processes, run dirs, key files,
what the run created in its cloud (instances, firewall rules or security groups, resource groups,
key pairs; libvirt domains and volumes) and changes to the image.

Each kill is one `pytest --provider=P` run of a small suite selection, P one of qemu, aws, gce,
azure, openstack and vagrant, killed with SIGINT (to its process group, as a terminal does),
SIGTERM or SIGKILL at a phase (overlay, boot, ssh wait, checks, teardown) recognised from what the
run shows (run dir, console, progress lines, test verdicts).  The clouds are the emulators the
end-to-end tests use (see fault_clouds.py): moto's EC2, the Compute Engine, Resource Manager and
OpenStack fakes, each instance a real QEMU guest booted from the image (no sshd stand-in: every
phase, the early ones included, runs against a guest as on a cloud), and for vagrant a libvirtd in
a namespace of its own booting a box of the image.  The plan aims at every provider x phase x
signal combination once first, then fills the rest at random (seeded).  Leaks are looked for after
a bounded wait, on this machine and in the cloud's own state, and again after one
`debian-cloud-tests gc --provider P` where a kill left something; after the last kill gc runs once
whatever was found, and everything is looked at again.  SIGKILL leaves cleanup to the guard
process and gc by design.

Expected duration (2 cores, TCG): 12-16 s a kill on average on qemu and aws (measured; a kill
aimed after the boot costs a boot); gce, azure, openstack and vagrant are not measured yet (their
boots are guests as aws's; vagrant adds Vagrant's own start and the box import).  --max-minutes
(default 120) stops earlier and reports what was done.

Usage: python3 benchmarks/fault_injection.py [--kills 300 | --kills-per-provider 50]
       [--providers qemu,aws,gce,azure,openstack,vagrant] [--max-minutes 120] [--seed S]
       [--image IMAGE] [--phases overlay,boot,ssh wait,checks,teardown]
(needs root: the runs are walled in network namespaces with only loopback up; vagrant needs
vagrant, vagrant-libvirt and libvirtd, see tests/fakes/libvirt_netns.py).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import enum
import hashlib
import math
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


#: the share of the kills beyond the first of each combination aimed at each phase: the last three
#: need a booted guest (30-110 s each)
WEIGHTS = {Phase.OVERLAY: 0.40, Phase.BOOT: 0.52, Phase.SSH_WAIT: 0.03, Phase.CHECKS: 0.03,
           Phase.TEARDOWN: 0.02}
#: the extra delay after a phase's sign, drawn uniformly up to this many seconds (the SSH wait,
#: from the announced host keys to a verified handshake, is about a second; the checks phase,
#: from there through cloud-init's wait and the probes to the two small suites' last verdict,
#: 3-5 s; a qemu teardown well under a second)
DELAY = {Phase.OVERLAY: 0.3, Phase.BOOT: 10.0, Phase.SSH_WAIT: 0.5, Phase.CHECKS: 3.0,
         Phase.TEARDOWN: 0.2}
PHASES = tuple(WEIGHTS)  # the phases aimed at
DEFAULT_KILLS = 300
DEFAULT_MINUTES = 120.0
PROVIDERS = ("qemu", "aws", "gce", "azure", "openstack", "vagrant")
MAX_RETRIES = 3  # a combination aimed at again at most this many times when it was not hit
SUITES = ("config/test_ssh.py", "config/test_system.py")
STAGE = re.compile(r"^\[[a-z]+\] (\S+(?: \S+)?)\s+[\d.]+s$", re.M)
ANY_VERDICT = re.compile(r" (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
COLLECTED = re.compile(r"collected (\d+) items?")


@dataclass
class Kill:
    provider: str
    sig: str
    aimed: Phase
    phase: Phase = Phase.STARTUP  # where the run was when the signal went out
    killed: bool = False  # False: the run ended before the phase's sign
    unheeded: bool = False  # signalled, yet the run went on and ended as if it had not been
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


def observed(run: Run, tmpdir: Path, consoles: Path | None) -> Phase:
    """The phase the run is in, from its signs.

    The checks phase starts at the "ssh" progress line (a verified handshake: the SSH wait is
    over) and takes in cloud-init's wait, whose exit code a check reads, and the probes' gather,
    which is the checks' reading of the guest: the same span the suites' figure clocks.
    """
    if run.after_ready() is not None:
        # the session's machine is torn down after the last verdict
        return Phase.TEARDOWN if run.all_verdicts() else Phase.CHECKS
    if run.stages() & {"host keys", "login prompt"}:
        return Phase.SSH_WAIT
    if run.stages() or _consoles(tmpdir, *([consoles] if consoles else [])):
        return Phase.BOOT
    return Phase.OVERLAY if any(tmpdir.glob("dct-run-*")) else Phase.STARTUP


def reached(aim: Phase, run: Run, tmpdir: Path, consoles: Path | None) -> bool:
    """Whether the sign of *aim* is showing (a later phase counts: the run moved on)."""
    order = list(Phase)
    return order.index(observed(run, tmpdir, consoles)) >= order.index(aim)


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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


Aim = tuple[str, Phase, signal.Signals]


def split(kills: int, providers: list[str]) -> dict[str, int]:
    """*kills* in all, shared out over *providers* as evenly as they go."""
    return {p: kills // len(providers) + (1 if i < kills % len(providers) else 0)
            for i, p in enumerate(providers)}


def plan(targets: dict[str, int], rng: random.Random,
         aimed: tuple[Phase, ...] = PHASES) -> list[Aim]:
    """The kills to aim, *targets[provider]* on each provider, at the *aimed* phases.

    First every phase x signal combination once on each provider (with fewer kills than the
    combinations: distinct ones, as many phases and as even signals as they allow), in random
    order; then the rest at random: phases in WEIGHTS proportion, signals evenly.
    """
    cover: list[Aim] = []
    fill: list[Aim] = []
    for provider, n in targets.items():
        phases, sigs = list(aimed), list(SIGNALS)
        rng.shuffle(phases)
        rng.shuffle(sigs)
        # i -> (i mod P, i mod 3) is one to one over 0..3P-1 when P phases and 3 signals are
        # coprime (5, 4, 2, 1): the first k differ, with k phases and signals within one of each
        # other.  Otherwise (3) by diagonals: each run of P holds every phase and every signal.
        n_p, n_s = len(phases), len(sigs)
        combos = ([(provider, phases[i % n_p], sigs[i % n_s]) for i in range(n_p * n_s)]
                  if math.gcd(n_p, n_s) == 1 else
                  [(provider, phases[j], sigs[(j + d) % n_s]) for d in range(n_s) for j in range(n_p)])
        first = min(n, len(combos))
        cover += combos[:first]
        rest = n - first
        more = rng.choices(aimed, [WEIGHTS[p] for p in aimed], k=rest)
        offset = rng.randrange(len(SIGNALS))
        signals = [SIGNALS[(offset + j) % len(SIGNALS)] for j in range(rest)]
        rng.shuffle(signals)
        fill += [(provider, p, s) for p, s in zip(more, signals, strict=True)]
    rng.shuffle(cover)
    rng.shuffle(fill)
    return cover + fill


class Injector:
    def __init__(self, image: Path, work: Path, clouds: dict[str, Any], guests: Path,
                 rng: random.Random) -> None:
        from debian_cloud_tests.plugin import suites_dir

        self.image, self.work, self.clouds, self.guests, self.rng = image, work, clouds, guests, rng
        self.suites = [str(suites_dir() / s) for s in SUITES]
        self.digest = sha256(image)
        self.count = 0
        self.spent: Path | None = None  # the last clean kill's dir: kept for the final gc
        self.provider_of: dict[Path, str] = {}  # each kill's TMPDIR -> its provider

    def command(self, provider: str, tmp: Path) -> list[str]:
        base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
                f"--artifacts-dir={tmp / 'artifacts'}", *self.suites]
        return self.clouds[provider].command(base, self.image, tmp)  # type: ignore[no-any-return]

    def leaks(self, tmpdir: Path, provider: str) -> list[str]:
        """What the run left: on this machine (processes, run dirs, keys; the emulated instances'
        guests) and in its provider's cloud."""
        left = _mentioning(tmpdir) + [f"run dir {p.name}" for p in tmpdir.glob("dct-run-*")]
        left += _private_keys(tmpdir)
        left += _mentioning(self.guests) + [f"guest run dir {p.name}" for p in self.guests.glob("dct-run-*")]
        return left + self.clouds[provider].leftovers()

    def one(self, provider: str, aim: Phase, sig: signal.Signals) -> Kill:
        if self.spent:
            shutil.rmtree(self.spent, ignore_errors=True)
            self.spent = None
        self.count += 1
        tmp = self.work / f"kill-{self.count:03d}"
        tmpdir = tmp / "tmp"
        tmpdir.mkdir(parents=True)
        self.provider_of[tmpdir] = provider
        cloud = self.clouds[provider]
        consoles = cloud.consoles
        kill = Kill(provider, sig.name, aim)
        started = time.monotonic()
        env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1", **cloud.env(tmp)}
        run = Run(self.command(provider, tmp), tmp, env)
        try:
            if _wait(lambda: reached(aim, run, tmpdir, consoles) or run.proc.poll() is not None,
                     SIGN_TIMEOUT) and run.proc.poll() is None:
                time.sleep(self.rng.uniform(0, DELAY[aim]))
                kill.phase = observed(run, tmpdir, consoles)
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
            # an interrupted pytest exits 2 (SIGKILL: -9); 0 means the signal changed nothing
            kill.unheeded = kill.killed and run.proc.returncode == 0
        finally:
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)
                run.proc.wait()
        _wait(lambda: not self.leaks(tmpdir, provider), SETTLE, 0.5)
        kill.before_gc += self.leaks(tmpdir, provider)
        if kill.before_gc:
            kill.after_gc = self.gc(provider, tmpdir)
            kill.after_gc += self.leaks(tmpdir, provider)
            if kill.after_gc:
                self.clean(provider, tmpdir)
        if kill.before_gc or not kill.killed:  # the run's own account of what it left
            (tmp / "output.txt").write_text(run.text)
        kill.image_changed = sha256(self.image) != self.digest
        kill.seconds = time.monotonic() - started
        if kill.killed and not kill.before_gc:  # nothing to look into: removed with the next
            self.spent = tmp
        return kill

    def gc(self, provider: str, tmpdir: Path) -> list[str]:
        """One `debian-cloud-tests gc` for the local side and *provider*'s cloud, where its runs
        run, once the run dirs are old enough for it to touch (its failure, if it failed: a gc
        that fails is one that did not clean)."""
        dirs = list(tmpdir.glob("dct-run-*"))
        youngest = max((p.stat().st_mtime for p in dirs if p.exists()), default=0.0)
        time.sleep(max(0.0, youngest + GC_MIN_AGE - time.time()))
        cloud = self.clouds[provider]
        cmd = cloud.gc_command([sys.executable, "-m", "debian_cloud_tests.cli", "gc"])
        env = {**os.environ, "TMPDIR": str(tmpdir), **cloud.env(tmpdir.parent)}
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                                  cwd=tmpdir.parent)
        except subprocess.TimeoutExpired:
            return [f"gc ({provider}) still running after 300 s"]
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return [f"gc ({provider}) failed, exit {done.returncode}: {last}"]
        return []

    def final(self) -> tuple[list[str], bool]:
        """After the last kill: one gc for the local side and each kill's cloud whatever the
        kills left, then everything looked at again (what is left, and whether the image
        changed)."""
        tmpdirs = sorted(self.work.glob("kill-*/tmp"))
        runs = [(t, self.provider_of[t]) for t in tmpdirs]
        if not tmpdirs:  # no kill ran (stopped at once): gc still runs, on an empty dir
            tmpdirs = [self.work / "final" / "tmp"]
            tmpdirs[0].mkdir(parents=True)
            runs = [(tmpdirs[0], p) for p in self.clouds]
        left: list[str] = []
        for tmpdir, provider in runs:
            left += self.gc(provider, tmpdir)
        for tmpdir in tmpdirs:
            left += _mentioning(tmpdir) + [f"run dir {p}" for p in tmpdir.glob("dct-run-*")]
            left += _private_keys(tmpdir)
        left += _mentioning(self.work)  # a kill dir removed, a process naming it still alive
        left += [f"guest run dir {p.name}" for p in self.guests.glob("dct-run-*")]
        for cloud in self.clouds.values():
            left += cloud.leftovers()
        if self.spent and not left:
            shutil.rmtree(self.spent, ignore_errors=True)
        return list(dict.fromkeys(left)), sha256(self.image) != self.digest

    def clean(self, provider: str, tmpdir: Path) -> None:
        from debian_cloud_tests.rundir import reap

        for base in (tmpdir, self.guests):
            for path in base.glob("dct-run-*"):
                reap(path)
            for line in _mentioning(base):
                with contextlib.suppress(OSError):
                    os.kill(int(line.split()[1]), signal.SIGKILL)
        with contextlib.suppress(Exception):  # what is still there is reported after the final gc
            self.clouds[provider].clean()


def report(kills: list[Kill], targets: dict[str, int], wall: float, facts: str, image: Path,
           final_left: list[str], final_changed: bool, stopped: str) -> int:
    print(f"machine: {facts}; image {image.name}")
    print("per provider x phase x signal (kills by the phase the signal went out in, missed runs by "
          "the phase aimed at):")
    print(f"{'provider':<9} {'phase':<9} {'signal':<7} {'kills':>5} {'missed':>6} {'found':>5} "
          f"{'left':>4} {'images':>6} {'seconds':>8}")
    rows: dict[tuple[str, Phase, str], list[Kill]] = defaultdict(list)
    for k in kills:
        rows[(k.provider, k.phase if k.killed else k.aimed, k.sig)].append(k)
    extra = [ph for ph in Phase if ph not in PHASES and any(key[1] is ph for key in rows)]
    never = []
    for prov in targets:
        for phase in [*extra, *PHASES]:
            for sig in SIGNALS:
                ks = rows.get((prov, phase, sig.name), [])
                done = [k for k in ks if k.killed]
                if not done and phase in PHASES:
                    never.append(f"{prov} {phase.value} {sig.name}")
                print(f"{prov:<9} {phase.value:<9} {sig.name:<7} {len(done):>5} {len(ks) - len(done):>6} "
                      f"{sum(bool(k.before_gc) for k in ks):>5} {sum(bool(k.after_gc) for k in ks):>4} "
                      f"{sum(k.image_changed for k in ks):>6} {sum(k.seconds for k in ks):>8.0f}")
    print(f"never killed in: {', '.join(never)}" if never
          else "every provider x phase x signal combination killed at least once")
    for k in kills:
        for leak in k.after_gc:
            print(f"LEAK {k.provider} {k.sig} {k.phase.value}: {leak}")
    for leak in final_left:
        print(f"LEAK after the final gc: {leak}")
    for prov, target in targets.items():
        ks = [k for k in kills if k.provider == prov]
        print(f"{prov}: {sum(k.killed for k in ks)} kills of {target} planned "
              f"({sum(not k.killed for k in ks)} runs ended before their phase); leaks found after "
              f"the kill: {sum(bool(k.before_gc) for k in ks)}; left after gc: "
              f"{sum(bool(k.after_gc) for k in ks)}; images changed: {sum(k.image_changed for k in ks)}")
    found = sum(bool(k.before_gc) for k in kills)
    left = sum(bool(k.after_gc) for k in kills)
    changed = sum(k.image_changed for k in kills) + final_changed
    unheeded = [k for k in kills if k.unheeded]
    for k in unheeded:
        print(f"UNHEEDED {k.provider} {k.sig} {k.phase.value}: the run ended normally after the signal")
    print(f"kills: {sum(k.killed for k in kills)} of {sum(targets.values())} planned ({len(kills)} runs, "
          f"{sum(not k.killed for k in kills)} ended before their phase); leaks found after each kill: "
          f"{found}; left after gc: {left} (after a kill's gc) + {len(final_left)} (after the final gc, "
          f"run once after the last kill); images changed: {changed} (target 0, 0 and 0); wall time "
          f"{wall / 60:.1f} min")
    print(f"signals the run did not heed: {len(unheeded)} (target 0)")
    if stopped:
        print(stopped)
    return 1 if found or left or final_left or changed or unheeded else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n")[3])
    count = parser.add_mutually_exclusive_group()
    count.add_argument("--kills", type=int, help="total kills, shared out over the providers "
                       f"(default {DEFAULT_KILLS})")
    count.add_argument("--kills-per-provider", type=int, help="kills on each provider")
    parser.add_argument("--providers", default=",".join(PROVIDERS),
                        help=f"any of {', '.join(PROVIDERS)}, comma-separated (default: all)")
    parser.add_argument("--max-minutes", type=float, default=DEFAULT_MINUTES,
                        help=f"stop early (default {DEFAULT_MINUTES:g})")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--phases", default=",".join(p.value for p in PHASES),
                        help="aim only at these phases, comma-separated (default: all: "
                        f"{', '.join(p.value for p in PHASES)}; the early ones cost no boot)")
    parser.add_argument("--image", help="default: the good test image, built or taken from the cache")
    args = parser.parse_args()
    # Started in the background (`cmd &`), this script inherits SIGINT ignored, and the runs it
    # starts would inherit that too: its SIGINT kills would do nothing.  A handler is reset to
    # the default across exec, so the runs get SIGINT and SIGTERM as a terminal or CI sends them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    providers = list(dict.fromkeys(p for p in args.providers.split(",") if p))
    try:
        aimed = tuple(dict.fromkeys(Phase(p.strip()) for p in args.phases.split(",") if p.strip()))
    except ValueError:
        parser.error(f"--phases: any of {', '.join(p.value for p in PHASES)}")
    if not aimed or not set(aimed) <= set(PHASES):
        parser.error(f"--phases: any of {', '.join(p.value for p in PHASES)}")
    if not providers or not set(providers) <= set(PROVIDERS):
        parser.error(f"--providers: any of {', '.join(PROVIDERS)}")
    if (args.kills_per_provider or 1) < 1 or (args.kills if args.kills is not None else 1) < 1:
        parser.error("the number of kills must be at least 1")
    if args.kills_per_provider:
        targets = {p: args.kills_per_provider for p in providers}
        counting = f"--kills-per-provider={args.kills_per_provider}"
    else:
        targets = split(args.kills or DEFAULT_KILLS, providers)
        counting = f"--kills={args.kills or DEFAULT_KILLS}"
    from fault_clouds import unavailable, walled

    why = unavailable(providers)
    if why:
        print(f"fault_injection: cannot set up {why}", file=sys.stderr)
        return 2
    if os.environ.get(WALLED) != "1":
        # the image is built (or found) before the walls go up; then everything runs walled in
        if not args.image:
            from debian_cloud_tests.testimage.builder import Recipe, build_image

            args.image = str(build_image(Recipe()))
        seed = args.seed if args.seed is not None else random.randrange(1 << 32)
        cmd = [sys.executable, __file__, counting, f"--providers={','.join(providers)}",
               f"--max-minutes={args.max_minutes}", f"--seed={seed}", f"--image={args.image}",
               f"--phases={','.join(p.value for p in aimed)}"]
        inner = subprocess.Popen(walled(cmd), env={**os.environ, WALLED: "1"})
        while True:
            try:
                return inner.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the inner run too: it stops and reports
                continue

    rng = random.Random(args.seed)
    image = Path(args.image).resolve()
    from qemu_fleet import machine_facts

    facts = machine_facts()
    planned = sum(targets.values())
    print(f"seed {args.seed}, {planned} kills ({', '.join(f'{p} {n}' for p, n in targets.items())}), "
          f"image {image}", flush=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="dct-faults-"))
    kills: list[Kill] = []
    stopped = ""
    final_left: list[str] = []
    final_changed = False
    try:
        from fault_clouds import start

        with contextlib.ExitStack() as stack:
            clouds = start(providers, image, work, stack)
            injector = Injector(image, work, clouds, work / "guests", rng)
            todo = collections.deque(plan(targets, rng, aimed))
            # a run that ends before the moment aimed at is no kill: it is aimed again, later, or
            # next if its combination was never hit; one that went out in a later phase than
            # aimed at while its combination was never hit is aimed again in place of a kill
            # whose combination is hit or planned twice (bounded: some phases, a quick
            # teardown, are hard to hit on a fast run)
            replays = max(5, planned // 10)
            retried: Counter[Aim] = Counter()
            hit: set[Aim] = set()
            while todo:
                landed = sum(x.killed for x in kills)
                if time.monotonic() - started > args.max_minutes * 60:
                    stopped = (f"stopped at the time bound (--max-minutes {args.max_minutes:g}) after "
                               f"{landed} of {planned} planned kills")
                    print(stopped, flush=True)
                    break
                aim = todo.popleft()
                provider, phase, sig = aim
                try:
                    k = injector.one(provider, phase, sig)
                except KeyboardInterrupt:  # Ctrl-C: report what was done
                    stopped = f"interrupted after {landed} of {planned} planned kills"
                    print(stopped, flush=True)
                    break
                kills.append(k)
                if k.killed:
                    hit.add((provider, k.phase, sig))
                if replays and retried[aim] < MAX_RETRIES and (not k.killed or aim not in hit):
                    mine = (sum(x.killed for x in kills if x.provider == provider)
                            + sum(t[0] == provider for t in todo))
                    again = False
                    if not k.killed and mine < targets[provider]:
                        (todo.append if aim in hit else todo.appendleft)(aim)
                        again = True
                    elif aim not in hit and (spare := next(
                            (t for t in reversed(todo) if t[0] == provider and t != aim
                             and (t in hit or todo.count(t) > 1)), None)):
                        todo.remove(spare)
                        todo.appendleft(aim)
                        again = True
                    if again:
                        replays -= 1
                        retried[aim] += 1
                print(f"{len(kills):3d} {provider:<9} {sig.name:<7} aimed {phase.value:<8} "
                      f"{'at ' + k.phase.value if k.killed else 'ended first':<14} {k.seconds:5.1f}s "
                      f"found {len(k.before_gc)} left after gc {len(k.after_gc)}"
                      + (f" (found: {'; '.join(k.before_gc[:3])[:300]})" if k.before_gc else "")
                      + (f" (left: {'; '.join(k.after_gc[:3])[:300]})" if k.after_gc else ""),
                      flush=True)
            # once whatever the kills left: `gc` for the local side and the emulated cloud
            try:
                final_left, final_changed = injector.final()
            except KeyboardInterrupt:
                final_left = ["the final gc was interrupted"]
            print(f"final gc after the last kill: {len(final_left)} left, image "
                  f"{'changed' if final_changed else 'unchanged'}", flush=True)
    finally:
        if final_left or any(k.after_gc or not k.killed for k in kills):  # for a look at what happened
            print(f"outputs of the leaking or missed runs: {work}/kill-*/output.txt")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return report(kills, targets, time.monotonic() - started, facts, image, final_left, final_changed,
                  stopped)


if __name__ == "__main__":
    sys.exit(main())
