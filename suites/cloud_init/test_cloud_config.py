"""cloud-init's merged configuration (as cloud-init itself merged it at boot): root logins refused,
host keys from the image deleted, no passwords, the platform's hostname and network
applied, and the modules a cloud image needs still enabled."""

from __future__ import annotations

import json

import pytest

from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import SSHD_T

#: module -> why an instance needs it (removing any of these breaks a promise of the image)
REQUIRED_MODULES = {
    "growpart": "the root partition grows to the disk",
    "resizefs": "the root file system grows with it",
    "set_hostname": "the instance gets the hostname its platform gives",
    "update_etc_hosts": "the hostname resolves (sudo and others stay quick)",
    "ca_certs": "users can add CAs through user-data",
    "write_files": "user-data can write files",
    "scripts_user": "user-data scripts run",
    "keys_to_console": "host keys are printed for out-of-band verification",
}
STAGES = ("cloud_init_modules", "cloud_config_modules", "cloud_final_modules")
#: only these keys leave the guest: the merged configuration also holds user-data
KEYS = ("disable_root", "ssh_deletekeys", "ssh_pwauth", "ssh_genkeytypes", "preserve_hostname",
        "manage_etc_hosts", "network", *STAGES)

#: NSS modules that resolve the machine's own name, whatever it is now, without DNS: systemd's
#: myhostname, and resolve (systemd-resolved synthesises the local hostname)
SELF_RESOLVING_NSS = ("myhostname", "resolve")

PROBES = [
    SSHD_T,
    Probe("hostname_by_nss", "svcs=$(sed -n 's/^hosts:[[:space:]]*//p' /etc/nsswitch.conf | "
          "tr -s ' \\t' '\\n\\n' | grep -x -E '" + "|".join(SELF_RESOLVING_NSS) + "' | tr '\\n' ' '); "
          "[ -z \"$svcs\" ] || getent -s \"hosts:$svcs\" hosts \"$(hostname)\"; true"),
    Probe("ci_merged_cfg", "python3 -I -S -c 'import json,sys; c=json.load(open(\"/run/cloud-init/"
          "instance-data-sensitive.json\"))[\"merged_cfg\"]; json.dump({k: c.get(k) for k in "
          "sys.argv[1:]}, sys.stdout)' " + " ".join(KEYS), root=True),
]


def _merged(facts) -> dict:
    out = facts["ci_merged_cfg"]
    if not out.ok:
        pytest.fail(f"cannot read cloud-init's merged configuration: {out.why()}", pytrace=False)
    return json.loads(out.stdout)


def _enabled_modules(cfg: dict) -> set[str]:
    names = set()
    for stage in STAGES:
        for entry in cfg.get(stage) or []:
            name = entry[0] if isinstance(entry, list) and entry else entry
            if isinstance(name, str):
                names.add(name.removeprefix("cc_").replace("-", "_"))
    return names


def test_root_login_disabled(facts) -> None:
    """Root does not accept the launch key over SSH: cloud-init turns it away (disable_root) and
    gives the key to the default user, or sshd refuses root altogether (PermitRootLogin no)."""
    value = _merged(facts).get("disable_root")
    if value in (True, None):
        return
    sshd = facts["sshd_T"]
    assert sshd.ok, f"cloud-init disable_root is {value!r} and sshd -T failed: {sshd.why()}"
    permit = next((line.split()[1] for line in sshd.lines()
                   if line.startswith("permitrootlogin ") and len(line.split()) == 2), "unknown")
    assert permit == "no", (f"cloud-init disable_root is {value!r} and sshd permits root "
                            f"({permit}): root accepts the launch key; set disable_root: true")


def test_image_host_keys_deleted(facts) -> None:
    """cloud-init deletes the host keys it finds on a new instance (ssh_deletekeys). The setting is
    the promise: an image users capture from their own instance starts with keys of its own."""
    value = _merged(facts).get("ssh_deletekeys")
    assert value in (True, None), (f"cloud-init ssh_deletekeys is {value!r}: host keys baked into "
                                   "the image would be kept; set ssh_deletekeys: true")


def test_password_login_not_enabled(facts) -> None:
    """cloud-init does not turn SSH password logins on (ssh_pwauth). The setting is the promise:
    it applies to every instance, whatever sshd says on this one (config.sshd_setting checks that)."""
    value = _merged(facts).get("ssh_pwauth")
    assert value not in (True, "true", "yes", "1"), (
        f"cloud-init ssh_pwauth is {value!r}: it enables password logins; remove it")


def test_hostname_not_preserved(facts) -> None:
    """cloud-init sets the hostname the platform gives (preserve_hostname is not true). The setting
    is the promise: an instance the platform renames takes the new name at its next boot."""
    value = _merged(facts).get("preserve_hostname")
    assert value in (False, None), (f"cloud-init preserve_hostname is {value!r}: every instance keeps "
                                    "the image's hostname; set it to false")


def test_etc_hosts_managed(facts) -> None:
    """The instance's own name resolves without DNS whatever name the platform gives it: cloud-init
    writes it into /etc/hosts (manage_etc_hosts), or NSS resolves the machine's own name
    (myhostname, or systemd-resolved's resolve, in nsswitch.conf's hosts line)."""
    value = _merged(facts).get("manage_etc_hosts")
    if value in (True, "template", "localhost"):
        return
    by_nss = facts["hostname_by_nss"]
    assert by_nss.ok and by_nss.lines(), (
        f"cloud-init manage_etc_hosts is {value!r} and no NSS module of "
        f"{', '.join(SELF_RESOLVING_NSS)} resolves the hostname: a name the platform gives "
        "resolves only through its DNS; set manage_etc_hosts: true or install libnss-myhostname")


def test_network_config_enabled(facts) -> None:
    """cloud-init renders the platform's network configuration (network: config: disabled is not
    set, which would leave the build host's)."""
    network = _merged(facts).get("network") or {}
    config = network.get("config") if isinstance(network, dict) else None
    assert config != "disabled", "cloud-init network configuration is disabled; remove that setting"


@pytest.mark.parametrize("module", sorted(REQUIRED_MODULES))
def test_module_enabled(facts, module: str) -> None:
    """The cloud-init modules a Debian cloud image relies on are enabled."""
    enabled = _enabled_modules(_merged(facts))
    assert module in enabled, (f"cloud-init module {module} is not enabled, so not: "
                               f"{REQUIRED_MODULES[module]}; keep it in /etc/cloud/cloud.cfg")
