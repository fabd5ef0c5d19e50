"""The README's first command, copied as it stands, on a fresh Debian 12 and 13 as root.

A minimal root made by mmdebstrap has no python3, pip or venv: `scripts/setup.sh` must install
what it needs from Debian's archive and the Python side into a virtual environment, leave
Debian's python3 alone, and `debian-cloud-tests demo` must then reach a verdict.  A second run of
setup.sh is quick and changes nothing.  setup.sh refuses a machine it cannot serve in one line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debian_cloud_tests.paths import cache_dir

from .conftest import ROOT, TEST_SHAPE, parse_junit
from .fakes import fresh_debian
from .test_e2e_qemu import SKIP_OK

SETUP = ROOT / "scripts" / "setup.sh"
#: a second run of setup.sh checks and links, nothing more
SECOND_RUN_SECONDS = 20


def readme_command(heading: str, index: int) -> str:
    """The *index*-th command block under the README heading *heading*, as a user copies it."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```\n(.*?)\n```", section, re.M | re.S)
    return blocks[index].strip()


def snapshot(root: Path) -> dict[str, str]:
    """What a run of setup.sh could change: the package database, the venv, the command's link."""
    venv = root / fresh_debian.CHECKOUT.lstrip("/") / ".venv"
    files = sorted(p for p in venv.rglob("*") if "__pycache__" not in p.parts)
    listing = "\n".join(f"{p.relative_to(venv)} {p.lstat().st_mtime_ns}" for p in files)
    link = root / "usr/local/bin/debian-cloud-tests"
    return {"dpkg": hashlib.sha256((root / "var/lib/dpkg/status").read_bytes()).hexdigest(),
            "venv": hashlib.sha256(listing.encode()).hexdigest(),
            "link": os.readlink(link) if link.is_symlink() else "missing"}


def assert_good_demo(results: Path) -> None:
    """The demo's run of the good image, as its JUnit tells: every check passed or does not apply,
    the run is described, the candidate image was not written, and no key material was left."""
    checks, messages, props = parse_junit(results / "demo.xml")
    assert len(checks) > 100, checks
    not_passed = {c: s for c, s in checks.items()
                  if s != "passed" and not messages.get(c, "").startswith(SKIP_OK)}
    assert not not_passed, f"{not_passed}\n{messages}"
    for key in ("provider", "image", "image_sha256", "arch", "firmware", "accel", "boot_seconds",
                "qemu_version", "os_release", "dct_version", "console_log", "packages"):
        assert props.get(key), f"JUnit property {key} missing: {sorted(props)}"
    # the image is the cached test image, shared into the root: its bytes are still the ones tested
    image = cache_dir() / Path(props["image"]).relative_to("/root/.cache/debian-cloud-tests")
    assert hashlib.sha256(image.read_bytes()).hexdigest() == props["image_sha256"]
    for path in results.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), f"key material in {path}"


