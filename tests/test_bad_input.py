"""Bad input: one clear line, a distinct exit code, no traceback, nothing left behind.

Each row of README.md's bad-input table is run here as a user runs it (the real command in a
subprocess), or names the test elsewhere that does so; ``README_ROWS`` maps the rows to their
tests, and ``test_every_readme_row_has_a_test`` keeps the table and the tests from drifting apart.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from debian_cloud_tests import errors, sshkeys
from debian_cloud_tests.faibuild.host import REQUIRED_PROGRAMS
from debian_cloud_tests.spec import Arch
from debian_cloud_tests.testimage.upgrade_repo import SUITE, sign_release, write_index
from debian_cloud_tests.upgrade.errors import UnsignedRepositoryError

from .conftest import SuiteRun, mbr_disk, run_suites
from .test_gate_support import passing, write_policy
from .test_provider_vagrant import make_box_meta_only

if TYPE_CHECKING:
    from .fakes.aws_world import AwsWorld
    from .fakes.sshd import Sshd

pytest_plugins = ["tests.fakes.aws_env"]

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
PREFIX = "debian-cloud-tests: error: "
GATE_PREFIX = "debian-cloud-tests gate: error: "
#: post-launch errors reach the terminal summary (stdout), not stderr, until plugin.py prints them there


def _tar_xz(disk: Path, path: Path) -> Path:
    """*disk* as Debian publishes its raw images: disk.raw in a .tar.xz."""
    with tarfile.open(path, "w:xz") as archive:
        archive.add(disk, "disk.raw")
    return path


def _leftovers(tmpdir: Path) -> list[str]:
    """Run dirs left in TMPDIR, and processes still mentioning it."""
    left = [p.name for p in tmpdir.glob("dct-run-*")]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(tmpdir).encode() in (proc / "cmdline").read_bytes():
                    left.append(f"pid {proc.name}")
            except OSError:
                pass
    return left


def _stderr_lines(run: SuiteRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.strip()]


def _assert_one_line_error(run: SuiteRun, code: int, *needles: str, one_line: bool = True,
                           prefix: str = PREFIX, known_gap: str = "") -> None:
    """The exit code, no traceback, every needle in the output; with *one_line*, in exactly one
    stderr line.  A *known_gap* (a defect outside this module) turns a missing stderr line into
    an xfail naming it, so the gap shows in every run and the test passes once it is fixed."""
    out = run.stdout + run.stderr
    assert run.rc == code, run.explain()
    assert "Traceback" not in out, run.explain()
    for needle in needles:
        assert needle in out, run.explain()
    if not one_line:
        return
    lines = _stderr_lines(run)
    if known_gap and not (len(lines) == 1 and all(n in lines[0] for n in needles)):
        pytest.xfail(f"known gap: {known_gap}")
    assert len(lines) == 1, run.explain()
    assert lines[0].startswith(prefix), run.explain()
    for needle in needles:
        assert needle in lines[0], run.explain()


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return tmpdir, {"TMPDIR": str(tmpdir)}


# --- the table: one case per bad input that needs no VM ------------------------------------------

PLUGIN, CLI = "plugin", "cli"
AWS_NO_CREDENTIALS = {
    "HOME": "{tmp}", "AWS_CONFIG_FILE": "{tmp}/no-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "{tmp}/no-aws-credentials", "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None, "AWS_DEFAULT_PROFILE": None, "AWS_WEB_IDENTITY_TOKEN_FILE": None,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None, "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
}
OPENSTACK_NOTHING = {"HOME": "{tmp}", "OS_CLIENT_CONFIG_FILE": "{tmp}/none.yaml", "OS_CLOUD": "",
                     "OS_AUTH_URL": "", "DCT_SOURCE_ADDRESS": "127.0.0.1"}
SSH = ("--provider=ssh", "--image=debian-12-genericcloud-amd64")
QEMU = ("--provider=qemu", "--image={disk}")
BUILD = ("build", "--release", "bookworm", "--vendor", "genericcloud", "--output", "{tmp}/out")
AS_ROOT = ("unshare", "--user", "--map-root-user")  # root in a user namespace: passes check_root
#: a host whose AAVMF has no variable store with keys enrolled (an older qemu-efi-aarch64): the
#: firmware directory, in a mount namespace of the command's own, holds only the plain pair
AAVMF_WITHOUT_KEYS = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                      "mount -t tmpfs dct /usr/share/AAVMF && touch /usr/share/AAVMF/AAVMF_CODE.fd "
                      "/usr/share/AAVMF/AAVMF_VARS.fd && exec \"$@\"", "sh")
NOT_ROOT = ("unshare", "--user")  # uid 65534 in a user namespace, even when run as root


@dataclass(frozen=True)
class Case:
    """One bad input: the command, the exit code, and fragments of its one stderr line.

    *args*, *env* and *fragments* may name the files of the ``inputs`` fixture ({disk}, {tmp}…);
    an env value of None removes the variable.  The fragments of a case that a README row names
    must also be in that row's message, word for word: the README quotes what the tool prints.
    """

    id: str
    args: tuple[str, ...]
    code: int
    fragments: tuple[str, ...]
    command: str = PLUGIN  # PLUGIN: pytest with the plugin; CLI: the debian-cloud-tests command
    env: tuple[tuple[str, str | None], ...] = ()
    prefix: tuple[str, ...] = ()  # a program the command runs under (unshare)
    known_gap: str = ""

    @property
    def gate(self) -> bool:
        return self.command == CLI and self.args[0] == "gate"


def case(id: str, args: tuple[str, ...], code: int, *fragments: str, command: str = PLUGIN,
         env: dict[str, str | None] | None = None, prefix: tuple[str, ...] = (),
         known_gap: str = "") -> Case:
    return Case(id, args, code, fragments, command, tuple((env or {}).items()), prefix, known_gap)


E = errors
CASES: tuple[Case, ...] = (
    case("unknown-provider", ("--provider=nope", "--image=x.qcow2"), E.UnknownProviderError.exit_code,
         "unknown provider 'nope'; installed: aws, azure, "),
    case("no-image", ("--provider=qemu",), E.UsageError.exit_code,
         "--image is required with --provider (a disk image file for a local machine)"),
    case("image-missing", ("--provider=qemu", "--image=/nonexistent/debian.qcow2"),
         E.ImageNotFoundError.exit_code, "image not found: "),
    case("text-image", ("--provider=qemu", "--image={text}"), E.ImageFormatError.exit_code,
         " is not a disk image (neither qcow2 nor raw with an MBR/GPT partition table)"),
    case("vmdk", ("--provider=qemu", "--image={vmdk}"), E.ImageFormatError.exit_code,
         " is a vmdk image; convert it: qemu-img convert -O qcow2 ", " out.qcow2"),
    case("tar-xz", ("--provider=qemu", "--image={tar_xz}"), E.ImageFormatError.exit_code,
         " is xz-compressed; unpack it and give the disk image: tar -xf ",
         " for an archive (Debian's .tar.xz holds disk.raw), else unxz -k "),
    case("directory", ("--provider=qemu", "--image={dir}"), E.ImageFormatError.exit_code,
         " is a directory, not a disk image"),
    case("backing-gone", ("--provider=qemu", "--image={backed}"), E.ImageNotFoundError.exit_code,
         " needs backing file ", ", which is missing"),
    case("backing-file", ("--provider=qemu", "--image={overlay}"), E.ImageFormatError.exit_code,
         " is an overlay on ", ": a candidate image must stand alone; flatten it: "
         "qemu-img convert -O qcow2 "),
    case("arm64-bios", (*QEMU, "--arch=arm64", "--firmware=bios"), E.ArchFirmwareError.exit_code,
         "arm64 machines have no BIOS firmware: use --firmware uefi (or omit --firmware)"),
    case("secure-boot-bios", (*QEMU, "--secure-boot", "--firmware=bios"),
         E.SecureBootUnavailableError.exit_code,
         "--secure-boot needs UEFI firmware: BIOS has no Secure Boot; use --firmware=uefi "
         "(or omit --firmware)"),
    case("secure-boot-no-keys", (*QEMU, "--arch=arm64", "--secure-boot"),
         E.SecureBootUnavailableError.exit_code,
         "--secure-boot on arm64: this host's UEFI firmware has no Secure Boot keys enrolled "
         "(/usr/share/AAVMF/AAVMF_VARS.ms.fd is missing); install a qemu-efi-aarch64 that ships it",
         prefix=AAVMF_WITHOUT_KEYS),
    case("secure-boot-provider", ("--provider=aws", "--image=ami-0123456789abcdef0",
                                  "--region=eu-west-3", "--secure-boot"),
         E.SecureBootUnavailableError.exit_code,
         "--secure-boot with --provider=aws: on EC2 Secure Boot comes with the AMI (registered with "
         "UEFI variables holding the keys, register-image --uefi-data), not with a launch",
         env=AWS_NO_CREDENTIALS),
    case("upgrade-unsigned", (*QEMU, "--upgrade={unsigned_repo}", "--upgrade-key={repo_key}"),
         UnsignedRepositoryError.exit_code, "the repository is not signed (",
         "has no InRelease and no Release.gpg): apt refuses an unsigned repository; sign its Release"),
    case("upgrade-foreign-key", (*QEMU, "--upgrade={signed_repo}", "--upgrade-key={repo_key}"),
         UnsignedRepositoryError.exit_code, "its Release is not signed by --upgrade-key (gpgv: "),
    case("upgrade-no-key", (*QEMU, "--upgrade={signed_repo}"), UnsignedRepositoryError.exit_code,
         "give --upgrade-key, the OpenPGP public key that signs it (an unsigned repository is "
         "refused)"),
    case("upgrade-directory-on-cloud", ("--provider=aws", "--image=ami-0123456789abcdef0",
                                        "--region=eu-west-3", "--upgrade={signed_repo}",
                                        "--upgrade-key={signed_repo_key}"),
         E.UsageError.exit_code, "aws machines cannot reach a directory on this runner: publish the "
         "repository and give --upgrade 'URL SUITE COMPONENT…'", env=AWS_NO_CREDENTIALS),
    case("boot-timeout", (*QEMU, "--boot-timeout=soon"), E.UsageError.exit_code,
         "--boot-timeout 'soon': give seconds"),
    case("instance-type-qemu", (*QEMU, "--instance-type=t3.micro"), E.UsageError.exit_code,
         "--instance-type 't3.micro': for qemu write VCPUSxMEMORY_MIB, e.g. 2x1024"),
    case("datasource-unknown", (*QEMU, "--datasource=digitalocean"), E.UnknownDatasourceError.exit_code,
         "--datasource 'digitalocean': give one of ec2, gce, azure, openstack, configdrive, nocloud"),
    case("datasource-arm64-bios", (*QEMU, "--datasource=ec2", "--arch=arm64", "--firmware=bios"),
         E.DatasourcePlatformError.exit_code,
         "--datasource=ec2: ec2 boots arm64 machines with uefi only, not bios"),
    case("datasource-instance-type", (*QEMU, "--datasource=azure", "--instance-type=3x1000"),
         E.UsageError.exit_code, "--instance-type 3x1000: azure has no amd64 instance type of 3 "
         "vCPUs and 1000 MiB; give one of Standard_B2ats_v2, "),
    case("datasource-gce-not-walled", (*QEMU, "--datasource=gce", "--qemu-network=open"),
         E.UsageError.exit_code, "--datasource=gce with --qemu-network=open: the guest finds its "
         "metadata server by name (metadata.google.internal), which only a walled network's "
         "resolver answers: use --qemu-network=user or isolated"),
    case("user-data-missing", (*QEMU, "--user-data=/nonexistent/user-data"), E.UsageError.exit_code,
         "--user-data ", ": no such file"),
    case("user-data-not-yaml", (*QEMU, "--user-data={ud_yaml}"), E.UsageError.exit_code,
         "--user-data ", ": not valid YAML"),
    case("user-data-not-mapping", (*QEMU, "--user-data={ud_list}"), E.UsageError.exit_code,
         "--user-data ", ": a #cloud-config document must be a mapping"),
    case("user-data-unknown-format", (*QEMU, "--user-data={ud_text}"), E.UsageError.exit_code,
         "--user-data ", ": unrecognised format (expected #cloud-config, a #! script, #include, "
         "#cloud-boothook or a jinja template)"),
    case("disk-size-word", (*QEMU, "--disk-size=lots"), E.UsageError.exit_code,
         "--disk-size 'lots': write e.g. 8G or +1G"),
    case("disk-size-small", (*QEMU, "--disk-size=1M"), E.UsageError.exit_code,
         "--disk-size 1M: smaller than the image (", " bytes)"),
    case("ca-cert-missing", (*QEMU, "--ca-cert=/nonexistent/ca.pem"), E.UsageError.exit_code,
         "--ca-cert ", ": No such file or directory"),
    case("ca-cert-not-pem", (*QEMU, "--ca-cert={ca_text}"), E.UsageError.exit_code,
         "--ca-cert ", ": not a PEM certificate"),
    case("instance-types-gpus", (*QEMU, "--instance-types={it_gpus}"),
         E.InstanceTypeTableError.exit_code,
         ':2: [qemu."2x1024"] gpus = -1: give a whole number of GPUs, 0 or more'),
    case("instance-types-gpus-fraction", (*QEMU, "--instance-types={it_fraction}"),
         E.InstanceTypeTableError.exit_code,
         ':2: [qemu."2x1024"] gpus = 1.5: give a whole number of GPUs, 0 or more'),
    case("instance-types-key", (*QEMU, "--instance-types={it_key}"), E.InstanceTypeTableError.exit_code,
         ':3: [qemu."2x1024"] colour = "red": unknown key \'colour\'; valid keys: gpus, gpu_driver, '
         "gpu_vendor, qemu_device, throughput_floor_mbps"),
    case("instance-types-floor", (*QEMU, "--instance-types={it_floor}"),
         E.InstanceTypeTableError.exit_code,
         ':2: [aws."m5.large"] throughput_floor_mbps = 0: give a positive number of Mbit/s'),
    case("instance-types-driver", (*QEMU, "--instance-types={it_driver}"),
         E.InstanceTypeTableError.exit_code,
         ':3: [qemu."2x1024"] gpu_driver = 3: give a name in quotes, e.g. "nvidia"'),
    case("instance-types-syntax", (*QEMU, "--instance-types={it_syntax}"),
         E.InstanceTypeTableError.exit_code, ":1: invalid TOML: ",
         '; write [PROVIDER."INSTANCE TYPE"] tables of gpus, gpu_driver, gpu_vendor, qemu_device, '
         "throughput_floor_mbps"),
    case("instance-types-missing", (*QEMU, "--instance-types={tmp}/nope.toml"),
         E.InstanceTypeTableError.exit_code, "--instance-types ", ": No such file or directory"),
    case("qemu-missing", QEMU, E.MissingDependencyError.exit_code,
         "qemu-system-x86_64 not found: apt-get install qemu-system-x86 qemu-utils",
         env={"PATH": "{empty_bin}"}),
    case("slirp4netns-missing", QEMU, E.MissingDependencyError.exit_code,
         "qemu: walling the guest off this host needs slirp4netns: apt-get install slirp4netns "
         "(or give --qemu-network=open", env={"PATH": "{no_wall_bin}"}),
    case("ssh-missing-key", (*SSH, "--host=debian@127.0.0.1:2222", "--ssh-key={tmp}/missing",
                             "--host-key={known_hosts}"), E.UsageError.exit_code,
         "--ssh-key ", ": no such file"),
    case("ssh-bad-host", (*SSH, "--host=a@b@c", "--ssh-key={key}", "--host-key={known_hosts}"),
         E.UsageError.exit_code, "--host 'a@b@c': give USER@ADDRESS[:PORT], e.g. debian@192.0.2.10:22"),
    case("ssh-not-in-known-hosts", (*SSH, "--host=debian@127.0.0.1:2222", "--ssh-key={key}",
                                    "--host-key={known_hosts}"), E.UsageError.exit_code,
         "--host-key ", ": no key for [", " in it; add one with ssh-keyscan -p ",
         " (and check it out of band)"),
    case("aws-no-credentials", ("--provider=aws", "--image=ami-0123456789abcdef0", "--region=eu-west-3"),
         E.UsageError.exit_code, "aws: no credentials found; set AWS_ACCESS_KEY_ID and "
         "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials), or AWS_PROFILE",
         env=AWS_NO_CREDENTIALS),
    case("providers-require-aws", ("providers", "--require", "aws"), E.UsageError.exit_code,
         "aws: no credentials found; set AWS_ACCESS_KEY_ID", command=CLI, env=AWS_NO_CREDENTIALS),
    case("gce-no-credentials", ("--provider=gce", "--image=projects/debian-cloud/global/images/family/"
                                "debian-12", "--zone=europe-west1-b"), E.UsageError.exit_code,
         "gce: no usable credentials found; set GOOGLE_APPLICATION_CREDENTIALS to a service account "
         "key file, or run ",
         env={"HOME": "{tmp}", "GOOGLE_APPLICATION_CREDENTIALS": None, "CLOUDSDK_CONFIG": "{tmp}/gcloud",
              "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
              "NO_GCE_CHECK": "True", "GOOGLE_CLOUD_PROJECT": "dct-test"}),
    # as a user without any AZURE_* setting has it; the IMDS is pointed at nothing, not the network
    case("azure-no-credentials", ("--provider=azure", "--image=Debian:debian-12:12-gen2:latest",
                                  "--region=westeurope"), E.UsageError.exit_code,
         "azure: no usable credentials found; set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
         "AZURE_CLIENT_SECRET (a service principal), or run ",
         env={"HOME": "{tmp}", "AZURE_CONFIG_DIR": "{tmp}/az",
              "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
              "AZURE_CLIENT_ID": None, "AZURE_TENANT_ID": None, "AZURE_CLIENT_SECRET": None,
              "IDENTITY_ENDPOINT": None, "MSI_ENDPOINT": None, "IMDS_ENDPOINT": "http://127.0.0.1:9",
              "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"},
         known_gap="providers/azure/session.py lets azure-identity log its multi-line "
         "DefaultAzureCredential warning on stderr when no AZURE_* variable is set"),
    case("openstack-no-cloud", ("--provider=openstack", "--image=debian-12-genericcloud-amd64"),
         E.UsageError.exit_code, "openstack: no cloud configured (",
         "); set OS_CLOUD (or --os-cloud) to a cloud in clouds.yaml (", env=OPENSTACK_NOTHING),
    case("openstack-unknown-cloud", ("--provider=openstack", "--image=debian-12-genericcloud-amd64",
                                     "--os-cloud=nowhere"), E.UsageError.exit_code,
         "openstack: Cloud ", " was not found; set OS_CLOUD (or --os-cloud) to a cloud in clouds.yaml",
         env=OPENSTACK_NOTHING),
    case("vagrant-missing", ("--provider=vagrant", "--image=debian/bookworm64"),
         E.MissingDependencyError.exit_code,
         "vagrant: the vagrant program is not installed (apt-get install vagrant vagrant-libvirt)",
         env={"PATH": "{empty_bin}"}),
    case("vagrant-box-missing", ("--provider=vagrant", "--image=/nonexistent/debian.box"),
         E.ImageNotFoundError.exit_code, "vagrant: box file not found: "),
    case("vagrant-not-a-box", ("--provider=vagrant", "--image={text}"), E.ImageFormatError.exit_code,
         "vagrant: ", " is not a box: not a tar archive, plain or compressed"),
    case("vagrant-virtualbox-box", ("--provider=vagrant", "--image={virtualbox_box}"),
         E.ImageFormatError.exit_code, "vagrant: ", " is a box for virtualbox, not libvirt"),
    case("vagrant-instance-type", ("--provider=vagrant", "--image=debian/bookworm64",
                                   "--instance-type=t3.micro"), E.UsageError.exit_code,
         "for vagrant write VCPUSxMEMORY_MIB"),
    case("xdist", ("--provider=qemu", "--image={text}", "-n", "2"), E.UsageError.exit_code,
         "-n 2 (pytest-xdist) splits one run's checks between workers: to test several machines "
         "at once use `debian-cloud-tests run --instances N` (or --target for several images)"),
    case("run-no-image", ("run",), E.UsageError.exit_code,
         "give --image (with --provider, default qemu), or one or more --target PROVIDER:IMAGE",
         command=CLI),
    case("run-bad-target", ("run", "--target=qemu"), E.UsageError.exit_code,
         "--target 'qemu': give PROVIDER:IMAGE [OPTION…], e.g. qemu:debian-12.qcow2", command=CLI),
    case("run-instances-zero", ("run", "--image={text}", "--instances=0"), E.UsageError.exit_code,
         "--instances 0: give 1 or more", command=CLI),
    case("run-instances-ssh", ("run", "--provider=ssh", "--image=x", "--instances=2"),
         E.UsageError.exit_code, "--instances 2 with the ssh provider: it tests the one host it is "
         "given; launch the others yourself and give each as its own --target", command=CLI),
    case("gate-truncated", ("gate", "{junit}", "{junit_truncated}"), 2,
         ":1: malformed or truncated XML (", "); re-run the tests or fetch the complete report",
         command=CLI),
    case("gate-empty", ("gate", "{junit}", "{junit_empty}"), 2,
         ": the file is empty; re-run the tests or fetch the complete report", command=CLI),
    case("gate-not-junit", ("gate", "{junit}", "{junit_html}"), 2,
         ": not JUnit XML: the root element is <html>; pass the file written by pytest --junitxml",
         command=CLI),
    case("gate-twice", ("gate", "{junit}", "{junit}"), 2,
         ": given twice (also as ", "); pass each JUnit file once", command=CLI),
    case("gate-counts", ("gate", "{junit}", "{junit_counts}"), 2,
         ": <testsuite 'pytest'> says tests=3 but 2 test cases in the file; re-run the tests or fetch "
         "the complete report", command=CLI),
    case("gate-stray-result", ("gate", "{junit}", "{junit_stray}"), 2,
         ": a <failure> outside any <testcase>: a result the gate cannot attribute to a check; pass "
         "JUnit whose results stand in <testcase> elements", command=CLI),
    case("gate-policy-key", ("gate", "{junit}", "--policy", "{policy_key}"), 2,
         ":3: unknown key 'maximum' in [flaky]; did you mean 'max'? valid keys: allowed, max",
         command=CLI),
    case("gate-policy-date", ("gate", "{junit}", "--policy", "{policy_date}"), 2,
         ":4: invalid date 2026-13-01 (month must be in 1..12); write a real calendar date",
         command=CLI),
    case("gate-policy-regex", ("gate", "{junit}", "--policy", "{policy_regex}"), 2,
         ":2: 'id' in [[deny]] #1: invalid regular expression 'bvt.(x' (",
         "); fix the expression, or use match = \"glob\" for shell-style * and ?", command=CLI),
    case("gate-policy-missing", ("gate", "{junit}", "--policy", "{tmp}/nope.toml"), 2,
         ": no such policy file; check the --policy path", command=CLI),
    case("build-release", ("build", "--release", "buster", "--vendor", "genericcloud", "--output",
                           "{tmp}/out"), 20, "unknown release 'buster'; choose one of bookworm, trixie",
         command=CLI),
    case("build-vendor", ("build", "--release", "bookworm", "--vendor", "openstack", "--output",
                          "{tmp}/out"), 20, "unknown vendor 'openstack'; choose one of ", command=CLI),
    case("build-arch", (*BUILD, "--arch", "i386"), 20, "unknown arch 'i386'; choose one of ",
         command=CLI),
    case("pipeline-vendors", ("pipeline", "--release", "bookworm", "--vendor", "ec2,nope", "--output",
                              "{tmp}/out"), 20, "unknown vendor 'nope'; choose one of ", command=CLI),
    case("pipeline-vagrant", ("pipeline", "--release", "bookworm", "--vendor", "vagrant", "--output",
                              "{tmp}/out"), 20, "pipeline tests under QEMU: build the vagrant box with "
         "`build --vendor vagrant` and test it with pytest --provider=vagrant --image=BOX", command=CLI),
    case("pipeline-publish-cloud", ("pipeline", "--release", "bookworm", "--vendor", "genericcloud",
                                    "--publish-cloud", "aws", "--publish-region", "eu-west-1",
                                    "--output", "{tmp}/out"), 20,
         "--publish-cloud aws publishes the ec2 image, which this pipeline does not build "
         "(--vendor genericcloud)", command=CLI),
    case("build-vagrant-raw", (*BUILD[:4], "vagrant", *BUILD[5:], "--format", "raw"), 20,
         "a vagrant box holds a qcow2 image: drop --format raw", command=CLI),
    case("pipeline-jobs", ("pipeline", "--release", "bookworm", "--vendor", "all", "--jobs", "0",
                           "--output", "{tmp}/out"), 20, "--jobs 0: give 1 or more", command=CLI),
    case("build-not-root", BUILD, 41, "building images needs root: fai-diskimage sets up a loop "
         "device and mounts it (run with sudo)", command=CLI, prefix=NOT_ROOT),
    case("build-fai-missing", BUILD, 25, "building images with FAI needs: apt-get install ",
         " fai-server fai-setup-storage ", command=CLI, env={"PATH": "{empty_bin}"}, prefix=AS_ROOT),
    case("build-no-space", (*BUILD, "--size", "{too_big}"), 42, "not enough space in ",
         " GiB free, a ", " qcow2 image needs ", command=CLI, env={"PATH": "{stub_bin}"},
         prefix=AS_ROOT),
    case("build-class-missing", (*BUILD, "--class", "NO_SUCH_CLASS"), 43, "config space ",
         " does not define class(es) NO_SUCH_CLASS (no class/*.var, package_config, scripts, "
         "disk_config, hooks, debconf or files entry)", command=CLI, env={"PATH": "{stub_bin}"},
         prefix=AS_ROOT),
    case("build-needs-vm", (*BUILD[:-2], "--output", "{tmp}/out", "--arch", "{other_arch}"), 44,
         " image is built in an ", " machine: add --in-vm (this host is ", command=CLI),
    case("build-in-vm-unavailable", ("build", "--release", "bookworm", "--vendor", "generic", "--arch",
                                     "arm64", "--in-vm", "--output", "{tmp}/out"), 45,
         "--in-vm cannot start an arm64 builder VM here: qemu-system-aarch64 not found: "
         "apt-get install qemu-system-arm qemu-utils", command=CLI, env={"PATH": "{stub_bin}"}),
)
CASE_BY_ID = {c.id: c for c in CASES}


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    """The files the cases name: bad images, user-data, keys, JUnit reports, policies, PATHs."""
    def put(name: str, data: str | bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    key, host = sshkeys.generate("client"), sshkeys.generate("host")
    (tmp_path / "junit").mkdir()
    found: dict[str, str] = {
        "tmp": str(tmp_path), "disk": str(mbr_disk(tmp_path / "disk.raw")),
        "text": put("notes.qcow2", "not an image\n" * 100), "vmdk": put("disk.vmdk", b"KDMV" + b"\0" * 2000),
        "tar_xz": str(_tar_xz(mbr_disk(tmp_path / "tarred-disk.raw", 1024 * 1024),
                              tmp_path / "debian-13-nocloud-amd64.tar.xz")),
        "ud_yaml": put("ud.yaml", "#cloud-config\n: : bad: [\n"),
        "ud_list": put("ud-list.yaml", "#cloud-config\n- a list\n"),
        "ud_text": put("ud.txt", "just some text\n"), "ca_text": put("ca.txt", "hello\n"),
        "it_gpus": put("it-gpus.toml", '[qemu."2x1024"]\ngpus = -1\n'),
        "it_fraction": put("it-fraction.toml", '[qemu."2x1024"]\ngpus = 1.5\n'),
        "it_key": put("it-key.toml", '[qemu."2x1024"]\ngpus = 1\ncolour = "red"\n'),
        "it_floor": put("it-floor.toml", '[aws."m5.large"]\nthroughput_floor_mbps = 0\n'),
        "it_driver": put("it-driver.toml", '[qemu."2x1024"]\ngpus = 1\ngpu_driver = 3\n'),
        "it_syntax": put("it-syntax.toml", '[qemu."2x1024"\ngpus = 1\n'),
        "key": str(sshkeys.write_private(key, tmp_path / "id_ed25519")),
        # a known_hosts file that knows another host only
        "known_hosts": put("known_hosts", "192.0.2.1 " + " ".join(host.public_openssh.split()[:2]) + "\n"),
        "virtualbox_box": _box_for(tmp_path / "vb.box", "virtualbox"),
        "junit": str(passing(tmp_path / "junit")), "junit_empty": put("empty.xml", ""),
        "junit_truncated": put("truncated.xml", "<testsuites><testsuite>"),
        "junit_html": put("page.xml", "<html/>"),
        "junit_counts": put("counts.xml", '<testsuites><testsuite name="pytest" tests="3">'
                            '<testcase name="a"/><testcase name="b"/></testsuite></testsuites>'),
        "junit_stray": put("stray.xml", '<testsuites><testsuite name="pytest"><group><failure '
                           'message="x"/></group><testcase name="a"/></testsuite></testsuites>'),
        "policy_key": str(write_policy(tmp_path, "[flaky]\nallowed = true\nmaximum = 3\n", "key.toml")),
        "policy_date": str(write_policy(tmp_path, "[[deny]]\nid = 'a'\ntracker = 'https://x'\n"
                                                  "expires = 2026-13-01\n", "date.toml")),
        "policy_regex": str(write_policy(tmp_path, "[[deny]]\nid = 'bvt.(x'\nmatch = 'regex'\n"
                                                   "tracker = 'https://x'\n", "regex.toml")),
        "too_big": f"{shutil.disk_usage(tmp_path).free // 1024**3 + 1}G",
        "other_arch": (Arch.ARM64 if Arch.host() is Arch.AMD64 else Arch.AMD64).value,
    }
    (tmp_path / "dir").mkdir()
    found["dir"] = str(tmp_path / "dir")
    found.update(_upgrade_repositories(tmp_path))
    for name in ("empty_bin", "stub_bin"):
        (tmp_path / name).mkdir()
        found[name] = str(tmp_path / name)
    (tmp_path / "no_wall_bin").mkdir()  # everything a qemu run needs but slirp4netns
    found["no_wall_bin"] = str(tmp_path / "no_wall_bin")
    for program in ("qemu-system-x86_64", "qemu-img", "unshare", "ip", "mount", "umount"):
        if shutil.which(program):
            (tmp_path / "no_wall_bin" / program).symlink_to(shutil.which(program))
    for program in REQUIRED_PROGRAMS:  # found by `which`, and failing should anything run them
        stub = tmp_path / "stub_bin" / program
        stub.write_text("#!/bin/sh\nexit 1\n")
        stub.chmod(0o755)
    if shutil.which("qemu-img"):
        base, top = mbr_disk(tmp_path / "base.raw", 1024 * 1024), tmp_path / "top.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(top)],
                       check=True)
        base.unlink()
        found["backed"] = str(top)
        host_file, overlay = tmp_path / "host-secret.txt", tmp_path / "overlay.qcow2"
        host_file.write_text("a host file no guest may read\n" * 64)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(host_file),
                        str(overlay), "1M"], check=True)
        found["overlay"] = str(overlay)
    return found


def _upgrade_repositories(tmp_path: Path) -> dict[str, str]:
    """An unsigned repository, one signed by a key of its own (where gpg can make one), and a
    key that signed neither."""
    found = {"repo_key": str(tmp_path / "other-key.gpg")}
    (tmp_path / "other-key.gpg").write_bytes(b"\x99\x00\x0d\x04" + bytes(13))
    for name in ("unsigned_repo", "signed_repo"):
        (tmp_path / name / "pool").mkdir(parents=True)
        write_index(tmp_path / name, "amd64")
        found[name] = str(tmp_path / name)
    if shutil.which("gpg"):
        key = tmp_path / "signed-repo-key.asc"
        key.write_text(sign_release(tmp_path / "signed_repo" / "dists" / SUITE, tmp_path / "gnupg",
                                    signed=True))
        found["signed_repo_key"] = str(key)
    else:
        del found["signed_repo"]
    return found


def _fill(text: str, inputs: dict[str, str]) -> str:
    try:
        return text.format(**inputs)
    except KeyError as exc:
        pytest.skip(f"cannot make the input {exc} here")


def run_command(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                prefix: tuple[str, ...] = (), timeout: float = 120) -> SuiteRun:
    """The debian-cloud-tests command in a subprocess, as a user runs it."""
    cmd = [*prefix, sys.executable, "-m", "debian_cloud_tests.cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env={**os.environ, **(env or {})})
    return SuiteRun(proc.returncode, proc.stdout, proc.stderr, workdir=tmp_path)


def _prefix(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """*wanted* with its program made absolute (the case may empty PATH), or a skip."""
    if not wanted:
        return ()
    program = shutil.which(wanted[0])
    if program is None or subprocess.run([program, *wanted[1:], "true"], capture_output=True).returncode:
        pytest.skip(f"{' '.join(wanted)} does not work here")
    return (program, *wanted[1:])


@pytest.mark.parametrize("bad", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input_row(bad: Case, tmp_path: Path, tmpdir_env: tuple[Path, dict[str, str]],
                       inputs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The real command on the bad input: its code, one stderr line, no traceback, nothing left."""
    tmpdir, env = tmpdir_env
    env = dict(env)
    args = [_fill(a, inputs) for a in bad.args]
    prefix = _prefix(bad.prefix)
    for name, value in bad.env:  # set for the command only: this process keeps its PATH
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            env[name] = _fill(value, inputs)
    if bad.command == PLUGIN:
        run = run_suites(tmp_path, *args, env=env, timeout=120, prefix=prefix)
    else:
        run = run_command(tmp_path, *args, env=env, prefix=prefix)
    _assert_one_line_error(run, bad.code, *bad.fragments, prefix=GATE_PREFIX if bad.gate else PREFIX,
                           known_gap=bad.known_gap)
    assert not _leftovers(tmpdir)
    if (tmp_path / "out").exists():  # a build stops before it writes anything
        assert not list((tmp_path / "out").iterdir())


