"""The vagrant provider for real: Vagrant, vagrant-libvirt and a libvirtd the test starts in a
network namespace of its own, booting a box made from the good test image.

The plugin runs inside that namespace exactly as a user runs it; the box's libvirt NAT network
exists only there.  The good box passes the BVT, metadata and reboot suites (soft and hard
reboot through libvirt) and leaves no domain, volume, network or process behind; a box with
planted defects fails the checks of its defects.  Bad input costs one line and its exit code.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian_cloud_tests.providers.vagrant import VagrantProvider
from debian_cloud_tests.providers.vagrant.vagrantfile import MachineConfig, render, ruby_string

from debian_cloud_tests import errors
from debian_cloud_tests.faibuild.vagrantbox import make_box
from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.provider import get_provider

from .conftest import TEST_SHAPE, SuiteRun, run_suites
from .fakes.libvirt_netns import Namespace, running_libvirtd, unavailable

SKIP_OK = ("not applicable",)


def _require_tools() -> None:
    why = unavailable()
    if why:
        if os.environ.get("DCT_E2E") == "require":
            pytest.fail(f"vagrant end-to-end tests required but impossible here: {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def libvirt_ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    _require_tools()
    with running_libvirtd(tmp_path_factory.mktemp("libvirt")) as ns:
        yield ns


def run_in(ns: Namespace, tmp_path: Path, *args: str, suites: tuple[str, ...] = (),
           timeout: float = 1500) -> tuple[SuiteRun, Path]:
    """The plugin inside the namespace; a TMPDIR of its own shows what a run leaves behind."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(parents=True)
    paths = [str(suites_dir() / s) for s in suites]
    env = {"TMPDIR": str(tmpdir), "VAGRANT_HOME": str(tmp_path / "vagrant.d")}
    run = run_suites(tmp_path, *args, *paths, timeout=timeout, env=env, prefix=ns.prefix(tmp_path))
    return run, tmpdir


def _assert_left_nothing(ns: Namespace, before: dict[str, list[str]], tmpdir: Path) -> None:
    assert ns.inventory() == before, "the run left libvirt objects behind"
    assert ns.processes() == [], "the run left processes in the namespace"
    assert list(tmpdir.iterdir()) == [], "the run left files in its TMPDIR"