@pytest.fixture
def fresh_root(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    why = fresh_debian.unavailable()
    if why:
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail(f"end-to-end tests required but impossible here: {why}")
        pytest.skip(why)
    root = fresh_debian.make_root(tmp_path / "root", request.param, ROOT)
    try:
        yield root
    finally:
        fresh_debian.remove_root(root)


@pytest.mark.e2e
@pytest.mark.cost(500)
# CI proves the command on bookworm; trixie's run repeats it on the next release (the full matrix)
@pytest.mark.parametrize("fresh_root", ["bookworm", pytest.param("trixie", marks=pytest.mark.matrix)],
                         indirect=True)
def test_readme_first_command_on_a_fresh_debian(fresh_root: Path) -> None:
    command = readme_command("The two commands", 0)
    assert "setup.sh" in command and "demo" in command, command
    assert not (fresh_root / "usr/bin/python3").exists(), "the fresh root already has python3"
    # the guest is walled in as in every test here: its only traffic is the SSH forwarded in; and
    # it has one vCPU, as every test's guest (conftest.TEST_SHAPE), a user's default being two
    run = fresh_debian.run_in(fresh_root, command, env={
        "PYTEST_ADDOPTS": f"--qemu-network=isolated --instance-type={TEST_SHAPE}"})
    out = f"rc={run.returncode}\n{run.stdout[-4000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, out
    assert re.search(r"verdict: PUBLISH; JUnit: \S+demo\.xml", run.stdout), out
    assert "externally-managed-environment" not in run.stderr
    assert_good_demo(fresh_root / fresh_debian.CHECKOUT.lstrip("/") / "results")
    # nothing went into Debian's python3: no pip there, no site-packages of ours
    system = fresh_debian.run_in(fresh_root, "cd / && python3 -c 'import debian_cloud_tests' 2>&1; "
                                 "python3 -m pip --version 2>&1; true")
    assert "No module named 'debian_cloud_tests'" in system.stdout, system.stdout
    assert "No module named pip" in system.stdout, system.stdout
    link = fresh_root / "usr/local/bin/debian-cloud-tests"
    assert os.readlink(link) == f"{fresh_debian.CHECKOUT}/.venv/bin/debian-cloud-tests"

    before = snapshot(fresh_root)
    start = time.monotonic()
    again = fresh_debian.run_in(fresh_root, "bash scripts/setup.sh")
    took = time.monotonic() - start
    assert again.returncode == 0, again.stderr
    assert took < SECOND_RUN_SECONDS, f"a second setup.sh took {took:.1f}s"
    assert snapshot(fresh_root) == before, "a second setup.sh changed the machine"


@pytest.fixture
def readable_setup() -> Iterator[Path]:
    """setup.sh in a directory any user can read (pytest's own temp dirs are root's alone)."""
    where = Path(tempfile.mkdtemp(prefix="dct-setup-"))
    try:
        where.chmod(0o755)
        (where / "scripts").mkdir(mode=0o755)
        shutil.copy(SETUP, where / "scripts" / "setup.sh")
        yield where / "scripts" / "setup.sh"
    finally:
        shutil.rmtree(where)


def _setup_in_private_mounts(setup: Path, mounts: str) -> subprocess.CompletedProcess[str]:
    """setup.sh with *mounts* (shell lines) applied in a mount namespace of its own."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                           f"set -e; {mounts}; exec bash {setup}"],
                          capture_output=True, text=True, timeout=60, check=False)


def _assert_refused(run: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert run.returncode == code, f"rc={run.returncode}\n{run.stdout}\n{run.stderr}"
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("setup.sh: ") and words in lines[0], run.stderr
    assert "Traceback" not in run.stderr


def test_setup_refuses_a_system_that_is_not_debian(readable_setup: Path, tmp_path: Path) -> None:
    fake = tmp_path / "os-release"
    fake.write_text('ID=fedora\nVERSION_ID="41"\n')
    run = _setup_in_private_mounts(readable_setup, f"mount --bind {fake} /etc/os-release")
    _assert_refused(run, 50, "not Debian")


def test_setup_refuses_a_debian_too_old(readable_setup: Path, tmp_path: Path) -> None:
    fake = tmp_path / "os-release"
    fake.write_text('ID=debian\nVERSION_ID="11"\n')
    run = _setup_in_private_mounts(readable_setup, f"mount --bind {fake} /etc/os-release")
    _assert_refused(run, 53, "too old")


def test_setup_refuses_a_user_that_is_not_root(readable_setup: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to become another user")
    run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "bash", str(readable_setup)],
                         capture_output=True, text=True, timeout=60, check=False)
    _assert_refused(run, 51, "run as root")


def test_setup_refuses_a_machine_without_apt(readable_setup: Path) -> None:
    apt = shutil.which("apt-get")
    if not apt:
        pytest.skip("this machine has no apt-get to hide")
    # /dev/null in its place: a file that cannot be executed, as where apt was never installed
    run = _setup_in_private_mounts(readable_setup, f"mount --bind /dev/null {apt}")
    _assert_refused(run, 52, "apt-get")


def test_ci_runs_the_readme_test_command() -> None:
    command = readme_command("The two commands", 1)
    # with what is given to .ci/run passed on to pytest (a benchmark asks for a JUnit file)
    assert f'{command} "$@"' in (ROOT / ".ci" / "run").read_text().splitlines(), command
