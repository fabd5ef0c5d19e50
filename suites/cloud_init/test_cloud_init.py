"""cloud-init checks, from its own state files read once (each `cloud-init` command costs ~3 s)."""

from __future__ import annotations

import json
import re

import pytest

from debian_cloud_tests.applicability import STARTS_THE_MACHINE
from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import BTIME, CLOUD_INIT_STATUS, INSTANCE_DATA

PROBES = [
    CLOUD_INIT_STATUS,
    Probe("ci_result", "cat /run/cloud-init/result.json"),
    INSTANCE_DATA,
    # grep's own status: 1 is "no problem line", 2 an unreadable or missing log
    Probe("ci_log_problems", "grep -nE 'WARNING|ERROR|CRITICAL|Traceback' /var/log/cloud-init.log",
          root=True),
    # Boot validates the user-data (before 23.4 as part of the merged configuration, image's
    # included) and, from 23.4, the network configuration, and logs what is invalid (below);
    # `schema --system` (3-4 CPU-s of the guest's) would say the same, and adds the vendor data
    # from 23.4.  So it runs only for what boot leaves to it: vendor data, or the details of
    # what boot found invalid (or when the log cannot be read).
    Probe("ci_schema", "v=$(dpkg-query -W -f '${Version}' cloud-init 2>/dev/null) && "
          "dpkg --compare-versions \"$v\" lt 23.4 && { echo \"cloud-init $v: validated at boot\"; "
          "exit 0; }; grep -q 'schema.py\\[WARNING\\]' /var/log/cloud-init.log; "
          "[ $? -eq 1 ] && ! [ -s /var/lib/cloud/instance/vendor-cloud-config.txt ] && "
          "! [ -s /var/lib/cloud/instance/vendor2-cloud-config.txt ] && "
          "{ echo \"cloud-init $v: validated at boot, no vendor data\"; exit 0; }; "
          "cloud-init schema --system", root=True, slow=True),
    # cloud-init validates the merged system configuration at boot and logs what is invalid.
    Probe("ci_schema_boot", "grep -h 'schema.py\\[WARNING\\]' /var/log/cloud-init.log", root=True),
    Probe("ci_instances", "ls -1 /var/lib/cloud/instances", root=True),
    Probe("ci_instance_link", "readlink /var/lib/cloud/instance", root=True),
    Probe("host_key_times", "stat -c '%n %Y' /etc/ssh/ssh_host_*_key.pub", root=True),
    BTIME,
]


def _json(facts, name: str, what: str) -> dict:
    out = facts[name]
    if not out.ok:
        pytest.fail(f"cannot read {what}: {out.why()}; is cloud-init installed and did it run?",
                    pytrace=False)
    try:
        return json.loads(out.stdout)
    except ValueError:
        pytest.fail(f"{what} is not valid JSON", pytrace=False)


def test_status_done_without_errors(facts) -> None:
    """Every cloud-init stage finished, and none reported an error."""
    v1 = _json(facts, "ci_status", "/run/cloud-init/status.json").get("v1", {})
    unfinished = [s for s in ("init-local", "init", "modules-config", "modules-final")
                  if not (v1.get(s) or {}).get("finished")]
    assert not unfinished, (f"cloud-init stages never finished: {unfinished}; their units "
                            "(cloud-init*.service) did not run to the end: `systemctl status` and "
                            "/var/log/cloud-init.log on an instance tell why")
    errors = {s: v1[s]["errors"] for s in v1 if isinstance(v1.get(s), dict) and v1[s].get("errors")}
    result = _json(facts, "ci_result", "/run/cloud-init/result.json").get("v1", {})
    errors.update({"result": result["errors"]} if result.get("errors") else {})
    assert not errors, (f"cloud-init reported errors: {json.dumps(errors)[:800]}; fix the module "
                        "or configuration they name (/etc/cloud/cloud.cfg.d in the image)")


def test_no_recoverable_errors(facts) -> None:
    """No stage logged recoverable errors (cloud-init >= 23.4 records them; older: none recorded)."""
    v1 = _json(facts, "ci_status", "/run/cloud-init/status.json").get("v1", {})
    stages = [v for v in v1.values() if isinstance(v, dict) and "errors" in v]
    if stages and not any("recoverable_errors" in v for v in stages):
        pytest.skip("not applicable: this cloud-init (before 23.4) records no recoverable errors; "
                    "its warnings are checked in the log")
    recoverable = {s: v1[s]["recoverable_errors"] for s in v1
                   if isinstance(v1.get(s), dict) and v1[s].get("recoverable_errors")}
    assert not recoverable, (f"cloud-init recoverable errors: {json.dumps(recoverable)[:800]}; "
                             "fix the configuration they name (/etc/cloud/cloud.cfg.d in the image)")


def test_log_free_of_warnings(facts) -> None:
    """/var/log/cloud-init.log has no WARNING, ERROR, CRITICAL or Traceback line."""
    out = facts["ci_log_problems"]
    if out.rc not in (0, 1):
        pytest.fail(f"cannot read /var/log/cloud-init.log ({out.why()}): is cloud-init installed, "
                    "and did it run on this boot?", pytrace=False)
    assert out.rc == 1, ("cloud-init.log has problems:\n" + "\n".join(out.lines()[:15]) +
                         "\nfix what they name (cloud-init's configuration in the image, or the "
                         "datasource's); `cloud-init analyze show` tells which stage")