@pytest.fixture(scope="module")
def good_box(good_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_box(good_image, tmp_path_factory.mktemp("box") / "debian-12-test.box")


#: the good box's runs: CI boots it for bvt and metadata; its reboots (soft, and hard through
#: libvirt) are a second boot, in the full matrix
GOOD_BOX_RUNS = {"boot": ("bvt", "metadata"), "reboots": ("reboot",)}


@pytest.mark.xdist_group("vagrant")
@pytest.mark.cost(300)
@pytest.mark.e2e
@pytest.mark.parametrize("part", ["boot", pytest.param("reboots", marks=pytest.mark.matrix)])
def test_good_box_passes_and_leaves_nothing(part: str, libvirt_ns: Namespace, good_box: Path,
                                            tmp_path: Path) -> None:
    before = libvirt_ns.inventory()
    suites = GOOD_BOX_RUNS[part]
    run, tmpdir = run_in(libvirt_ns, tmp_path, "--provider=vagrant", f"--image={good_box}",
                         f"--instance-type={TEST_SHAPE}", suites=suites)
    assert run.rc == 0, run.explain()
    not_passed = {c: s for c, s in run.checks.items()
                  if s != "passed" and not run.messages.get(c, "").startswith(SKIP_OK)}
    assert not not_passed, f"{not_passed}\n{run.explain()}"
    # What the platform set reached the guest through vagrant-libvirt and the seed cdrom.
    for check in ("metadata.hostname_matches", "metadata.instance_id_matches",
                  "metadata.user_data_applied", "metadata.vcpus_match", "metadata.memory_matches",
                  "bvt.ssh_login_default_user", "reboot.comes_back[soft]",
                  "reboot.comes_back[hard]", "reboot.host_keys_kept[hard]"):
        if check.split(".")[0] not in suites:
            continue
        assert run.checks.get(check) == "passed", f"{check}: {run.checks.get(check)}\n{run.explain()}"
    for prop in ("vagrant_version", "vagrant_libvirt_version", "libvirt_version", "accel",
                 "boot_seconds", "libvirt_domain", "box"):
        assert run.props.get(prop), f"JUnit property {prop} missing: {run.props}"
    assert run.props["provider"] == "vagrant"
    assert run.props["box"].startswith("dct-")  # added under a run-scoped name
    _assert_left_nothing(libvirt_ns, before, tmpdir)
    assert not (tmp_path / "vagrant.d").exists(), "the box file reached the user's VAGRANT_HOME"


# the same defects' checks fail on qemu (test_e2e_qemu's bad-boot-net); here through vagrant
@pytest.mark.matrix
@pytest.mark.xdist_group("vagrant")
@pytest.mark.cost(300)
@pytest.mark.e2e
def test_defects_fail_their_checks(libvirt_ns: Namespace, image_factory, tmp_path: Path) -> None:
    """Negative control: the hostname and user-data checks can fail on this provider."""
    image = image_factory("hostname-preserved", "write-files-dropped")
    defective = make_box(image, tmp_path / "defective.box")
    before = libvirt_ns.inventory()
    run, tmpdir = run_in(libvirt_ns, tmp_path / "run", "--provider=vagrant",
                         f"--image={defective}", suites=("metadata",))
    assert run.rc == 1, run.explain()
    assert run.failing() == {"metadata.hostname_matches", "metadata.user_data_applied"}, \
        run.explain()
    _assert_left_nothing(libvirt_ns, before, tmpdir)


# the FAI driver's vagrant vendor: the cloud base packed as a libvirt box, through the provider
@pytest.mark.matrix
@pytest.mark.xdist_group("vagrant")
@pytest.mark.cost(400)
@pytest.mark.e2e
def test_box_built_by_fai_passes(libvirt_ns: Namespace, tmp_path: Path) -> None:
    from .test_pipeline_e2e import _why_not

    if why := _why_not():
        pytest.skip(why)
    from .test_vendor_images_e2e import build

    box = build("vagrant", tmp_path / "out", "box")
    before = libvirt_ns.inventory()
    run, tmpdir = run_in(libvirt_ns, tmp_path / "run", "--provider=vagrant", f"--image={box}",
                         f"--instance-type={TEST_SHAPE}", suites=("bvt", "metadata", "cloud_init"))
    assert run.rc == 0, run.explain()
    not_passed = {c: s for c, s in run.checks.items()
                  if s != "passed" and not run.messages.get(c, "").startswith(SKIP_OK)}
    assert not not_passed, f"{not_passed}\n{run.explain()}"
    _assert_left_nothing(libvirt_ns, before, tmpdir)


# Bad input: one line, its own exit code, nothing created.

def _assert_one_line_error(run: SuiteRun, code: int, needle: str) -> None:
    out = run.stdout + run.stderr
    assert run.rc == code, run.explain()
    assert "Traceback" not in out, run.explain()
    assert needle in out, run.explain()
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_registry_finds_vagrant() -> None:
    assert isinstance(get_provider("vagrant"), VagrantProvider)


@pytest.mark.parametrize(("content", "code", "needle"), [
    (None, errors.ImageNotFoundError.exit_code, "box file not found"),
    (b"not a tar archive", errors.ImageFormatError.exit_code, "is not a box"),
    ("virtualbox", errors.ImageFormatError.exit_code, "a box for virtualbox, not libvirt"),
])
def test_bad_box_file(tmp_path: Path, content: bytes | str | None, code: int, needle: str) -> None:
    path = tmp_path / "bad.box"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        make_box_meta_only(path, content)
    run = run_suites(tmp_path, "--provider=vagrant", f"--image={path}", timeout=120)
    _assert_one_line_error(run, code, needle)


def make_box_meta_only(out: Path, provider: str) -> None:
    data = json.dumps({"provider": provider}).encode()
    with tarfile.open(out, "w") as tar:
        info = tarfile.TarInfo("metadata.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(("args", "code", "needle"), [
    (["--instance-type=t3.micro"], errors.UsageError.exit_code, "for vagrant write VCPUSxMEMORY_MIB"),
    (["--disk-size=+1G"], errors.UsageError.exit_code, "for vagrant give whole GiB"),
    (["--firmware=uefi"], errors.ArchFirmwareError.exit_code, "only BIOS boxes"),
    (["--arch=arm64"], errors.ArchFirmwareError.exit_code, "cannot run on this amd64 host"),
])
def test_bad_options(tmp_path: Path, args: list[str], code: int, needle: str) -> None:
    run = run_suites(tmp_path, "--provider=vagrant", "--image=debian/bookworm64", *args, timeout=120)
    _assert_one_line_error(run, code, needle)


def test_vagrant_not_installed_names_the_package(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    run = run_suites(tmp_path, "--provider=vagrant", "--image=debian/bookworm64",
                     env={"PATH": str(bin_dir)}, timeout=120)
    _assert_one_line_error(run, errors.MissingDependencyError.exit_code,
                           "apt-get install vagrant vagrant-libvirt")


def test_plugin_missing_names_the_package(tmp_path: Path) -> None:
    """A Vagrant without vagrant-libvirt (a stand-in `vagrant` that lists no plugin)."""
    _require_tools()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vagrant"
    fake.write_text("#!/bin/sh\necho '1700000000,,ui,info,No plugins installed.'\n")
    fake.chmod(0o755)
    run = run_suites(tmp_path, "--provider=vagrant", "--image=debian/bookworm64",
                     env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}, timeout=120)
    _assert_one_line_error(run, errors.MissingDependencyError.exit_code,
                           "apt-get install vagrant-libvirt")


