"""Several runs at once: each target (a provider and an image) and each instance of one is its own
pytest session, in its own process, with its own machine, JUnit file and artefacts.

Separate processes rather than one session with parametrised machines: a run's state (its
fleet, its facts, its signal handling and cleanup guard) stays exactly what a single run has,
a target that fails to start cannot stop the others, and each JUnit file is one target's,
which is what the gate groups by.  The runs share the wall clock: on a cloud N instances take
about one boot; under TCG they share the host's cores.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from .errors import UsageError
from .junitprops import Prop
from .rundir import new_run_id

#: what a run launched with siblings records (JUnit properties parallel_run, parallel_label), so
#: the gate reads the siblings as instances tested together, not as retries of one another
GROUP_ENV, LABEL_ENV = "DCT_PARALLEL_RUN", "DCT_PARALLEL_LABEL"

#: pytest's summary line, e.g. "== 162 passed, 6 skipped in 95.12s (0:01:35) =="
_SUMMARY = re.compile(r"^=+ (.+ in [\d.]+s).*=+$")


@dataclass(frozen=True)
class Target:
    """One run's provider, image and the options for it alone; *label* names its files."""

    provider: str
    image: str
    options: tuple[str, ...] = ()
    label: str = ""


def parse_target(text: str) -> Target:
    """`PROVIDER:IMAGE [OPTION…]`, e.g. `aws:ami-0123 --region eu-west-1`."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--target {text!r}: {exc}") from None
    head, _, image = (words[0] if words else "").partition(":")
    if not head or not image or not re.fullmatch(r"[a-z][a-z0-9_-]*", head):
        raise UsageError(f"--target {text!r}: give PROVIDER:IMAGE [OPTION…], "
                         "e.g. qemu:debian-12.qcow2 or 'aws:ami-0123 --region eu-west-1'")
    return Target(head, image, tuple(words[1:]))


def expand(targets: Sequence[Target], instances: int) -> list[Target]:
    """Each target *instances* times, each labelled uniquely (provider, then a number where two
    runs would share a name)."""
    if instances < 1:
        raise UsageError(f"--instances {instances}: give 1 or more")
    for target in targets:
        if instances > 1 and not _starts_machines(target.provider):
            raise UsageError(f"--instances {instances} with the {target.provider} provider: it tests "
                             "the one host it is given; launch the others yourself and give each "
                             "as its own --target")
    runs = [t for t in targets for _ in range(instances)]
    counts = {p: sum(r.provider == p for r in runs) for p in {r.provider for r in runs}}
    seen: dict[str, int] = {}
    labelled = []
    for run in runs:
        seen[run.provider] = seen.get(run.provider, 0) + 1
        label = run.provider if counts[run.provider] == 1 else f"{run.provider}-{seen[run.provider]}"
        labelled.append(Target(run.provider, run.image, run.options, label))
    return labelled


@dataclass
class _Run:
    target: Target
    junit: Path
    log: Path
    proc: subprocess.Popen[str] | None = None
    started: float = 0.0
    seconds: float = 0.0
    summary: str = ""
    signalled: set[int] = field(default_factory=set)


def _starts_machines(provider: str) -> bool:
    """False for a provider that reaches a host somebody else started: no second instance."""
    from .provider import provider_classes

    cls = provider_classes().get(provider)
    return cls is None or cls.starts_machines


def properties() -> dict[str, str]:
    """This run's place among its siblings, when it was launched with some."""
    group = os.environ.get(GROUP_ENV, "")
    return {Prop.PARALLEL_RUN: group, Prop.PARALLEL_LABEL: os.environ.get(LABEL_ENV, "")} if group else {}


def run_all(targets: Sequence[Target], argv_for: Callable[[Target, Path], list[str]],
            out: Path, name: str, echo: TextIO = sys.stdout) -> int:
    """Start every target's pytest session at once (*argv_for* gets the target and the path of
    its JUnit file), echo their output line by line under their
    labels, wait for all, and print one summary line each.

    A stop (Ctrl-C, SIGTERM, SIGHUP) is passed on once to every run, which then cleans up as a
    single run does; the runs get their own sessions, so a terminal's Ctrl-C reaches each of
    them exactly once, through here."""
    runs = [_Run(t, out / f"{name}-{t.label}.xml", out / f"{name}-{t.label}.log") for t in targets]
    lock = threading.Lock()
    stopped: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if not stopped:
            with lock:
                echo.write(f"debian-cloud-tests: stopping: waiting for {len(runs)} runs to "
                           "clean up\n")
                echo.flush()
        stopped.append(signum)
        for run in runs:
            if run.proc is not None and run.proc.poll() is None and signum not in run.signalled:
                run.signalled.add(signum)
                run.proc.send_signal(signum)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, forward) for sig in handled}
    readers = []
    group = new_run_id()
    began = time.monotonic()
    try:
        for run in runs:
            if stopped:
                break
            run.started = time.monotonic()
            run.proc = subprocess.Popen([sys.executable, "-m", "pytest", *argv_for(run.target, run.junit)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace",
                                        start_new_session=True, env={
                                            **os.environ, GROUP_ENV: group,
                                            LABEL_ENV: run.target.label})
            reader = threading.Thread(target=_echo, args=(run, lock, echo), daemon=True)
            reader.start()
            readers.append(reader)
        for run in runs:
            while run.proc is not None and run.proc.poll() is None:
                time.sleep(0.2)  # not proc.wait(): a signal handler must get to run meanwhile
        for reader in readers:
            reader.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    wall = time.monotonic() - began
    for run in runs:
        code = run.proc.returncode if run.proc is not None else "not started"
        echo.write(f"debian-cloud-tests: {run.target.label}: {run.summary or 'no summary'} "
                   f"(exit {code}, {run.seconds:.1f} s) JUnit {run.junit}, log {run.log}\n")
    longest = max((r.seconds for r in runs), default=0.0)
    echo.write(f"debian-cloud-tests: {len(runs)} runs in {wall:.1f} s (the longest alone "
               f"{longest:.1f} s)\n")
    echo.flush()
    if stopped:
        return 2
    return combined_exit([r.proc.returncode if r.proc is not None else 2 for r in runs])


def _echo(run: _Run, lock: threading.Lock, echo: TextIO) -> None:
    """Copy one run's output to its log and, labelled, to *echo*."""
    assert run.proc is not None and run.proc.stdout is not None
    with run.log.open("w") as log:
        for line in run.proc.stdout:
            log.write(line)
            if m := _SUMMARY.match(line.strip()):
                run.summary = m.group(1)
            with lock:
                echo.write(f"[{run.target.label}] {line}")
                echo.flush()
    run.proc.wait()
    run.seconds = time.monotonic() - run.started


def combined_exit(codes: Sequence[int]) -> int:
    """0 when every run passed; 1 when the only failures are failed checks; else the first
    other code (an error of the run: bad input, no machine, interrupted), which says more."""
    if all(c == 0 for c in codes):
        return 0
    others = [c for c in codes if c not in (0, 1)]
    return others[0] if others else 1