#: cloud-init's final message, on the console: "Cloud-init v. 22.4.2 finished at … Datasource
#: DataSourceEc2Local.  Up 40.05 seconds"
FINAL_MESSAGE = re.compile(r"Cloud-init v\. \S+ finished at .*?Datasource (DataSource\w+)")


def test_datasource_expected(facts, machine) -> None:
    """cloud-init detected the datasource the platform provides (from its status, or from its
    final message on the console when the guest cannot be logged in to: a guest that found no
    datasource never gets the run's key)."""
    expected = machine.facts.datasource
    if not expected:
        pytest.skip(f"not applicable: {machine.facts.provider} does not know which datasource to expect")
    if machine.ssh_login_error:
        seen = FINAL_MESSAGE.findall(machine.console_log())
        if not seen:
            pytest.fail(f"cannot log in ({machine.ssh_login_error}) and cloud-init's final message "
                        f"is not on the console: expected datasource {expected}", pytrace=False)
        found = seen[-1]
    else:
        found = _json(facts, "ci_status", "/run/cloud-init/status.json").get("v1", {}).get("datasource") or ""
    # cloud-init names the local stage's variant DataSourceEc2Local, DataSourceOpenStackLocal…
    assert re.search(rf"DataSource{re.escape(expected)}(Local)?\b", found, re.I), (
        f"cloud-init used {found or 'no datasource'!r}, expected {expected}: check datasource_list "
        "and ds-identify in the image")


@pytest.mark.late
def test_schema_valid(facts) -> None:
    """The image's cloud-init configuration and the instance's user-data are schema-valid: as
    cloud-init found them at boot (its log) and, from 23.4 on, as `schema --system` finds the
    instance's vendor data too."""
    out = facts["ci_schema"]
    assert out.ok, (f"cloud-init schema --system failed: {out.why()}; correct the keys it names "
                    "in /etc/cloud/cloud.cfg(.d) or the vendor/user data")
    boot_log = facts["ci_schema_boot"]
    assert boot_log.rc in (0, 1), f"cannot read /var/log/cloud-init.log: {boot_log.why()}"
    boot = boot_log.lines()
    assert not boot, ("cloud-init found invalid configuration at boot:\n" + "\n".join(boot[:5]) +
                      "\ncorrect those keys in /etc/cloud/cloud.cfg(.d) or the vendor/user data")


def test_instance_data_present(facts, machine) -> None:
    """instance-data.json exists and names this instance."""
    data = _json(facts, "ci_instance_data", "/run/cloud-init/instance-data.json")
    if not machine.facts.instance_id:
        assert data.get("v1", {}).get("instance_id"), ("instance-data.json names no instance: the "
                                                       "datasource gave cloud-init no instance id")
        return
    # ids compare case-insensitively: Azure's is the VM's UUID, which cloud-init lowercases
    assert str(data.get("v1", {}).get("instance_id")).lower() == machine.facts.instance_id.lower(), (
        f"instance-data.json names instance {data.get('v1', {}).get('instance_id')!r}, "
        f"not {machine.facts.instance_id!r}")


def test_no_state_from_image_build(facts, machine) -> None:
    """/var/lib/cloud holds this instance only: the image was cleaned (`cloud-init clean`)."""
    out = facts["ci_instances"]
    assert out.ok, f"cannot list /var/lib/cloud/instances: {out.why()}"
    # this instance's directory is the one cloud-init links as current
    current = facts["ci_instance_link"].stdout.strip().rsplit("/", 1)[-1] or machine.facts.instance_id
    others = [i for i in out.lines() if i != current]
    assert not others, (f"state of other instances in /var/lib/cloud/instances: {others}; run "
                        "`cloud-init clean --logs` before capturing the image")


def test_host_keys_generated_at_first_boot(facts) -> None:
    """SSH host keys were created during this boot, not baked into the image."""
    times = facts["host_key_times"]
    assert times.ok and times.lines(), f"no SSH host keys found: {times.why()}"
    boot = int(facts["btime"].stdout.strip())
    old = [line.split()[0] for line in times.lines() if int(line.split()[1]) < boot]
    assert not old, (f"host keys older than this boot (baked into the image, shared by every "
                     f"instance): {old}; delete /etc/ssh/ssh_host_* before capturing the image")


@pytest.mark.applies(provider=STARTS_THE_MACHINE)
def test_host_key_fingerprints_on_console(machine, instance) -> None:
    """cloud-init printed the host keys on the console, so users can verify their first login."""
    from debian_cloud_tests.console import announced_host_keys

    announced = announced_host_keys(machine.console_log())
    assert announced, ("no SSH HOST KEY KEYS block on the serial console: keep cloud-init's "
                       "ssh.emit_keys_to_console and a serial console as the kernel's last console=")
    assert set(instance.ready.host_keys) <= set(announced), (
        "the keys on the console are not the keys sshd presents")
