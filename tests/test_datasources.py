"""The emulated clouds without a guest: what each serves over its unix socket through the relay
QEMU runs, the config drive's files, the datasource and instance type a run resolves."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from debian_cloud_tests import errors
from debian_cloud_tests.datasources import emulation, platforms
from debian_cloud_tests.datasources.platforms import Datasource
from debian_cloud_tests.spec import Arch, Firmware, ImageType

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDct debian-cloud-tests"
USER_DATA = "#cloud-config\nwrite_files: []\n"


def _guest(datasource: Datasource, instance_type: str = "t3.micro") -> emulation.Guest:
    return emulation.Guest(Arch.AMD64, "debian-12-genericcloud-amd64.qcow2", instance_type, "debian",
                           KEY, USER_DATA, "dct-0001", emulation.new_instance_id(datasource))


def _ask(run_dir: Path, request: str) -> str:
    """*request* (HTTP/1.0) through the relay QEMU would run, as a guest's connection."""
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.datasources.relay", "unix",
                           emulation.SOCKET], input=request.encode(), capture_output=True,
                          timeout=30, cwd=run_dir)
    return proc.stdout.decode()


#: per cloud: a request a cloud-init datasource makes, and what the answer must hold
REQUESTS = {
    Datasource.EC2: ("PUT /latest/api/token HTTP/1.0\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
                     "200 OK"),
    Datasource.GCE: ("GET /computeMetadata/v1/instance/attributes/ssh-keys HTTP/1.0\r\n"
                     "Metadata-Flavor: Google\r\n\r\n", f"debian:{KEY}"),
    Datasource.AZURE: ("GET /metadata/instance/compute?api-version=2021-08-01 HTTP/1.0\r\n"
                       "Host: 169.254.169.254\r\nMetadata: true\r\n\r\n", '"vmSize": "t3.micro"'),
    Datasource.OPENSTACK: ("GET /openstack/latest/meta_data.json HTTP/1.0\r\n\r\n",
                           '"hostname": "dct-0001.novalocal"'),
}


@pytest.mark.parametrize("datasource", list(REQUESTS))
def test_the_emulator_beside_qemu_answers_through_the_relay(datasource: Datasource, tmp_path: Path) -> None:
    made = emulation.EMULATORS[datasource](_guest(datasource), tmp_path)
    command = made.companion(None)
    assert command is not None
    server = subprocess.Popen(command, cwd=tmp_path)
    try:
        request, expected = REQUESTS[datasource]
        answer = _ask(tmp_path, request)  # the relay waits for the socket to appear
        assert expected in answer, answer
        assert (tmp_path / emulation.LOG).read_text().strip(), "the request was not logged"
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert not (tmp_path / emulation.SOCKET).exists(), "the socket outlived its server"


def test_ec2_tokens_are_required(tmp_path: Path) -> None:
    made = emulation.ec2(_guest(Datasource.EC2), tmp_path)
    server = subprocess.Popen(made.companion(None) or [], cwd=tmp_path)
    try:
        answer = _ask(tmp_path, "GET /latest/meta-data/instance-id HTTP/1.0\r\n\r\n")
        assert answer.startswith("HTTP/1.0 401"), answer
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_relay_connects_to_nothing_but_loopback_or_a_unix_socket() -> None:
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.datasources.relay",
                           "192.0.2.1", "80"], capture_output=True, timeout=30)
    assert proc.returncode == 2


def test_the_config_drive_holds_the_servers_documents(tmp_path: Path) -> None:
    import pycdlib

    made = emulation.configdrive(_guest(Datasource.CONFIGDRIVE, "m1.small"), tmp_path)
    assert made.drive is not None and made.server_config is None and made.companion(None) is None
    iso = pycdlib.PyCdlib()
    iso.open(str(made.drive))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "config-2"

        def read(path: str) -> str:
            import io
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, joliet_path=path)
            return out.getvalue().decode()

        meta = json.loads(read("/openstack/latest/meta_data.json"))
        assert meta["uuid"] == made.instance_id and meta["public_keys"] == {"debian-cloud-tests": KEY}
        assert read("/openstack/latest/user_data") == USER_DATA
        assert json.loads(read("/openstack/latest/network_data.json"))["links"][0][
            "ethernet_mac_address"] == made.mac
    finally:
        iso.close()