# --- bad input that needs more than a command line ------------------------------------------------

def _ini_run(tmp_path: Path, env: dict[str, str], line: str, image: str = "d.raw") -> SuiteRun:
    """The plugin run from a pytest.ini naming qemu, a disk that never boots, and *line*."""
    (tmp_path / "pytest.ini").write_text(f"[pytest]\ndct_provider = qemu\n"
                                         f"dct_image = {mbr_disk(tmp_path / image)}\n{line}\n")
    return run_suites(tmp_path, env=env, timeout=120)


def test_bad_ini_value(tmp_path: Path, tmpdir_env) -> None:
    _, env = tmpdir_env
    run = _ini_run(tmp_path, env, "dct_accel = fast")
    _assert_one_line_error(run, errors.UsageError.exit_code,
                           "ini option dct_accel = 'fast': choose from auto, kvm, tcg")


def test_bad_secure_boot_ini_value(tmp_path: Path, tmpdir_env) -> None:
    _, env = tmpdir_env
    run = _ini_run(tmp_path, env, "dct_secure_boot = maybe")
    _assert_one_line_error(run, errors.UsageError.exit_code,
                           "ini option dct_secure_boot = 'maybe': write yes or no")


def test_ini_datasource_contradicting_the_image_type(tmp_path: Path, tmpdir_env) -> None:
    """A vendor image runs against another cloud's datasource only when the command line says so."""
    _, env = tmpdir_env
    run = _ini_run(tmp_path, env, "dct_datasource = gce", image="debian-12-ec2-amd64.raw")
    _assert_one_line_error(run, errors.DatasourceContradictionError.exit_code,
                           "the image is a ec2 image but the ini file's datasource is gce: give "
                           "--datasource=gce on the command line to run it against another cloud, "
                           "or correct --image-type")


@pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-x86_64"), reason="needs QEMU")
def test_no_free_port(tmp_path: Path, tmpdir_env) -> None:
    tmpdir, env = tmpdir_env
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_suites(tmp_path, "--provider=qemu", f"--image={mbr_disk(tmp_path / 'd.raw')}",
                         f"--qemu-port-range={port}-{port}", env=env, timeout=120,
                         walled=False)  # the taken port is in this namespace
    assert not _leftovers(tmpdir)
    _assert_one_line_error(run, errors.NoFreePortError.exit_code, f"no free TCP port in {port}-{port} on ",
                           " for SSH forwarding")


def test_nonexistent_ami(aws: AwsWorld, tmp_path: Path) -> None:
    """Through moto, as the plugin would reach EC2: the AMI is looked up before anything exists."""
    run = run_suites(tmp_path, "--provider=aws", "--image=ami-0123456789abcdef0",
                     f"--region={aws.region}", timeout=120)
    _assert_one_line_error(run, errors.ImageNotFoundError.exit_code,
                           f"--image ami-0123456789abcdef0: no such AMI in {aws.region} ",
                           "(or not shared with this account); AMIs are per region: check --region")
    from .fakes.moto_ec2 import leftovers

    assert leftovers(aws.moto) == {}


def test_ssh_host_key_mismatch(sshd: Sshd, tmp_path: Path) -> None:
    """A real sshd whose key is not the one given: refused, exit 34, and nothing sent."""
    from debian_cloud_tests.plugin import suites_dir

    wrong = " ".join(sshkeys.generate("other").public_openssh.split()[:2])
    run = run_suites(tmp_path, "--provider=ssh", "--image=debian-12-genericcloud-amd64",
                     f"--host=root@127.0.0.1:{sshd.port}", f"--ssh-key={sshd.client_key}",
                     f"--host-key={wrong}", "--boot-timeout=20",
                     select=f"{suites_dir()}/metadata/test_metadata.py::test_arch_matches", timeout=120)
    _assert_one_line_error(run, errors.HostKeyMismatchError.exit_code,
                           f"host key mismatch for [127.0.0.1]:{sshd.port}: the server presented ",
                           " which the guest did not announce on its console; refusing to connect ",)


@pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-x86_64"), reason="needs QEMU")
def test_image_that_never_boots_quotes_the_console(tmp_path: Path, tmpdir_env) -> None:
    """Boots QEMU on a disk with no boot loader for 15 s."""
    tmpdir, env = tmpdir_env
    run = run_suites(tmp_path, "--provider=qemu", f"--image={mbr_disk(tmp_path / 'd.raw')}",
                     "--boot-timeout=15", env=env, timeout=180)
    _assert_one_line_error(run, errors.BootError.exit_code, "no SSH host keys on the console within 15s",
                           one_line=False)
    assert run.checks and all(s == "error" for s in run.checks.values()), run.checks
    assert not _leftovers(tmpdir)


@pytest.mark.matrix  # a boot that waits out a failure: the full matrix
@pytest.mark.cost(260)
@pytest.mark.e2e
def test_sshd_never_answering(image_factory, tmp_path: Path, tmpdir_env) -> None:
    tmpdir, env = tmpdir_env
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image_factory('sshd-masked')}",
                     "--boot-timeout=180", env=env, timeout=400)
    _assert_one_line_error(run, errors.SSHNotReadyError.exit_code, "sshd never completed a handshake",
                           one_line=False)
    assert not _leftovers(tmpdir)


@pytest.mark.matrix  # a boot that waits out a failure: the full matrix
@pytest.mark.cost(300)
@pytest.mark.e2e
def test_reboot_loop_is_named(image_factory, tmp_path: Path, tmpdir_env) -> None:
    """A guest that restarts at every boot is told apart from a slow one: the third kernel
    start ends the wait, long before the boot timeout."""
    tmpdir, env = tmpdir_env
    started = time.monotonic()
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image_factory('reboot-loop')}",
                     "--boot-timeout=500", env=env, timeout=700)
    _assert_one_line_error(run, errors.BootError.exit_code, "times while booting and never became "
                           "ready", "a reboot loop", one_line=False)
    assert time.monotonic() - started < 400, "the loop was only noticed at the boot timeout"
    assert not _leftovers(tmpdir)


