"""The providers fault_injection.py kills runs of, each with the emulated cloud (or libvirt) its
runs use, set up as the end-to-end tests set them up, and read after every kill for what a run
left in it.

- qemu: nothing to emulate; the run is walled in a network namespace of its own.
- aws: moto's EC2 on 127.0.0.1 (tests/test_provider_aws_e2e.py); left: instances not
  terminated, security groups but the default, key pairs.
- gce: the Compute Engine fake (tests/test_provider_gce_e2e.py), its DNS server and the runs in a
  network and mount namespace of its own, where ``metadata.google.internal`` resolves; left:
  instances, firewall rules.
- azure: the Resource Manager fake over HTTPS with a local CA and a managed-identity endpoint
  (tests/test_provider_azure_e2e.py); left: every resource (resource groups and what is in them).
- openstack: the Keystone/Nova/Glance/Neutron fake (tests/test_provider_openstack_e2e.py); left:
  servers, security groups but the default, key pairs.
- vagrant: Vagrant and vagrant-libvirt against a libvirtd in a namespace of its own
  (tests/fakes/libvirt_netns.py, tests/test_provider_vagrant.py), booting a box made from the
  image; left: libvirt domains and ``dct-`` volumes.

Every emulated instance is a real QEMU guest (tests/fakes/*_qemu.py), so a phase is reached as on
a cloud; a guest still running, or its run dir, counts as left too.  Nothing here stands in for
the provider: the runs go through the real SDKs, Vagrant and libvirt.
"""

from __future__ import annotations

import os
import shutil
import ssl
import sys
import tempfile
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("qemu", "aws", "gce", "azure", "openstack", "vagrant")


def walled(cmd: list[str]) -> list[str]:
    """*cmd* in a network namespace of its own with only loopback up (as tests/conftest.py)."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not (unshare and ip):
        sys.exit("unshare (util-linux) and ip (iproute2) are needed to wall the runs in")
    return [unshare, "--net", "/bin/sh", "-c", f'{ip} link set lo up && exec "$@"', "sh", *cmd]


def _guests_left(guests: Any) -> list[str]:
    return [f"guest {i}" for i, g in list(guests.guests.items()) if not g.stopped]


def _named(kind: str, found: dict[str, list[str]]) -> list[str]:
    return [f"{kind} {k} {v}" for k, vs in found.items() for v in vs]


def _stable(read: Any) -> Any:
    """*read* again while a request thread changes what it iterates."""
    for _ in range(10):
        with suppress(RuntimeError):
            return read()
    return read()


class Cloud:
    """A provider's runs: their command and environment, and what they left where they ran."""

    name = "qemu"
    #: where the emulated instances' consoles are (their guests' run dirs), if anywhere
    consoles: Path | None = None

    def command(self, base: list[str], image: Path, tmp: Path) -> list[str]:
        return walled([*base, "--provider=qemu", f"--image={image}", "--qemu-network=user"])

    def env(self, tmp: Path) -> dict[str, str]:
        return {}

    def gc_command(self, base: list[str]) -> list[str]:
        """`debian-cloud-tests gc` (*base*) for this cloud, where its runs run."""
        return base

    def leftovers(self) -> list[str]:
        return []

    def clean(self) -> None:
        """Remove a leak by hand so the next kill starts from nothing."""

    def close(self) -> None:
        pass


class Aws(Cloud):
    """moto's EC2 on 127.0.0.1 whose instances are QEMU guests; the runs share this namespace."""

    name = "aws"

    def __init__(self, image: Path, stack: ExitStack, work: Path, guests_dir: Path) -> None:
        import pytest

        from tests.fakes.aws_qemu import QemuMachines
        from tests.fakes.aws_world import make_world
        from tests.fakes.moto_ec2 import CheckIp, MotoEc2

        self.consoles = guests_dir
        self.moto, self.machines, self.checkip = MotoEc2(), QemuMachines(), CheckIp()
        stack.callback(self.moto.stop)
        stack.callback(self.checkip.shutdown)
        stack.callback(self.machines.close)
        self.patch = pytest.MonkeyPatch()
        stack.callback(self.patch.undo)
        self.world = make_world(self.moto, self.patch, work, self.machines, self.checkip)
        self.machines.images[self.world.ami] = image

    def command(self, base: list[str], image: Path, tmp: Path) -> list[str]:
        return [*base, "--provider=aws", f"--image={self.world.ami}", f"--region={self.world.region}"]

    def gc_command(self, base: list[str]) -> list[str]:
        return [*base, "--provider", "aws", "--region", self.world.region]

    def leftovers(self) -> list[str]:
        from tests.fakes.moto_ec2 import leftovers

        return _named("ec2", leftovers(self.moto, self.world.region)) + _guests_left(self.machines)

    def clean(self) -> None:
        ec2 = self.world.ec2
        ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
        for group in ec2.describe_security_groups()["SecurityGroups"]:
            if group["GroupName"] != "default":
                ec2.delete_security_group(GroupId=group["GroupId"])
        for key in ec2.describe_key_pairs()["KeyPairs"]:
            ec2.delete_key_pair(KeyName=key["KeyName"])


