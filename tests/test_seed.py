"""The NoCloud seed: user-data merging and an ISO that cloud-init can read."""

from __future__ import annotations

import io
from pathlib import Path

import pycdlib
import pytest
import yaml

from debian_cloud_tests import seed
from debian_cloud_tests.errors import UsageError

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest dct"


def test_default_user_data_authorises_key() -> None:
    text = seed.build_user_data(seed.SeedContent(authorized_key=KEY))
    assert text.startswith("#cloud-config\n")
    assert yaml.safe_load(text) == {"ssh_authorized_keys": [KEY]}


def test_ca_and_injected_host_keys() -> None:
    doc = yaml.safe_load(seed.build_user_data(seed.SeedContent(
        authorized_key=KEY, ca_certs=["-----BEGIN CERTIFICATE-----\nX\n"],
        host_keys={"ed25519_private": "PRIV", "ed25519_public": "PUB"})))
    assert doc["ca_certs"]["trusted"] == ["-----BEGIN CERTIFICATE-----\nX\n"]
    assert doc["ssh_keys"] == {"ed25519_private": "PRIV", "ed25519_public": "PUB"}


def test_users_cloud_config_is_merged_not_replaced(tmp_path: Path) -> None:
    user = tmp_path / "ud.yaml"
    user.write_text("#cloud-config\npackages: [htop]\nssh_authorized_keys: [ssh-rsa AAAA theirs]\n")
    doc = yaml.safe_load(seed.build_user_data(seed.SeedContent(authorized_key=KEY, user_data_file=user)))
    assert doc["packages"] == ["htop"]
    assert doc["ssh_authorized_keys"] == ["ssh-rsa AAAA theirs", KEY]


def test_users_script_travels_in_multipart(tmp_path: Path) -> None:
    user = tmp_path / "ud.sh"
    user.write_text("#!/bin/sh\necho hello\n")
    text = seed.build_user_data(seed.SeedContent(authorized_key=KEY, user_data_file=user))
    assert "multipart/mixed" in text and "text/x-shellscript" in text and "text/cloud-config" in text


@pytest.mark.parametrize("content, message", [
    ("#cloud-config\n: : bad: [\n", "not valid YAML"),
    ("#cloud-config\n- a list\n", "must be a mapping"),
    ("just some text\n", "unrecognised format"),
])
def test_bad_user_data_is_a_usage_error(tmp_path: Path, content: str, message: str) -> None:
    user = tmp_path / "ud"
    user.write_text(content)
    with pytest.raises(UsageError, match=message):
        seed.build_user_data(seed.SeedContent(authorized_key=KEY, user_data_file=user))


def test_seed_iso_has_cidata_label_and_files(tmp_path: Path) -> None:
    iso_path = tmp_path / "seed.iso"
    seed.write_seed_iso(iso_path, "#cloud-config\n{}\n", seed.build_meta_data("i-1", "host-1"))
    iso = pycdlib.PyCdlib()
    iso.open(str(iso_path))
    assert iso.pvd.volume_identifier.decode().strip() == "cidata"
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path="/meta-data")
    assert yaml.safe_load(out.getvalue()) == {"instance-id": "i-1", "local-hostname": "host-1"}
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, joliet_path="/user-data")
    assert out.getvalue().startswith(b"#cloud-config")
    iso.close()


def test_ca_cert_must_be_a_readable_pem(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--ca-cert .*: No such file"):
        seed.read_ca_cert(tmp_path / "missing.pem")
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello\n")
    with pytest.raises(UsageError, match="not a PEM certificate"):
        seed.read_ca_cert(not_pem)
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    assert seed.read_ca_cert(pem).startswith("-----BEGIN CERTIFICATE-----")


def test_user_input_is_checked_as_a_launch_reads_it(tmp_path: Path) -> None:
    """Options are checked with this before anything is created: what a launch would refuse."""
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    user = tmp_path / "ud.yaml"
    user.write_text("#cloud-config\npackages: [htop]\n")
    seed.check_user_input(user, [pem])
    seed.check_user_input(None, [])
    with pytest.raises(UsageError, match=r"--ca-cert .*missing\.pem: No such file"):
        seed.check_user_input(user, [pem, tmp_path / "missing.pem"])
    user.write_text("plain text\n")
    with pytest.raises(UsageError, match=rf"--user-data {user}: unrecognised format"):
        seed.check_user_input(user, [pem])
