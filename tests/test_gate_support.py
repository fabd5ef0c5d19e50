"""Hand-made JUnit reports and policies for the gate tests, and checks that they are what we think.

Every gate test writes its inputs to tmp_path with these builders, so that each rule is exercised
on the smallest report that makes it pass or fail.
"""

from __future__ import annotations

import datetime as dt
import itertools
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import quoteattr

from debian_cloud_tests.gate import junit
from debian_cloud_tests.gate.policy import parse_policy
from debian_cloud_tests.gate.verdict import Verdict, evaluate

SHA_A = "6ee78d7b" + "0" * 52 + "ddd3"
SHA_B = "a1b2c3d4" + "1" * 52 + "eeee"
_RUN_IDS = itertools.count(1)

#: The report our plugin writes, as in the field (trimmed to three checks).
REALISTIC = f"""<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="38.9"
 timestamp="2026-11-26T06:57:31.020975+00:00" hostname="vm"><properties>
<property name="dct_version" value="0.1.0" /><property name="run_id" value="20261126065730-5b1577" />
<property name="provider" value="qemu" /><property name="image" value="/root/.cache/x.qcow2" />
<property name="arch" value="amd64" /><property name="firmware" value="bios" />
<property name="instance_type" value="2x1024" /><property name="image_sha256" value="{SHA_A}" />
<property name="accel" value="tcg" /><property name="boot_seconds" value="32.7" />
<property name="cloud_init_wait_seconds" value="2.3" />
<property name="os_release" value="Debian GNU/Linux 12 (bookworm)" />
<property name="os_version_id" value="12" />
<property name="tests_collected" value="3" /><property name="tests_selected" value="3" />
<property name="tests_deselected" value="0" /><property name="exit_status" value="1" />
<property name="interrupted" value="no" /><property name="suites_selected" value='{{"bvt": 3}}' />
</properties>
<testcase classname="bvt.test_bvt" name="test_ssh_login_default_user" time="35.1"><properties>
<property name="check_id" value="bvt.ssh_login_default_user" /></properties></testcase>
<testcase classname="bvt.test_bvt" name="test_system_running" time="0.01"><properties>
<property name="check_id" value="bvt.system_running" /></properties>
<failure message="AssertionError: system state is 'degraded'">assert 'degraded' == 'running'</failure>
</testcase>
<testcase classname="bvt.test_bvt" name="test_x" time="0.0"><properties>
<property name="check_id" value="bvt.x" /></properties>
<skipped type="pytest.skip" message="not applicable: no serial console">skip</skipped></testcase>
</testsuite></testsuites>
"""


def case(check_id: str, status: str = "passed", message: str = "", *, reruns: int = 0,
         with_property: bool = True) -> str:
    """One <testcase>; status is passed, failed, error or skipped; reruns adds <rerunFailure>s."""
    classname, _, name = check_id.rpartition(".")
    prop = (f'<properties><property name="check_id" value={quoteattr(check_id)} /></properties>'
            if with_property else "")
    tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(status)
    body = "".join(f'<rerunFailure message="attempt {n}">trace</rerunFailure>' for n in range(reruns))
    if tag:
        body += f"<{tag} message={quoteattr(message or status)}>details</{tag}>"
    return (f"<testcase classname={quoteattr(classname)} name={quoteattr('test_' + name)} time=\"0.1\">"
            f"{prop}{body}</testcase>")


def props(**overrides: str | None) -> dict[str, str]:
    """Suite properties of a qemu/amd64/bios run of image SHA_A on bookworm; None removes one."""
    base = {"run_id": f"run-{next(_RUN_IDS)}", "provider": "qemu", "arch": "amd64", "firmware": "bios",
            "image_sha256": SHA_A, "os_release": "Debian GNU/Linux 12 (bookworm)", "os_version_id": "12"}
    base.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in base.items() if v is not None}


def suite(cases: list[str], properties: dict[str, str] | None = None, timestamp: str = "") -> str:
    items = "".join(f"<property name={quoteattr(k)} value={quoteattr(v)} />"
                    for k, v in (props() if properties is None else properties).items())
    stamp = f" timestamp={quoteattr(timestamp)}" if timestamp else ""
    return (f'<testsuite name="pytest" tests="{len(cases)}"{stamp}><properties>{items}</properties>'
            + "\n".join(cases) + "</testsuite>")


def write(tmp_path: Path, name: str, cases: list[str], properties: dict[str, str] | None = None, *,
          bare: bool = False, timestamp: str = "") -> Path:
    """A JUnit file with one suite; `bare` writes a root <testsuite> instead of <testsuites>."""
    body = suite(cases, properties, timestamp)
    text = '<?xml version="1.0" encoding="utf-8"?>' + (body if bare else f"<testsuites>{body}</testsuites>")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def write_policy(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BVT = ["bvt.ssh_login_default_user", "bvt.system_running", "bvt.sudo_passwordless"]


def passing(tmp_path: Path, name: str = "results.xml", **overrides: str | None) -> Path:
    """A report in which every BVT check passed."""
    return write(tmp_path, name, [case(c) for c in BVT], props(**overrides))


#: A fixed day, so that tests of expiry never age.
TODAY = dt.date(2026, 6, 1)
DENY = '[[deny]]\nid = "{id}"\ntracker = "https://bugs.debian.org/1"\n'


def judge(paths: list[Path], policy: str = "", *, today: dt.date = TODAY,
          image_sha256: tuple[str, ...] = ()) -> Verdict:
    """The verdict on these reports under this policy text."""
    return evaluate(junit.load(paths), parse_policy(policy, "policy.toml"), today=today,
                    image_sha256=image_sha256)


def kinds(v: Verdict) -> list[str]:
    """The kinds of the reasons to hold, in order: what most assertions are about."""
    return [r.kind for r in v.reasons]


def test_builders_write_well_formed_junit(tmp_path: Path) -> None:
    root = ET.parse(write(tmp_path, "r.xml", [case("bvt.a", "failed", "boom", reruns=1)])).getroot()
    tc = root.find("testsuite/testcase")
    assert tc is not None and tc.find("failure") is not None and tc.find("rerunFailure") is not None


def test_realistic_report_is_well_formed() -> None:
    root = ET.fromstring(REALISTIC)
    assert len(root.findall("testsuite/testcase")) == 3