@pytest.mark.matrix  # a boot that waits out a failure: the full matrix
@pytest.mark.cost(160)
@pytest.mark.e2e
def test_silent_console_names_the_way_out(image_factory, tmp_path: Path, tmpdir_env) -> None:
    """A guest whose console prints nothing once the kernel starts (no serial console on its
    command line) cannot announce host keys: the run says so, and how to test it anyway."""
    tmpdir, env = tmpdir_env
    run = run_suites(tmp_path, "--provider=qemu", f"--image={image_factory('no-serial-console')}",
                     "--boot-timeout=90", env=env, timeout=300)
    _assert_one_line_error(run, errors.BootError.exit_code, "no SSH host keys on the console within 90s",
                           "use --host-key-source=injected", one_line=False)
    assert not _leftovers(tmpdir)


# --- README.md's table and this module agree ------------------------------------------------------

def _row(id: str) -> str:
    return f"test_bad_input.py::test_bad_input_row[{id}]"


#: README row (its input cell) -> the tests that run it; a row needing a VM names its VM test
README_ROWS: dict[str, tuple[str, ...]] = {
    "`--provider=nope`": (_row("unknown-provider"),),
    "`--provider` without `--image`": (_row("no-image"),),
    "image that does not exist": (_row("image-missing"),),
    "a text file as image": (_row("text-image"),),
    "a vmdk image": (_row("vmdk"),),
    "Debian's `.tar.xz` as image": (_row("tar-xz"),),
    "a directory as image": (_row("directory"),),
    "qcow2 whose backing file is gone": (_row("backing-gone"),),
    "qcow2 on a backing file (any host file)": (_row("backing-file"),),
    "`--arch arm64 --firmware bios`": (_row("arm64-bios"),),
    "`--upgrade DIR` whose Release is not signed": (_row("upgrade-unsigned"),),
    "`--upgrade DIR` signed by another key than `--upgrade-key`": (_row("upgrade-foreign-key"),),
    "`--upgrade DIR` without `--upgrade-key`": (_row("upgrade-no-key"),),
    "`--upgrade DIR` on a cloud provider": (_row("upgrade-directory-on-cloud"),),
    "`--secure-boot --firmware=bios`": (_row("secure-boot-bios"),),
    "`--secure-boot --arch=arm64` where AAVMF has no keys enrolled": (_row("secure-boot-no-keys"),),
    "`--secure-boot` on a provider that cannot enforce it": (_row("secure-boot-provider"),),
    "ini `dct_secure_boot = maybe`": ("test_bad_input.py::test_bad_secure_boot_ini_value",),
    "an image whose boot loader is not signed, with `--secure-boot` (VM)": (
        "test_secure_boot_e2e.py::test_unsigned_boot_loader_is_refused_by_the_firmware",),
    "`--boot-timeout=soon`": (_row("boot-timeout"),),
    "`--instance-type=t3.micro` on qemu": (_row("instance-type-qemu"),),
    "`--datasource=digitalocean`": (_row("datasource-unknown"),),
    "`--datasource=ec2 --arch=arm64 --firmware=bios`": (_row("datasource-arm64-bios"),),
    "`--datasource=azure --instance-type=3x1000`": (_row("datasource-instance-type"),),
    "`--datasource=gce --qemu-network=open`": (_row("datasource-gce-not-walled"),),
    "ini `dct_datasource = gce` for an ec2 image": (
        "test_bad_input.py::test_ini_datasource_contradicting_the_image_type",),
    "`--user-data` that does not exist": (_row("user-data-missing"),),
    "user-data that is not YAML": (_row("user-data-not-yaml"),),
    "`#cloud-config` user-data that is not a mapping": (_row("user-data-not-mapping"),),
    "user-data in an unknown format": (_row("user-data-unknown-format"),),
    "`--disk-size=lots`": (_row("disk-size-word"),),
    "`--disk-size` smaller than the image": (_row("disk-size-small"),),
    "`--ca-cert` that does not exist": (_row("ca-cert-missing"),),
    "`--ca-cert` that is not PEM": (_row("ca-cert-not-pem"),),
    "instance-type table: GPU count negative or not a whole number":
        (_row("instance-types-gpus"), _row("instance-types-gpus-fraction")),
    "instance-type table: unknown key": (_row("instance-types-key"),),
    "instance-type table: throughput floor not a positive number": (_row("instance-types-floor"),),
    "instance-type table: GPU driver not a string": (_row("instance-types-driver"),),
    "instance-type table: not TOML": (_row("instance-types-syntax"),),
    "`--instance-types` that does not exist": (_row("instance-types-missing"),),
    "ini `dct_accel = fast`": ("test_bad_input.py::test_bad_ini_value",),
    "QEMU not installed": (_row("qemu-missing"),),
    "slirp4netns not installed (the default `--qemu-network=user`)": (_row("slirp4netns-missing"),),
    "no free port in `--qemu-port-range`": ("test_bad_input.py::test_no_free_port",),
    "an image that never boots (VM)": ("test_bad_input.py::test_image_that_never_boots_quotes_the_console",),
    "sshd that never starts (VM)": ("test_bad_input.py::test_sshd_never_answering",),
    "a guest that restarts at every boot (VM)": ("test_bad_input.py::test_reboot_loop_is_named",),
    "a console that prints nothing once the kernel starts (VM)":
        ("test_bad_input.py::test_silent_console_names_the_way_out",),
    "a host key that changes between connections (VM)":
        ("test_e2e_qemu.py::test_planted_defects_fail_exactly_their_checks",),
    "ssh provider: a host key other than `--host-key`": ("test_bad_input.py::test_ssh_host_key_mismatch",),
    "ssh provider: missing key file": (_row("ssh-missing-key"),),
    "ssh provider: bad `--host`": (_row("ssh-bad-host"),),
    "ssh provider: host not in the known_hosts file": (_row("ssh-not-in-known-hosts"),),
    "`pytest --provider=… -n 2`": (_row("xdist"),),
    "`run` without `--image` or `--target`": (_row("run-no-image"),),
    "`run --target qemu` (no image)": (_row("run-bad-target"),),
    "`run --instances 0`": (_row("run-instances-zero"),),
    "`run --provider ssh --instances 2`": (_row("run-instances-ssh"),),
    "aws: no credentials (also `providers --require aws`)": (_row("aws-no-credentials"),
                                                             _row("providers-require-aws")),
    "gce: no credentials": (_row("gce-no-credentials"),),
    "azure: no credentials": (_row("azure-no-credentials"),),
    "openstack: no cloud configured": (_row("openstack-no-cloud"),),
    "openstack: unknown `--os-cloud`": (_row("openstack-unknown-cloud"),),
    "openstack: credentials refused":
        ("test_provider_openstack.py::test_refused_credentials_are_one_line_without_the_secret",),
    "nonexistent AMI": ("test_bad_input.py::test_nonexistent_ami",),
    "vagrant: no `vagrant`": (_row("vagrant-missing"),),
    "vagrant: no vagrant-libvirt plugin":
        ("test_provider_vagrant.py::test_plugin_missing_names_the_package",),
    "vagrant: libvirtd not running": ("test_provider_vagrant.py::test_libvirtd_not_running",),
    "vagrant: unknown box name": ("test_provider_vagrant.py::test_unknown_box_name",),
    "vagrant: `.box` file missing": (_row("vagrant-box-missing"),),
    "vagrant: a file that is not a box": (_row("vagrant-not-a-box"),),
    "vagrant: a box for another provider": (_row("vagrant-virtualbox-box"),),
    "gate: malformed or truncated JUnit": (_row("gate-truncated"),),
    "gate: empty JUnit file": (_row("gate-empty"),),
    "gate: XML that is not JUnit": (_row("gate-not-junit"),),
    "gate: a JUnit file given twice": (_row("gate-twice"),),
    "gate: JUnit counts that disagree with its test cases": (_row("gate-counts"),),
    "gate: a result outside any test case": (_row("gate-stray-result"),),
    "gate: unknown policy key": (_row("gate-policy-key"),),
    "gate: bad date in the policy": (_row("gate-policy-date"),),
    "gate: bad regex in the policy": (_row("gate-policy-regex"),),
    "gate: policy file that does not exist": (_row("gate-policy-missing"),),
    "pipeline: `--vendor ec2,nope`, `--jobs 0`": (_row("pipeline-vendors"), _row("pipeline-jobs")),
    "pipeline: `--vendor vagrant`": (_row("pipeline-vagrant"),),
    "pipeline: `--publish-cloud aws` without the ec2 image": (_row("pipeline-publish-cloud"),),
    "`--provider=aws --image=debian-13-arm64` where the region has none": (
        "test_locator.py::test_an_alias_naming_nothing_is_one_line_and_exit_57",),
    "publish: `--cloud aws --region xx-nowhere-1`": (
        "test_publication_aws.py::test_an_unknown_region_is_one_line_and_nothing_is_made",),
    "publish: credentials that may not register images": (
        "test_publication_aws.py::test_no_permission_to_register_is_one_line_and_nothing_is_left",),
    "publish: an image larger than the target takes": (
        "test_publication_aws.py::test_an_image_too_large_for_a_snapshot_is_refused_before_any_upload",),
    "publish: `--cloud gce` without its bucket": (
        "test_publication_gce.py::test_a_missing_bucket_is_one_line",),
    "publish: `--cloud azure` with a container that does not exist": (
        "test_publication_azure.py::test_a_missing_container_is_one_line_and_nothing_is_left",),
    "publish: `--state` of another image": (
        "test_publication_aws.py::test_a_state_file_of_another_image_is_refused",),
    "build: `--vendor vagrant --format raw`": (_row("build-vagrant-raw"),),
    "build: unknown release, vendor or arch": (_row("build-release"), _row("build-vendor"),
                                               _row("build-arch")),
    "build: not root": (_row("build-not-root"),),
    "build: FAI or a tool missing": (_row("build-fai-missing"),),
    "build: not enough space in `--output`": (_row("build-no-space"),),
    "build: a class the config space lacks": (_row("build-class-missing"),),
    "build: another arch, or UEFI without vfat, natively": (_row("build-needs-vm"),),
    "build: `--in-vm` without QEMU for the arch": (_row("build-in-vm-unavailable"),),
}