class Gce(Cloud):
    """The Compute Engine fake, its DNS and its guests in a network and mount namespace of their
    own, where the runs run too (``nsenter``)."""

    name = "gce"

    def __init__(self, image: Path, stack: ExitStack, work: Path, guests_dir: Path) -> None:
        from debian_cloud_tests.datasources.dns import DnsServer
        from tests.fakes.gce_compute import running_gce
        from tests.fakes.netns import private_namespace
        from tests.fakes.qemu_guests import QemuGuests, boot_budget_options
        from tests.test_provider_gce_e2e import IMAGE, METADATA

        self.consoles = guests_dir
        self.namespace = stack.enter_context(private_namespace(work / "ns"))
        self.guests = QemuGuests("gce", enter=self.namespace.enter_mounts)
        stack.callback(self.guests.close)
        with self.namespace.network():  # the servers' sockets and threads are made in there
            self.fake = stack.enter_context(running_gce())
            dns = DnsServer(METADATA).start()
            stack.callback(dns.stop)
        self.fake.guests, self.fake.require_token = self.guests, True
        self.guests.images[IMAGE] = image
        self.budget = boot_budget_options()
        self._env = {
            "DCT_SOURCE_ADDRESS": "127.0.0.1", "CLOUDSDK_CONFIG": str(work / "gcloud"),
            "NO_GCE_CHECK": "True", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.fake.service_account(work / "sa.json")),
            "DCT_GCE_API_ENDPOINT": self.fake.url}

    def command(self, base: list[str], image: Path, tmp: Path) -> list[str]:
        from tests.fakes.gce_compute import ZONE
        from tests.test_provider_gce_e2e import FAMILY

        return [*self.namespace.prefix(), *base, "--provider=gce", f"--image={FAMILY}", f"--zone={ZONE}",
                "--image-type=gce", *self.budget]

    def env(self, tmp: Path) -> dict[str, str]:
        return self._env

    def gc_command(self, base: list[str]) -> list[str]:
        from tests.fakes.gce_compute import PROJECT

        return [*self.namespace.prefix(), *base, "--provider", "gce", "--project", PROJECT]

    def leftovers(self) -> list[str]:
        return _named("gce", _stable(self.fake.leftovers)) + _guests_left(self.guests)

    def clean(self) -> None:
        for name in list(self.fake.instances):
            gone = self.fake.instances.pop(name, None)
            if gone is not None:
                self.guests.stop(gone["id"])
        self.fake.firewalls.clear()


class Azure(Cloud):
    """The Resource Manager fake over HTTPS (a local CA) with a managed-identity endpoint, found
    by the SDK's default credential chain as a user's run finds Azure's."""

    name = "azure"

    def __init__(self, image: Path, stack: ExitStack, work: Path, guests_dir: Path) -> None:
        import trustme

        from tests.fakes.azure_arm import SUBSCRIPTION, running_arm
        from tests.fakes.qemu_guests import QemuGuests, boot_budget_options

        self.consoles = guests_dir
        ca = trustme.CA()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(tls)
        ca_file = work / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        self.guests = QemuGuests("azure")
        stack.callback(self.guests.close)
        self.guests.images["debian:debian-12:12-gen2"] = image
        self.fake = stack.enter_context(running_arm(tls))
        self.fake.guests = self.guests
        self.budget = boot_budget_options()
        self._env = {
            "DCT_SOURCE_ADDRESS": "127.0.0.1", "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "DCT_AZURE_ARM_ENDPOINT": self.fake.url, "IDENTITY_ENDPOINT": f"{self.fake.url}/msi/token",
            "IDENTITY_HEADER": "stub", "REQUESTS_CA_BUNDLE": str(ca_file), "SSL_CERT_FILE": str(ca_file)}
        for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT",
                     "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME"):
            os.environ.pop(name, None)  # no other credential of this machine's may be found first

    def command(self, base: list[str], image: Path, tmp: Path) -> list[str]:
        from tests.fakes.azure_arm import LOCATION
        from tests.test_provider_azure_e2e import URN

        return [*base, "--provider=azure", f"--image={URN}", f"--region={LOCATION}", *self.budget]

    def env(self, tmp: Path) -> dict[str, str]:
        return self._env

    def gc_command(self, base: list[str]) -> list[str]:
        return [*base, "--provider", "azure"]

    def leftovers(self) -> list[str]:
        return _named("azure", _stable(self.fake.leftovers)) + _guests_left(self.guests)

    def clean(self) -> None:
        for key in list(self.fake.resources):
            gone = self.fake.resources.pop(key, None)
            if gone is not None:
                self.fake.boots.stop(self.guests, gone)