def test_libvirtd_not_running(tmp_path: Path) -> None:
    """In a namespace whose /run/libvirt is empty, no libvirtd answers."""
    _require_tools()
    with running_libvirtd(tmp_path / "ns", daemon=False) as ns:
        run = run_suites(tmp_path, "--provider=vagrant", "--image=debian/bookworm64",
                         timeout=120, prefix=ns.prefix(tmp_path))
    _assert_one_line_error(run, errors.ProviderError.exit_code,
                           "cannot reach libvirt at qemu:///system")


@pytest.mark.xdist_group("vagrant")
@pytest.mark.cost(300)
def test_unknown_box_name(libvirt_ns: Namespace, tmp_path: Path) -> None:
    run = run_suites(tmp_path, "--provider=vagrant", "--image=nobody/no-such-box",
                     env={"VAGRANT_HOME": str(tmp_path / "vagrant.d")}, timeout=120,
                     prefix=libvirt_ns.prefix(tmp_path))
    _assert_one_line_error(run, errors.ImageNotFoundError.exit_code,
                           "no box named 'nobody/no-such-box' for libvirt")


def test_vagrantfile_has_no_vagrant_magic(tmp_path: Path) -> None:
    text = render(MachineConfig(
        box="dct-r1-abc", ssh_user="debian", key_file=tmp_path / "id_ed25519",
        seed_iso=tmp_path / "seed.iso", console_log=tmp_path / "console.log", driver="qemu",
        vcpus=2, memory_mib=1024, domain_prefix="dct-r1-abc-", boot_timeout=600, disk_gib=8))
    for line in ('config.vm.box_check_update = false',
                 'config.vm.synced_folder ".", "/vagrant", disabled: true',
                 "config.ssh.insert_key = false", 'libvirt.driver = "qemu"',
                 "libvirt.machine_virtual_size = 8",
                 f'libvirt.storage :file, device: :cdrom, path: "{tmp_path}/seed.iso"',
                 f'libvirt.serial type: "file", source: {{path: "{tmp_path}/console.log"}}'):
        assert line in text
    assert ruby_string('a"b#{x}\\') == '"a\\"b\\#{x}\\\\"'


def _define_domain(ns: Namespace, tmp_path: Path, name: str, vagrantfile: Path) -> None:
    xml = tmp_path / f"{name}.xml"
    xml.write_text(f"<domain type='qemu'><name>{name}</name><description>Source: {vagrantfile}"
                   "</description><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm"
                   "</type></os></domain>")
    ns.virsh("define", str(xml))


@pytest.mark.xdist_group("vagrant")
@pytest.mark.cost(300)
def test_gc_removes_only_what_dead_runs_left(libvirt_ns: Namespace, tmp_path: Path) -> None:
    """Domains whose Vagrantfile is gone and box volumes of runs without a run dir go; the rest
    (a live run's domain and volume, anything not ours) stays."""
    live = tmp_path / "dct-run-20260101000000-aaaaaa-x"
    live.mkdir()
    (live / "Vagrantfile").write_text("")
    before = libvirt_ns.inventory()
    _define_domain(libvirt_ns, tmp_path, "dct-dead-default", tmp_path / "gone/Vagrantfile")
    _define_domain(libvirt_ns, tmp_path, "dct-live-default", live / "Vagrantfile")
    dead_vol = "dct-20260101000000-bbbbbb-12345678_vagrant_box_image_0_1_box.img"
    live_vol = "dct-20260101000000-aaaaaa-12345678_vagrant_box_image_0_1_box.img"
    dead_seed = "dct-20260101000000-bbbbbb-12345678-seed.iso"
    for vol in (dead_vol, dead_seed, live_vol, "someones-box_vagrant_box_image_0_1_box.img"):
        libvirt_ns.virsh("vol-create-as", "default", vol, "1M")
    code = ("from pathlib import Path; from debian_cloud_tests.providers.vagrant.gc import "
            f"collect_garbage; print(collect_garbage(base=Path({str(tmp_path)!r})))")
    proc = libvirt_ns.run(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "domain dct-dead-default" in proc.stdout and f"volume {dead_vol}" in proc.stdout
    after = libvirt_ns.inventory()
    assert "dct-dead-default" not in after["domains"] and "dct-live-default" in after["domains"]
    assert f"default/{live_vol}" in after["volumes"]
    assert not {f"default/{dead_vol}", f"default/{dead_seed}"} & set(after["volumes"])
    libvirt_ns.virsh("undefine", "dct-live-default")
    for vol in (live_vol, "someones-box_vagrant_box_image_0_1_box.img"):
        libvirt_ns.virsh("vol-delete", "--pool", "default", vol)
    assert libvirt_ns.inventory() == before