@dataclass(frozen=True)
class Row:
    input: str
    message: str  # without its code-span backticks
    code: int
    test_file: str  # "same" resolved to the row above's


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def readme_rows() -> list[Row]:
    """The rows of README.md's bad-input table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Bad input, and what it gets", 1)[1]
    lines = [ln for ln in section.split("\n\n", 2)[1].splitlines() if ln.startswith("|")]
    assert _cells(lines[0]) == ["input", "message", "code", "test"], lines[0]
    rows: list[Row] = []
    for line in lines[2:]:
        cells = _cells(line)
        assert len(cells) == 4, f"README row with {len(cells)} cells: {line}"
        where, message, code, test = cells
        message = re.sub(r"``\s?(.*?)\s?``|`([^`]*)`", lambda m: m.group(1) or m.group(2) or "", message)
        files = re.findall(r"`tests/([^`]+)`", test)
        test_file = files[0] if files else rows[-1].test_file if test == "same" and rows else test
        rows.append(Row(where, message, int(code), test_file))
    return rows


def _functions(file: str) -> set[str]:
    tree = ast.parse((TESTS / file).read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def _exit_codes() -> set[int]:
    text = (ROOT / "README.md").read_text().split("## Exit codes", 1)[1].split("###", 1)[0]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", text, re.M)}


def test_every_readme_row_has_a_test() -> None:
    rows = readme_rows()
    inputs = [r.input for r in rows]
    assert len(inputs) == len(set(inputs)), "two README rows with the same input"
    assert set(inputs) - set(README_ROWS) == set(), "README rows without a test in README_ROWS"
    assert set(README_ROWS) - set(inputs) == set(), "README_ROWS names rows the README lacks"
    documented = _exit_codes()
    for row in rows:
        assert row.code in documented, f"{row.input}: code {row.code} missing from the exit-code table"
        for test_id in README_ROWS[row.input]:
            file, _, name = test_id.partition("::")
            function, _, param = name.partition("[")
            assert (TESTS / file).is_file(), test_id
            assert function in _functions(file), f"{row.input}: no test {test_id}"
            assert file == row.test_file, f"{row.input}: the README names {row.test_file}, not {file}"
            if not param:
                continue
            bad = CASE_BY_ID.get(param.rstrip("]"))
            assert bad is not None, f"{row.input}: no case {param}"
            assert bad.code == row.code, f"{row.input}: README says {row.code}, the case {bad.code}"
            for fragment in bad.fragments:  # the README quotes the tool's words
                assert fragment.strip() in row.message, f"{row.input}: {fragment.strip()!r} not in README"


def test_exit_code_table_has_the_build_codes() -> None:
    from debian_cloud_tests.faibuild import errors as build_errors

    codes = {cls.exit_code for cls in vars(build_errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.DCTError)}
    codes |= {cls.exit_code for cls in vars(errors).values()
              if isinstance(cls, type) and issubclass(cls, errors.DCTError)}
    assert codes - _exit_codes() == set()


def test_without_provider_suites_are_skipped_with_one_reason(tmp_path: Path) -> None:
    from debian_cloud_tests.plugin import suites_dir

    run = run_suites(tmp_path, "-rs", str(suites_dir()), timeout=120)
    assert run.rc == 0, run.explain()
    assert run.checks and set(run.checks.values()) == {"skipped"}
    assert "conformance suites need a machine: pytest --provider=qemu --image=IMAGE" in run.stdout


def test_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    assert any(ep.value == "debian_cloud_tests.plugin" for ep in entry_points(group="pytest11"))
    names = {ep.name for ep in entry_points(group="debian_cloud_tests.providers")}
    assert "qemu" in names
    # In a fresh interpreter: loading the plugin imports no cloud SDK.
    code = ("import sys, debian_cloud_tests.plugin; "
            "print(sorted(m for m in ('boto3', 'google.cloud.compute', 'azure.mgmt.compute') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _box_for(out: Path, provider: str) -> str:
    """A box whose metadata names *provider* (the vagrant tests' maker), as a path string."""
    make_box_meta_only(out, provider)
    return str(out)
