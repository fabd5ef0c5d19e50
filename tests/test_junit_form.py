"""The JUnit our runs write: each check's own facts (check_id, platform_reset) as testcase
properties of the xunit1 family, the run's facts as testsuite properties, and no PytestWarning
about junit_family, even under -W error::pytest.PytestWarning.

The runs are real: the plugin on a real sshd (the ssh provider), the reboot suite's
test_comes_back with only the reboot itself stood in for (a platform that needed a reset)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from debian_cloud_tests.gate import junit as gate_junit
from debian_cloud_tests.junitform import JUNIT_FAMILY
from debian_cloud_tests.plugin import suites_dir

from .conftest import parse_junit
from .fakes.sshd import Sshd

SELECT = f"{suites_dir()}/reboot/test_reboot.py::test_comes_back"
#: the selected check in both its kinds (the run adds the console scan at the end, skipped here)
REBOOTS = {"reboot.comes_back[soft]", "reboot.comes_back[hard]"}
RESET = "the platform was reset once (a stand-in reboot)"
FAKE_REBOOT = f'''"""A reboot that comes back after a platform reset, without touching the host."""
from debian_cloud_tests import reboot


def fake(instance, hard, timeout):
    return reboot.RebootOutcome("hard" if hard else "soft", came_back=True, platform_reset={RESET!r})


reboot.reboot = fake
'''
STRICT = ("-W", "error::pytest.PytestWarning", "-p", "fake_reboot")


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "fake_reboot.py").write_text(FAKE_REBOOT)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                                      os.environ.get("PYTHONPATH")]))}


def _target(server: Sshd) -> list[str]:
    return [f"--host=root@127.0.0.1:{server.port}", f"--ssh-key={server.client_key}",
            f"--host-key={server.host_key}", "--boot-timeout=20"]


def _cases(junit: Path) -> dict[str, ET.Element]:
    root = ET.parse(junit).getroot()
    return {p.get("value", ""): case for case in root.iter("testcase")
            for p in case.findall("properties/property") if p.get("name") == "check_id"}


def test_the_cli_writes_xunit1_with_testcase_properties(sshd: Sshd, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "run", "--provider=ssh",
                           "--image=debian-12-genericcloud-amd64", f"--output={out}", "--name=r", "--",
                           *_target(sshd), *STRICT, SELECT],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path, env=_env(tmp_path))
    explain = f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, explain
    assert "PytestWarning" not in proc.stdout + proc.stderr and "junit_family" not in proc.stdout, explain
    junit = out / "r.xml"
    cases = _cases(junit)
    assert set(cases) >= REBOOTS, explain
    for case in cases.values():
        assert case.get("file"), case.attrib  # xunit1 names every test's file (GitLab shows it)
    for case in (cases[c] for c in REBOOTS):
        assert case.get("file", "").endswith("test_reboot.py"), case.attrib
        facts = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert facts["platform_reset"] == RESET, facts
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    run_facts = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert run_facts["provider"] == "ssh" and run_facts["run_id"], run_facts
    # the readers: the gate, and the tests' own parser
    (run,) = gate_junit.load([junit])
    assert {c.check_id for c in run.cases} >= REBOOTS
    assert run.prop("provider") == "ssh"
    checks, _, props = parse_junit(junit)
    assert checks["reboot.comes_back[soft]"] == "passed" and props["platform_reset"] == RESET


def test_plain_pytest_does_not_warn_in_its_default_family_either(sshd: Sshd, tmp_path: Path) -> None:
    """A user's `pytest --provider=…` without -o junit_family: pytest's xunit2, no warning."""
    junit = tmp_path / "plain.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--provider=ssh",
                           "--image=debian-12-genericcloud-amd64", f"--junitxml={junit}",
                           f"--artifacts-dir={tmp_path / 'artifacts'}", *_target(sshd), *STRICT, SELECT],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path, env=_env(tmp_path))
    explain = f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0 and "PytestWarning" not in proc.stdout + proc.stderr, explain
    assert set(_cases(junit)) >= REBOOTS, explain


def test_the_family_is_one_that_has_testcase_properties() -> None:
    assert JUNIT_FAMILY in ("xunit1", "legacy")
