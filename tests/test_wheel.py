"""A wheel works away from the checkout: it carries Debian's policy and the FAI config space, and
the commands that default to them find them where the package is installed.

The wheel is built from a copy of the checkout (nothing is written into it) without build
isolation and installed without dependencies, so no package index is needed: the fresh venv
reaches the test venv's dependencies through a .pth line, which does not run the test venv's
own .pth files, so the checkout's editable install stays out of sight.  About 10 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from debian_cloud_tests.faibuild.spec import ARCHES, RELEASES, VENDORS

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "debian_cloud_tests" / "data"
#: what a checkout holds beside its sources: caches anywhere, outputs at its top
CACHES = shutil.ignore_patterns(".git", "*.egg-info", "__pycache__", ".ruff_cache")
OUTPUTS = shutil.ignore_patterns("build", "dist", "artifacts", "results*", "images")
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="1" time="1.0"
 timestamp="2026-01-01T00:00:00">
<properties><property name="provider" value="qemu"/><property name="arch" value="amd64"/></properties>
<testcase classname="bvt.test_bvt" name="test_system_running" time="0.1">
<properties><property name="check_id" value="bvt.system_running"/></properties></testcase>
</testsuite></testsuites>
"""


@dataclass(frozen=True)
class Installed:
    venv: Path
    site: Path  # where the wheel's files went
    cwd: Path  # an empty directory far from the checkout

    def run(self, *argv: str | Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        return subprocess.run([str(a) for a in argv], cwd=self.cwd, env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    def python(self, *argv: str | Path) -> subprocess.CompletedProcess[str]:
        return self.run(self.venv / "bin" / "python", *argv)


def _check(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist, venv, cwd = tmp / "src", tmp / "dist", tmp / "venv", tmp / "elsewhere"
    shutil.copytree(ROOT, src, symlinks=True, ignore=lambda d, names: CACHES(d, names) | (
        OUTPUTS(d, names) if Path(d) == ROOT else set()))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _check(subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                           "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300))
    (wheel,) = dist.glob("debian_cloud_tests-*.whl")
    _check(subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                          capture_output=True, text=True, timeout=120))
    _check(subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True, timeout=300))
    cwd.mkdir()
    probe = Installed(venv, Path(), cwd)
    site = Path(_check(probe.python("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"))
                .strip())
    # only after the install: pip must not see the test venv's editable copy as installed already
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "test-venv-deps.pth").write_text("".join(f"{d}\n" for d in deps))
    return Installed(venv, site, cwd)


def test_the_installed_package_is_the_wheels(installed: Installed) -> None:
    where = _check(installed.python("-c", "import debian_cloud_tests; print(debian_cloud_tests.__file__)"))
    assert Path(where.strip()).is_relative_to(installed.site), where


def test_the_wheel_carries_the_policy_and_the_config_space(installed: Installed) -> None:
    policy, fai = map(Path, _check(installed.python("-m", "debian_cloud_tests.shipped", "policy", "fai"))
                      .split())
    assert policy.is_relative_to(installed.site) and fai.is_relative_to(installed.site)
    assert policy.read_bytes() == (DATA / "policy.toml").read_bytes()
    tree = sorted(str(p.relative_to(DATA / "fai")) for p in (DATA / "fai").rglob("*") if p.is_file())
    assert sorted(str(p.relative_to(fai)) for p in fai.rglob("*") if p.is_file()) == tree
    assert (fai / "class").is_dir() and (fai / "disk_config").is_dir()
    scripts = [*fai.glob("scripts/*/*"), *fai.glob("hooks/*")]
    assert scripts and all(os.access(p, os.X_OK) for p in scripts), "FAI runs these: keep them executable"


def test_the_wheel_carries_the_suites_data(installed: Installed) -> None:
    """Allowlists and probe scripts the checks read beside their modules."""
    suites = ROOT / "suites"
    data = sorted(str(p.relative_to(suites)) for p in suites.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc"))
    assert data, "the suites read no data files?"
    shipped = installed.site / "debian_cloud_tests" / "suites"
    assert [name for name in data if not (shipped / name).is_file()] == []


def test_build_defaults_to_the_installed_config_space(installed: Installed) -> None:
    """Every release, vendor and arch's classes are defined by the config space `build` finds."""
    specs = [f"{r}:{v}:{a}" for r in RELEASES for v in VENDORS for a in ARCHES]
    code = ("import sys\n"
            "from debian_cloud_tests.faibuild import host\n"
            "from debian_cloud_tests.faibuild.spec import BuildSpec\n"
            "from debian_cloud_tests.shipped import fai_config_space\n"
            "cspace = fai_config_space()\n"
            "for release, vendor, arch in (a.split(':') for a in sys.argv[1:]):\n"
            "    host.check_config_space(cspace, BuildSpec(release, vendor, arch).classes())\n"
            "print(cspace)\n")
    out = _check(installed.python("-c", code, *specs))
    assert Path(out.strip()).is_relative_to(installed.site)


def test_gate_with_the_builtin_and_the_shipped_policy(installed: Installed) -> None:
    (installed.cwd / "r.xml").write_text(JUNIT)
    gate = installed.venv / "bin" / "debian-cloud-tests"
    builtin = installed.run(gate, "gate", "r.xml")
    # the strict built-in defaults: a report that does not say what it tested holds
    assert (builtin.returncode, builtin.stdout.split()[0]) == (1, "HOLD"), builtin
    assert "image_sha256" in builtin.stdout and builtin.stderr == "", builtin
    policy = _check(installed.python("-m", "debian_cloud_tests.shipped", "policy")).strip()
    debian = installed.run(gate, "gate", "r.xml", "--policy", policy)
    # Debian's policy requires suites and checks this one-check report lacks: read, it holds
    assert debian.returncode == 1, debian
    assert "bvt.ssh_login_default_user" in debian.stdout and "HOLD" in debian.stdout, debian.stdout
    assert debian.stderr == ""
    by_name = installed.run(gate, "gate", "r.xml", "--policy", "debian")
    assert (by_name.returncode, by_name.stdout) == (debian.returncode, debian.stdout), by_name
