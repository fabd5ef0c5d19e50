"""Fixtures for the framework's own tests: images built in the run, and running the plugin."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from debian_cloud_tests.testimage.builder import REQUIRED_TOOLS, Recipe, build_image

from .fakes import netns
from .fakes.sshd import Sshd, running_sshd, unavailable

ROOT = Path(__file__).resolve().parent.parent





def ctrl_c_at_default() -> None:
    """For a child's preexec_fn: SIGINT at its default, as in a foreground job at a terminal.

    Tests started in the background (`cmd &`, nohup) hand their children SIGINT ignored, and a
    run rightly keeps ignoring it then; a test that means Ctrl-C must give it back.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stopped_mid_launch(monkeypatch: pytest.MonkeyPatch, launch: Callable[[], object],
                       waiting: Callable[[], bool], within: float = 20.0) -> object:
    """Run *launch* in a thread of its own, as a fleet launches machines side by side; once
    *waiting()* says it waits on the cloud, ask the run to stop as a signal does (the signal
    itself lands in the main thread only).  What the launch raised or returned, or a failure if
    it was still running *within* seconds later."""
    from debian_cloud_tests import interrupts

    monkeypatch.setattr(interrupts, "_requested", threading.Event())
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(launch())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + within
    while not waiting() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    interrupts._requested.set()
    thread.join(max(deadline - time.monotonic(), 1.0))
    if thread.is_alive():
        pytest.fail(f"the launch went on waiting {within:.0f} s after the run was asked to stop")
    return outcome[0]


def in_private_network(cmd: list[str]) -> list[str]:
    """*cmd* in a network namespace of its own with only loopback up, and a resolver there.

    Guests booted there keep the full user-mode network a platform offers (router, DNS, IPv6),
    so the network checks are real, yet whatever they send dies at the namespace's edge.  The
    namespace's resolv.conf names a DNS server of ours on 127.0.0.1, which QEMU's user network
    forwards the guest's queries to: it answers every name NXDOMAIN, as a resolver that works
    answers a name it does not know, and asks no other server.
    """
    tools = {name: shutil.which(name) for name in ("unshare", "ip", "mount", "mktemp", "rm")}
    if not all(tools.values()):  # absolute: cmd may get no PATH
        pytest.fail("unshare, mount (util-linux), ip (iproute2), mktemp and rm (coreutils) are "
                    "needed to wall guests in")
    unshare, ip, mount, mktemp, rm = tools.values()
    script = (f"{ip} link set lo up && resolv=$({mktemp}) && echo 'nameserver 127.0.0.1' >\"$resolv\" "
              f"&& {mount} --bind \"$resolv\" /etc/resolv.conf && {rm} -f \"$resolv\" && "
              f"{{ {sys.executable} -m debian_cloud_tests.datasources.dns & }} && exec \"$@\"")
    return [unshare, "--net", "--mount", "--propagation", "private", "/bin/sh", "-c", script,
            "sh", *cmd]


