"""cloud-init input: the user-data we inject (our SSH key, optional CA and host keys) and the
NoCloud seed ISO that carries it, built in Python with pycdlib (no genisoimage needed).

A user's own ``--user-data`` is kept intact: a ``#cloud-config`` document is merged with ours
(their keys are kept, ours added), anything else travels beside ours in a MIME multipart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import yaml

from . import sshkeys
from .errors import UsageError
from .isofs import write_iso
from .spec import HostKeySource, LaunchSpec

_SUBTYPES = {
    "#cloud-config": "cloud-config",
    "#!": "x-shellscript",
    "#include": "x-include-url",
    "#cloud-boothook": "cloud-boothook",
    "## template: jinja": "jinja2",
}


@dataclass
class SeedContent:
    """What the framework needs cloud-init to do on first boot."""

    authorized_key: str
    ca_certs: list[str] = field(default_factory=list)
    #: {"ed25519_private": ..., "ed25519_public": ...} when the host key is injected
    host_keys: dict[str, str] = field(default_factory=dict)
    user_data_file: Path | None = None
    #: written by cloud-init's write_files, so a check can prove the user-data was applied
    launch_marker: str = ""


MARKER_PATH = "/run/debian-cloud-tests/launch-marker"
#: the launch marker as cloud-init renders it in the guest, on clouds that assign the instance id
#: only once they answer the launch request
INSTANCE_ID_TEMPLATE = "{{ v1.instance_id }}"


def build_user_data(content: SeedContent) -> str:
    """The user-data document, with the user's own document merged in."""
    ours: dict[str, object] = {"ssh_authorized_keys": [content.authorized_key]}
    if content.ca_certs:
        ours["ca_certs"] = {"trusted": content.ca_certs}
    if content.host_keys:
        ours["ssh_keys"] = dict(content.host_keys)
        ours["ssh_deletekeys"] = True
    if content.launch_marker:
        ours["write_files"] = [{"path": MARKER_PATH, "content": content.launch_marker + "\n",
                                "permissions": "0644"}]
    if content.user_data_file is None:
        return "#cloud-config\n" + yaml.safe_dump(ours, sort_keys=False)
    try:
        theirs = content.user_data_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--user-data {content.user_data_file}: cannot read it ({exc})") from None
    if theirs.startswith("#cloud-config"):
        return "#cloud-config\n" + yaml.safe_dump(_merge(content.user_data_file, theirs, ours),
                                                  sort_keys=False)
    return _multipart(content.user_data_file, theirs,
                      "#cloud-config\n" + yaml.safe_dump(ours, sort_keys=False))


def _merge(path: Path, theirs: str, ours: dict[str, object]) -> dict[str, object]:
    try:
        doc = yaml.safe_load(theirs) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"--user-data {path}{where}: not valid YAML") from None
    if not isinstance(doc, dict):
        raise UsageError(f"--user-data {path}: a #cloud-config document must be a mapping")
    merged = dict(doc)
    keys = list(doc.get("ssh_authorized_keys") or [])
    merged["ssh_authorized_keys"] = keys + list(ours["ssh_authorized_keys"])  # type: ignore[call-overload]
    for key, value in ours.items():
        if key == "write_files" and isinstance(doc.get("write_files"), list):
            merged["write_files"] = [*doc["write_files"], *value]  # type: ignore[misc]
        elif key == "ca_certs" and isinstance(doc.get("ca_certs"), dict):
            trusted = list(doc["ca_certs"].get("trusted") or [])
            merged["ca_certs"] = {**doc["ca_certs"], "trusted": trusted + value["trusted"]}  # type: ignore[index]
        elif key != "ssh_authorized_keys":
            merged[key] = value
    return merged


def _multipart(path: Path, theirs: str, ours: str) -> str:
    subtype = next((sub for prefix, sub in _SUBTYPES.items() if theirs.startswith(prefix)), None)
    if subtype is None:
        raise UsageError(f"--user-data {path}: unrecognised format (expected #cloud-config, a #! script, "
                         "#include, #cloud-boothook or a jinja template)")
    msg = MIMEMultipart()
    msg.attach(MIMEText(theirs, subtype))
    msg.attach(MIMEText(ours, "cloud-config"))
    return msg.as_string()