class OpenStack(Cloud):
    """The OpenStack fake (Keystone, Nova, Glance, Neutron) named in a clouds.yaml."""

    name = "openstack"

    def __init__(self, image: Path, stack: ExitStack, work: Path, guests_dir: Path) -> None:
        from tests.fakes.openstack_cloud import running_openstack
        from tests.fakes.qemu_guests import QemuGuests, boot_budget_options
        from tests.test_provider_openstack_e2e import IMAGE

        self.consoles = guests_dir
        self.guests = QemuGuests("nova")
        stack.callback(self.guests.close)
        self.fake = stack.enter_context(running_openstack())
        self.fake.guests = self.guests
        (image_id,) = [i for i, img in self.fake.images.items() if img["name"] == IMAGE]
        self.guests.images[image_id] = image
        self.budget = boot_budget_options()
        self._env = {"DCT_SOURCE_ADDRESS": "127.0.0.1", "OS_CLOUD": "fake",
                     "OS_CLIENT_CONFIG_FILE": str(self.fake.clouds_yaml(work / "clouds.yaml"))}

    def command(self, base: list[str], image: Path, tmp: Path) -> list[str]:
        from tests.test_provider_openstack_e2e import IMAGE

        return [*base, "--provider=openstack", f"--image={IMAGE}", *self.budget]

    def env(self, tmp: Path) -> dict[str, str]:
        return self._env

    def gc_command(self, base: list[str]) -> list[str]:
        return [*base, "--provider", "openstack"]

    def leftovers(self) -> list[str]:
        return _named("openstack", _stable(self.fake.leftovers)) + _guests_left(self.guests)

    def clean(self) -> None:
        for sid in list(self.fake.servers):
            if self.fake.servers.pop(sid, None) is not None:
                self.guests.stop(sid)
        self.fake.keypairs.clear()
        for gid, group in list(self.fake.security_groups.items()):
            if group["name"] != "default":
                self.fake.security_groups.pop(gid, None)


class Vagrant(Cloud):
    """A libvirtd of its own in a network and mount namespace, where the runs run (``nsenter``),
    and a libvirt box of the image; each run has a Vagrant home of its own."""

    name = "vagrant"

    def __init__(self, image: Path, stack: ExitStack, work: Path, guests_dir: Path) -> None:
        from tests.fakes.libvirt_netns import running_libvirtd
        from tests.test_provider_vagrant import make_box

        self.box = make_box(image, work / "debian-12-test.box")
        self.ns = stack.enter_context(running_libvirtd(work / "libvirt"))

    def command(self, base: list[str], image: Path, tmp: Path) -> list[str]:
        return [*self.ns.prefix(tmp), *base, "--provider=vagrant", f"--image={self.box}"]

    def env(self, tmp: Path) -> dict[str, str]:
        return {"VAGRANT_HOME": str(tmp / "vagrant.d")}

    def gc_command(self, base: list[str]) -> list[str]:
        return [*self.ns.prefix(), *base, "--provider", "vagrant"]

    def _ours(self) -> tuple[list[str], list[tuple[str, str]]]:
        domains = self.ns.virsh("list", "--all", "--name")
        volumes = [(pool, line.split()[0]) for pool in self.ns.virsh("pool-list", "--all", "--name")
                   for line in self.ns.virsh("vol-list", pool) if line.split()[0].startswith("dct-")]
        return domains, volumes

    def leftovers(self) -> list[str]:
        try:
            domains, volumes = self._ours()
        except RuntimeError as exc:  # libvirt could not be asked: nothing is known to be gone
            return [f"libvirt unreadable: {exc}"]
        return [f"libvirt domain {d}" for d in domains] + [f"libvirt volume {p}/{v}" for p, v in volumes]

    def clean(self) -> None:
        from tests.fakes.libvirt_netns import URI

        for domain in self._ours()[0]:
            self.ns.run("virsh", "-c", URI, "destroy", domain)
            self.ns.run("virsh", "-c", URI, "undefine", domain, "--remove-all-storage")
        for pool, volume in self._ours()[1]:
            self.ns.run("virsh", "-c", URI, "vol-delete", "--pool", pool, volume)


KINDS: dict[str, type[Cloud]] = {"aws": Aws, "gce": Gce, "azure": Azure, "openstack": OpenStack,
                                 "vagrant": Vagrant}


def unavailable(providers: list[str]) -> str | None:
    """Why the clouds of *providers* cannot be set up here, or None."""
    sys.path.insert(0, str(ROOT))
    from tests.fakes import libvirt_netns, netns

    if "gce" in providers and (why := netns.unavailable()):
        return f"gce: {why}"
    if "vagrant" in providers and (why := libvirt_netns.unavailable()):
        return f"vagrant: {why}"
    return None


def start(providers: list[str], image: Path, work: Path, stack: ExitStack) -> dict[str, Cloud]:
    """The clouds of *providers*, closed with *stack*.  The emulated instances' guests run in
    run dirs of their own under *work*/guests (this process's temporary directory from now on)."""
    sys.path.insert(0, str(ROOT))
    guests_dir = work / "guests"
    guests_dir.mkdir()
    tempfile.tempdir = str(guests_dir)
    clouds: dict[str, Cloud] = {}
    for name in providers:
        (work / name).mkdir()
        clouds[name] = KINDS[name](image, stack, work / name, guests_dir) if name in KINDS else Cloud()
    return clouds