@pytest.mark.parametrize(("given", "command_line", "image_type", "expected"), [
    (None, False, ImageType.EC2, Datasource.EC2),
    (None, False, ImageType.GENERICCLOUD, Datasource.NOCLOUD),
    (None, False, None, Datasource.NOCLOUD),
    ("OpenStack", False, ImageType.GENERIC, Datasource.OPENSTACK),
    ("azure", True, ImageType.EC2, Datasource.AZURE),  # a deliberate cross-check
    ("nocloud", False, ImageType.GCE, Datasource.NOCLOUD),
])
def test_the_datasource_a_run_emulates(given, command_line, image_type, expected) -> None:
    assert platforms.resolve(given, command_line, image_type) is expected


def test_a_datasource_from_an_ini_file_contradicting_the_image_type_is_refused() -> None:
    with pytest.raises(errors.DatasourceContradictionError):
        platforms.resolve("gce", False, ImageType.EC2)


@pytest.mark.parametrize(("datasource", "arch", "given", "expected"), [
    (Datasource.EC2, Arch.AMD64, None, ("t3.micro", 2, 1024)),
    (Datasource.EC2, Arch.ARM64, None, ("t4g.micro", 2, 1024)),
    (Datasource.EC2, Arch.AMD64, "1x1024", ("t2.micro", 1, 1024)),
    (Datasource.GCE, Arch.AMD64, "e2-medium", ("e2-medium", 2, 4096)),
    (Datasource.GCE, Arch.AMD64, "3x3072", ("custom-3-3072", 3, 3072)),
    (Datasource.AZURE, Arch.AMD64, "1x1024", ("Standard_B1s", 1, 1024)),
    (Datasource.OPENSTACK, Arch.AMD64, "4x8192", ("4x8192", 4, 8192)),
])
def test_instance_types_as_the_cloud_names_them(datasource, arch, given, expected) -> None:
    assert platforms.instance_type(datasource, arch, given, (2, 1024)) == expected


def test_arm64_machines_of_a_cloud_boot_uefi_only() -> None:
    platforms.check_platform(Datasource.AZURE, Arch.ARM64, Firmware.UEFI)
    with pytest.raises(errors.DatasourcePlatformError, match="azure boots arm64 machines with uefi only"):
        platforms.check_platform(Datasource.AZURE, Arch.ARM64, Firmware.BIOS)


def test_the_emulator_ends_with_the_machine(tmp_path: Path) -> None:
    """Started as QEMU starts it (by a shell that becomes the machine), the emulator ends when the
    machine ends, killed included."""
    from debian_cloud_tests.providers.qemu.machine import with_companion

    made = emulation.openstack(_guest(Datasource.OPENSTACK, "m1.small"), tmp_path)
    machine = subprocess.Popen(with_companion(["sleep", "60"], made.companion(None)), cwd=tmp_path)
    deadline = time.monotonic() + 20
    while not (tmp_path / emulation.SOCKET).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / emulation.SOCKET).exists()
    machine.kill()
    machine.wait()
    deadline = time.monotonic() + 10
    while (tmp_path / emulation.SOCKET).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (tmp_path / emulation.SOCKET).exists(), "the emulator outlived its machine"


@pytest.mark.parametrize(("datasource", "domain", "search"), [
    (Datasource.EC2, "eu-central-1.compute.internal", ()),
    (Datasource.GCE, "europe-west1-b.c.debian-cloud-tests.internal",
     ("europe-west1-b.c.debian-cloud-tests.internal", "c.debian-cloud-tests.internal",
      "google.internal")),
    (Datasource.OPENSTACK, "openstacklocal", ()),
    (Datasource.CONFIGDRIVE, "openstacklocal", ())])
def test_the_user_network_sends_the_clouds_dhcp_domain(datasource, domain, search, tmp_path: Path) -> None:
    made = emulation.EMULATORS[datasource](_guest(datasource), tmp_path)
    options = made.user_net.split(",")
    assert f"domainname={domain}" in options, made.user_net
    assert [o.removeprefix("dnssearch=") for o in options if o.startswith("dnssearch=")] == list(search)
    assert (made.domain, made.search) == (domain, search)


def test_an_azure_network_has_a_domain_of_its_own(tmp_path: Path) -> None:
    domains = {emulation.azure(_guest(Datasource.AZURE), tmp_path).domain for _ in range(2)}
    assert len(domains) == 2 and all(d.endswith(".internal.cloudapp.net") for d in domains), domains