def read_ca_cert(path: Path) -> str:
    """A PEM CA certificate for cloud-init's ca_certs (``--ca-cert``), checked before any launch."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"--ca-cert {path}: {exc.strerror}") from None
    if "BEGIN CERTIFICATE" not in text:
        raise UsageError(f"--ca-cert {path}: not a PEM certificate")
    return text


#: stands in for the run's key when user input is checked before the key exists
_CHECK_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIcheck debian-cloud-tests"


def check_user_input(user_data: Path | None, ca_certs: Sequence[Path]) -> None:
    """Read ``--user-data`` and every ``--ca-cert`` as a launch would, before anything exists.

    A bad file is then one usage error at option time, not an error of the first check after a
    machine was created (which printed nothing on stderr).

    Raises:
        UsageError: a file is missing, unreadable, not PEM, not YAML or of an unknown format.
    """
    certs = [read_ca_cert(path) for path in ca_certs]
    build_user_data(SeedContent(authorized_key=_CHECK_KEY, ca_certs=certs, user_data_file=user_data))


def build_meta_data(instance_id: str, hostname: str) -> str:
    return yaml.safe_dump({"instance-id": instance_id, "local-hostname": hostname})


def write_seed_iso(path: Path, user_data: str, meta_data: str,
                   network_config: str | None = None) -> None:
    """A NoCloud seed: an ISO 9660 volume labelled ``cidata``."""
    files = {"user-data": user_data, "meta-data": meta_data}
    if network_config is not None:
        files["network-config"] = network_config
    write_iso(path, "cidata", files)


@dataclass(frozen=True)
class FirstBoot:
    """What a locally booted machine is given on first boot, whatever carries it there."""

    key_file: Path  # the run's client key, written 0600 in the run dir
    public_key: str
    #: the host keys injected, if the spec asks for that
    injected: list[str] | None
    user_data: str


def first_boot(spec: LaunchSpec, run_dir: Path, instance_id: str, hostname: str) -> FirstBoot:
    """The run's client key, the injected host keys if the spec asks for them, and the user-data
    carrying both (its launch marker *instance_id*)."""
    client = sshkeys.generate(f"debian-cloud-tests-{spec.run_id}")
    key_file = sshkeys.write_private(client, run_dir / "id_ed25519")
    host_keys: dict[str, str] = {}
    injected: list[str] | None = None
    if spec.host_key_source is HostKeySource.INJECTED:
        host = sshkeys.generate(f"root@{hostname}")
        host_keys = {"ed25519_private": host.private_openssh, "ed25519_public": host.public_openssh}
        injected = [host.public_openssh]
    user_data = build_user_data(SeedContent(
        authorized_key=client.public_openssh, host_keys=host_keys, user_data_file=spec.user_data,
        launch_marker=instance_id, ca_certs=[read_ca_cert(p) for p in spec.ca_certs]))
    return FirstBoot(key_file, client.public_openssh, injected, user_data)


def write_nocloud_seed(spec: LaunchSpec, run_dir: Path, instance_id: str,
                       hostname: str) -> tuple[Path, list[str] | None, Path]:
    """For a machine booted locally: the run's client key, the injected host keys if the spec
    asks for them, and the NoCloud seed ISO carrying both."""
    boot = first_boot(spec, run_dir, instance_id, hostname)
    seed_iso = run_dir / "seed.iso"
    write_seed_iso(seed_iso, boot.user_data, build_meta_data(instance_id, hostname))
    return boot.key_file, boot.injected, seed_iso


def cloud_user_data(spec: LaunchSpec, authorized_key: str, host_keys: dict[str, str]) -> str:
    """The framework's user-data for a cloud instance.  A cloud-config document goes as a jinja
    template, so the launch marker holds the instance id the cloud assigns at creation; a user
    document that cannot be templated (its own jinja, or not cloud-config) goes without it."""
    content = SeedContent(authorized_key=authorized_key, host_keys=host_keys,
                          user_data_file=spec.user_data,
                          ca_certs=[read_ca_cert(p) for p in spec.ca_certs])
    templated = build_user_data(replace(content, launch_marker=INSTANCE_ID_TEMPLATE))
    if templated.startswith("#cloud-config") and templated.count("{{") == 1 and "{%" not in templated:
        return "## template: jinja\n" + templated
    return build_user_data(content)