def cost(item: pytest.Item) -> float:
    """The seconds a test's `cost` marker says it takes on 2 cores under TCG (0 if unmarked);
    ``cached=(SECONDS, RECIPE)`` is its cost where that image is in the cache already (an image
    bootstrapped under qemu-user costs minutes only once)."""
    marker = item.get_closest_marker("cost")
    if marker is None:
        return 0.0
    cached = marker.kwargs.get("cached")
    if cached is not None and cached[1].path().exists():
        return float(cached[0])
    return float(marker.args[0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The heaviest tests first, so that tests run in parallel (`-n 2 --dist loadgroup`) end
    together instead of one worker booting a long test alone at the end.  The sort is stable:
    tests of equal cost keep their order, and those sharing a module fixture stay together."""
    items.sort(key=lambda item: -cost(item))


@pytest.fixture(autouse=True, scope="session")
def _guests_reach_nothing():
    """Every guest these tests boot outside a private namespace gets an isolated network: its only
    traffic is the SSH forwarded in, so no test sends anything beyond this machine (a pytest run
    spawned by a test, directly or through a command, inherits the option)."""
    before = os.environ.get("PYTEST_ADDOPTS")
    os.environ["PYTEST_ADDOPTS"] = f"{before or ''} --qemu-network=isolated".strip()
    yield
    if before is None:
        del os.environ["PYTEST_ADDOPTS"]
    else:
        os.environ["PYTEST_ADDOPTS"] = before


def _can_build() -> str | None:
    missing = [t for t in REQUIRED_TOOLS if not shutil.which(t)]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    if os.geteuid() != 0:
        return "building images needs root"
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 not installed"
    return None


@pytest.fixture(scope="session")
def image_factory():
    """Build (or reuse from the cache) a test image with the given defects planted."""
    why = _can_build()
    if why:
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail(f"end-to-end tests required but impossible here: {why}")
        pytest.skip(why)

    def build(*defects: str, fmt: str = "qcow2", arch: str = "amd64", release: str = "bookworm",
              kernel: str = "newest") -> Path:
        return build_image(Recipe(defects=tuple(defects), fmt=fmt, arch=arch, release=release,
                                  kernel=kernel))
    return build


@pytest.fixture(scope="session")
def good_image(image_factory) -> Path:
    return image_factory()


@pytest.fixture
def iperf3_cached() -> None:
    """The guests' iperf3 fetched beforehand, for a run that has no way out of a namespace (ask
    for it before a fixture whose thread stays in the namespace)."""
    from debian_cloud_tests import guesttools

    guesttools.tree("bookworm", "amd64")


@dataclass
class SuiteRun:
    """One `pytest --provider=…` run as a user runs it, and what its JUnit file says."""

    rc: int
    stdout: str
    stderr: str
    checks: dict[str, str] = field(default_factory=dict)  # check_id -> passed/failed/error/skipped
    messages: dict[str, str] = field(default_factory=dict)
    props: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None  # where the JUnit file and artefacts were written

    def failing(self) -> set[str]:
        return {c for c, s in self.checks.items() if s == "failed"}

    def report(self, check: str) -> str:
        """A check's whole failure report: the JUnit message keeps its first and last lines, the
        element's text all of them."""
        assert self.workdir is not None
        for case in ET.parse(self.workdir / "results.xml").getroot().iter("testcase"):
            if any(p.get("name") == "check_id" and p.get("value") == check for p in case.iter("property")):
                found = case.find("failure")
                return "" if found is None else f"{found.get('message', '')}\n{found.text or ''}"
        return ""

    def explain(self) -> str:
        return f"rc={self.rc}\n{self.errors()}{self.stdout[-3000:]}\n{self.stderr[-2000:]}"

    def errors(self) -> str:
        """Each distinct error once, with how many checks it hit: a fixture that failed errors
        every check with the same message, which must survive a CI log's truncation."""
        seen = Counter(self.messages.get(cid, "")[:400] for cid, status in self.checks.items()
                       if status == "error")
        return "".join(f"{n} checks errored: {msg}\n" for msg, n in seen.items())

    def digest(self) -> str:
        """The errors first, then every check that did not pass with its message."""
        bad = {c: f"{s}: {self.messages.get(c, '')[:200]}" for c, s in self.checks.items()
               if s not in ("passed", "error")}
        return f"{self.errors()}{bad}"


def parse_junit(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    checks: dict[str, str] = {}
    messages: dict[str, str] = {}
    props: dict[str, str] = {}
    if not path.exists():
        return checks, messages, props
    root = ET.parse(path).getroot()
    for prop in root.iter("property"):
        props.setdefault(prop.get("name", ""), prop.get("value", ""))
    for case in root.iter("testcase"):
        cid = next((p.get("value") for p in case.iter("property") if p.get("name") == "check_id"),
                   f"{case.get('classname')}.{case.get('name')}")
        status = "passed"
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "failed"}.get(tag, tag)
                messages[cid] = el.get("message", "")
                break
        checks[cid] = status
    return checks, messages, props


def junit_span(path: Path) -> tuple[float, float]:
    """When the run of a JUnit file began and ended (epoch seconds), from its testsuite."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, path
    start = datetime.fromisoformat(suite.get("timestamp", "")).timestamp()
    return start, start + float(suite.get("time", "0"))


class OptionsOnly:
    """A pytest config holding command-line options only (no ini file), for options.build_spec:
    ``OptionsOnly(provider="gce", machine_type="e2-small")``."""

    def __init__(self, **given: str) -> None:
        self.given = {"dct_" + name: value for name, value in given.items()}

    def getoption(self, dest: str) -> str | None:
        return self.given.get(dest)

    def getini(self, dest: str) -> None:
        return None


#: the QEMU guests' shape in these tests unless a test gives its own (a user's default is 2x1024)
TEST_SHAPE = "1x1024"


def mbr_disk(path: Path, size: int = 64 * 1024 * 1024) -> Path:
    """A raw disk with a partition-table signature and no boot loader: valid input, never boots."""
    with path.open("wb") as fh:
        fh.truncate(size)
        fh.seek(510)
        fh.write(b"\x55\xaa")
    return path


def run_suites(tmp_path: Path, *args: str, timeout: float = 900, env: dict[str, str] | None = None,
               select: str | None = None, prefix: Sequence[str] = (),
               walled: bool = True) -> SuiteRun:
    """Run the plugin in a subprocess, exactly as a user would, and read its JUnit file.

    *prefix* wraps the command (e.g. ``nsenter …`` to run it inside a test's network namespace).
    A qemu run is *walled* in a private network namespace unless it must share this one's
    ports (its guest then gets the isolated network).
    """
    junit = tmp_path / "results.xml"
    cmd = [*prefix, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
           f"--artifacts-dir={tmp_path / 'artifacts'}", *args]
    if select:
        cmd.append(select)
    if "--provider=qemu" in args and not any(a.startswith("--instance-type") for a in args):
        # Two guests at a time on two cores: one vCPU each spares the emulator the guests'
        # cross-vCPU waits (12 % of the CPU time, measured); a variant that needs two says so.
        cmd.append(f"--instance-type={TEST_SHAPE}")
    if walled and "--provider=qemu" in args and not any(a.startswith("--qemu-network") for a in args):
        # a full guest network, walled in
        cmd = in_private_network([*cmd, "--qemu-network=user"])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env={**os.environ, **(env or {})})
    checks, messages, props = parse_junit(junit)
    return SuiteRun(proc.returncode, proc.stdout, proc.stderr, checks, messages, props, tmp_path)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real OpenSSH server on 127.0.0.1 with its own host key (skipped where sshd cannot run)."""
    why = unavailable()
    if why:
        pytest.skip(why)
    with running_sshd(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[netns.PrivateNamespace]:
    """A network and mount namespace of the test's own, for an emulated cloud and its guests
    (skipped where it cannot be made, a failure under DCT_E2E=require)."""
    why = netns.unavailable()
    if why:
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail(f"end-to-end tests required but impossible here: {why}")
        pytest.skip(why)
    with netns.private_namespace(tmp_path / "ns") as ns:
        yield ns
