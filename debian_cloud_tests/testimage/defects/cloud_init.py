"""Defects the cloud-init suite's checks catch: state and configuration from the build, a
configuration that errs, modules or promises dropped."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..disk import DiskLayout
from . import defect
from .plant import (
    cloud_cfg,
    edit,
)


@defect("cloud-init-default-key-types")
def cloud_init_default_key_types(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Not a defect: ssh_genkeytypes left at cloud-init's default, as Debian's official bookworm
    images leave it, so bookworm's cloud-init makes a DSA key file that sshd never loads.  Planted
    beside defects as a false-alarm control for the DSA check."""
    edit(tree / "etc/cloud/cloud.cfg.d/01_debian_cloud.cfg", r"^ssh_genkeytypes: .*\n", "")


@defect("stale-cloud-init-state")
def stale_cloud_init_state(tree: Path, arch: str, layout: DiskLayout) -> None:
    """The build machine's cloud-init instance directory is left in the image."""
    inst = tree / "var/lib/cloud/instances/i-0build0host0000"
    inst.mkdir(parents=True)
    (inst / "datasource").write_text("DataSourceEc2Local: DataSourceEc2Local\n")


@defect("baked-nocloud-seed")
def baked_nocloud_seed(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A NoCloud seed from the build left in the image: its instance-id outranks the platform's,
    so every instance of the image gets the same one."""
    seed = tree / "var/lib/cloud/seed/nocloud"
    seed.mkdir(parents=True, exist_ok=True)
    (seed / "meta-data").write_text("instance-id: iid-baked-into-image\n")
    (seed / "user-data").write_text("#cloud-config\n{}\n")


@defect("host-keys-baked")
def host_keys_baked(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Host keys generated at build time and kept: every instance shares them."""

    for kind in ("rsa", "ecdsa", "ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "root@build",
                        "-f", str(tree / f"etc/ssh/ssh_host_{kind}_key")], check=True)
    cloud_cfg(tree, "99-keep-keys.cfg", "ssh_deletekeys: false\n")


@defect("cloud-init-error")
def cloud_init_error(tree: Path, arch: str, layout: DiskLayout) -> None:
    cloud_cfg(tree, "99-bootcmd.cfg", "bootcmd:\n  - [sh, -c, 'echo failing bootcmd; exit 3']\n")


@defect("schema-invalid")
def schema_invalid(tree: Path, arch: str, layout: DiskLayout) -> None:
    cloud_cfg(tree, "99-invalid.cfg", "apk_repos: 42\n")


@defect("hostname-preserved")
def hostname_preserved(tree: Path, arch: str, layout: DiskLayout) -> None:
    (tree / "etc/hostname").write_text("build-host\n")
    cloud_cfg(tree, "99-hostname.cfg", "preserve_hostname: true\n")


@defect("write-files-dropped")
def write_files_dropped(tree: Path, arch: str, layout: DiskLayout) -> None:
    edit(tree / "etc/cloud/cloud.cfg", r"^\s*- write[-_]files\s*\n", "")


@defect("keys-not-on-console")
def keys_not_on_console(tree: Path, arch: str, layout: DiskLayout) -> None:
    cloud_cfg(tree, "99-quiet-keys.cfg", "ssh:\n  emit_keys_to_console: false\nno_ssh_fingerprints: true\n")


@defect("cloud-init-lax")
def cloud_init_lax(tree: Path, arch: str, layout: DiskLayout) -> None:
    """Root gets the launch key, host keys found at first boot are kept, passwords are allowed."""
    cloud_cfg(tree, "99-lax.cfg", "disable_root: false\nssh_deletekeys: false\nssh_pwauth: true\n")


#: the modules "cloud-init-modules-trimmed" drops from cloud.cfg's lists


TRIMMED_MODULES = ("growpart", "resizefs", "set_hostname", "update_hostname", "update_etc_hosts",
                   "ca_certs", "ca-certs", "write_files", "write-files", "scripts_user", "scripts-user",
                   "keys_to_console", "keys-to-console")


@defect("cloud-init-modules-trimmed")
def cloud_init_modules_trimmed(tree: Path, arch: str, layout: DiskLayout) -> None:
    """A size-minded override of cloud-init's module lists that drops modules the image needs."""
    import yaml

    cfg = yaml.safe_load((tree / "etc/cloud/cloud.cfg").read_text())
    trimmed = {}
    for stage in ("cloud_init_modules", "cloud_config_modules", "cloud_final_modules"):
        entries = cfg.get(stage) or []
        trimmed[stage] = [e for e in entries
                          if (e[0] if isinstance(e, list) else e) not in TRIMMED_MODULES]
    cloud_cfg(tree, "99-trimmed-modules.cfg", yaml.safe_dump(trimmed))


@defect("ec2-datasource-only")
def ec2_datasource_only(tree: Path, arch: str, layout: DiskLayout) -> None:
    # an image built for EC2, as its vendor configuration lists: on another cloud cloud-init
    # finds no datasource of its list, falls back to None, and the instance gets no key
    cloud_cfg(tree, "90_datasources.cfg", "datasource_list: [Ec2, None]\n")
