"""Build and configure a Debian root tree the way Debian's official cloud images are configured.

mmdebstrap does the bootstrap; this module only writes the handful of files that make the tree a
cloud image: apt sources, boot loader configuration, fstab, first-boot state cleared (machine-id,
SSH host keys), cloud-init defaults.
"""

from __future__ import annotations

import functools
import re
import shutil
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .disk import DiskLayout, run

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"

SERIAL_CONSOLE = {"amd64": "ttyS0", "arm64": "ttyAMA0"}
KERNEL_PACKAGE = {"amd64": "linux-image-cloud-amd64", "arm64": "linux-image-cloud-arm64"}
#: amd64 carries Debian's signed shim and GRUB as Debian's images do, to boot under Secure Boot
GRUB_PACKAGES = {
    "amd64": ["grub-pc-bin", "grub-efi-amd64-bin", "grub2-common", "grub-efi-amd64-signed",
              "shim-signed"],
    "arm64": ["grub-efi-arm64-bin", "grub2-common"],
}
BASE_PACKAGES = [
    "systemd-sysv", "udev", "dbus", "initramfs-tools", "cloud-init", "cloud-guest-utils",
    "openssh-server", "sudo", "netbase", "iproute2",
    "ca-certificates", "unattended-upgrades", "systemd-timesyncd", "locales", "procps", "less",
    "apt-utils", "python3-apt", "e2fsprogs", "util-linux", "openssh-client", "dosfstools",
    "logrotate",
]


#: How each network stack's packages are named.  Debian's cloud images configure the network
#: with netplan rendering for systemd-networkd, names resolved by systemd-resolved; bookworm
#: images built by other means often use ifupdown and dhclient.  The test images keep bookworm on
#: ifupdown and trixie on netplan, so every network check is proven on both stacks (bookworm on
#: netplan passes them as well).
NETWORK_PACKAGES = {
    "ifupdown": ["ifupdown", "isc-dhcp-client"],
    "netplan": ["netplan.io", "systemd-resolved"],
}
IFUPDOWN_RELEASES = {"bullseye", "bookworm"}
#: From trixie on, the kernel hardening sysctls Debian sets (protected fifos and regular files
#: among them) ship in their own package; before, procps carried them.
SYSCTL_PACKAGE = "linux-sysctl-defaults"


def network_stack(release: str) -> str:
    """The network stack Debian's cloud images of *release* use."""
    return "ifupdown" if release in IFUPDOWN_RELEASES else "netplan"


def built_like_debian(release: str) -> bool:
    """Whether the test image of *release* follows Debian's official images where builders differ:
    the hostname resolved by NSS (myhostname) rather than a managed /etc/hosts, apt's cache directory
    removed, -backports in the sources.  The netplan images do, the ifupdown ones do as other
    builders often do, so the checks are proven to accept both routes."""
    return network_stack(release) == "netplan"


def packages(arch: str, extra: Sequence[str] = (), release: str = "bookworm") -> list[str]:
    """Everything the image installs, kernel and boot loader included, and *extra*."""
    sysctls = [] if release in IFUPDOWN_RELEASES else [SYSCTL_PACKAGE]
    # NSS resolves the machine's own name, whatever the platform names it (see built_like_debian)
    nss = ["libnss-myhostname"] if built_like_debian(release) else []
    return [*BASE_PACKAGES, *NETWORK_PACKAGES[network_stack(release)], *sysctls, *nss,
            KERNEL_PACKAGE[arch], *GRUB_PACKAGES[arch], *extra]


#: The kernel's postinst and the initramfs-tools trigger would each build the initramfs: a no-op
#: stands in for update-initramfs while packages install, and it runs once at the end.  A foreign
#: arch runs it under qemu-user, where one build takes minutes.
UPDATE_INITRAMFS = "/usr/sbin/update-initramfs"
_DEFER_INITRAMFS = (f'chroot "$1" dpkg-divert --quiet --local --rename --add {UPDATE_INITRAMFS} && '
                    f'printf "#!/bin/sh\\nexit 0\\n" >"$1{UPDATE_INITRAMFS}" && '
                    f'chmod 755 "$1{UPDATE_INITRAMFS}"')
_BUILD_INITRAMFS_ONCE = (f'rm "$1{UPDATE_INITRAMFS}" && '
                         f'chroot "$1" dpkg-divert --quiet --local --rename --remove {UPDATE_INITRAMFS} && '
                         f'chroot "$1" update-initramfs -c -k all')


_KERNEL_PIN = "/etc/apt/preferences.d/dct-release-kernel"


@functools.cache
def security_index(release: str, arch: str) -> str:
    """The hash of *release*-security's package index for *arch*, as its signed InRelease names it:
    a tree bootstrapped before the index changed lacks an update published since, so the hash is
    part of the tree's cache key ("unreachable" when the archive cannot be asked)."""
    url = f"{SECURITY_MIRROR}/dists/{release}-security/InRelease"
    try:
        with urllib.request.urlopen(url, timeout=15) as reply:
            text = reply.read().decode(errors="replace")
    except (OSError, ValueError):
        return "unreachable"
    sha256 = text.partition("\nSHA256:")[2]
    found = re.search(rf"^ ([0-9a-f]{{64}}) +\d+ main/binary-{re.escape(arch)}/Packages$", sha256, re.M)
    return found.group(1) if found else "unknown"


def bootstrap(tree: Path, release: str, arch: str, extra: Sequence[str] = (),
              release_kernel: bool = False) -> None:
    """Run mmdebstrap into *tree* (an empty directory); needs root.  *release_kernel*: the
    release's own kernel, not a newer one of -updates or -security (the pin is gone from the tree
    afterwards, so an upgrade in the guest finds the newer one)."""
    pin = ([f"--setup-hook=mkdir -p \"$1/etc/apt/preferences.d\" && printf "
            f"'Package: linux-image-*\\nPin: release n={release}\\nPin-Priority: 990\\n' "
            f">\"$1{_KERNEL_PIN}\"", f"--customize-hook=rm \"$1{_KERNEL_PIN}\""]
           if release_kernel else [])
    run(["mmdebstrap", "--mode=root", "--variant=minbase", f"--arch={arch}",
         f"--include={','.join(packages(arch, extra, release))}", *pin,
         f"--essential-hook={_DEFER_INITRAMFS}", f"--customize-hook={_BUILD_INITRAMFS_ONCE}",
         "--aptopt=Acquire::Languages \"none\"",
         "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
         "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
         release, str(tree),
         f"deb {MIRROR} {release} main",
         f"deb {MIRROR} {release}-updates main",
         f"deb {SECURITY_MIRROR} {release}-security main"], group=True)


def kernel_version(tree: Path) -> str:
    """The version of the one kernel installed in *tree*."""
    kernels = sorted(p.name.removeprefix("vmlinuz-") for p in (tree / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        from ..errors import BuildError

        raise BuildError(f"expected one kernel in {tree}/boot, found {kernels or 'none'}")
    return kernels[0]


def kernel_cmdline(arch: str) -> str:
    """The command line of Debian's cloud images: serial console last, so it is /dev/console."""
    tty = SERIAL_CONSOLE[arch]
    early = f" earlyprintk={tty},115200" if arch == "amd64" else ""
    return f"console=tty0 console={tty},115200{early}"


def configure(tree: Path, release: str, arch: str, layout: DiskLayout) -> None:
    """Write the files that make a bootstrapped tree a Debian cloud image."""
    _write(tree / "etc/apt/sources.list.d/debian.sources", _sources(release))
    (tree / "etc/apt/sources.list").unlink(missing_ok=True)
    _write(tree / "etc/fstab",
           f"UUID={layout.root_uuid} / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1\n"
           f"UUID={layout.esp_serial} /boot/efi vfat defaults 0 0\n")
    (tree / "boot/efi").mkdir(parents=True, exist_ok=True)
    _write(tree / "etc/default/grub.d/10_cloud.cfg",
           f'GRUB_CMDLINE_LINUX_DEFAULT="{kernel_cmdline(arch)}"\n'
           'GRUB_TIMEOUT=0\nGRUB_TERMINAL="console serial"\n'
           'GRUB_SERIAL_COMMAND="serial --speed=115200"\nGRUB_DISABLE_OS_PROBER=true\n')
    write_grub_cfg(tree, arch, layout, kernel_cmdline(arch))
    if network_stack(release) == "ifupdown":
        _write(tree / "etc/network/interfaces",
               "# Interfaces are configured by cloud-init in /etc/network/interfaces.d/\n"
               "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n")
    _write(tree / "etc/hostname", "localhost\n")
    _write(tree / "etc/hosts", "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
                               "ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n")
    _write(tree / "etc/default/locale", "LANG=C.UTF-8\n")
    _write(tree / "etc/apt/apt.conf.d/20auto-upgrades",
           'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n')
    _write(tree / "etc/cloud/cloud.cfg.d/01_debian_cloud.cfg",
           "apt:\n  generate_mirrorlists: true\n  preserve_sources_list: true\n"
           + ("" if built_like_debian(release) else "manage_etc_hosts: true\n")
           + "ssh_genkeytypes: [rsa, ecdsa, ed25519]\n")
    _write(tree / "etc/ssh/sshd_config.d/10-cloud.conf",
           "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n")
    reset_first_boot_state(tree)
    if built_like_debian(release):
        shutil.rmtree(tree / "var/cache/apt/archives", ignore_errors=True)


def write_grub_cfg(tree: Path, arch: str, layout: DiskLayout, cmdline: str) -> None:
    """A grub.cfg equivalent to what update-grub writes for this tree (which needs udev to run)."""
    version = kernel_version(tree)
    serial = "serial --unit=0 --speed=115200\n" if arch == "amd64" else ""
    # Boot commands at top level rather than a menu entry: nothing waits for a key under any
    # firmware, and a kernel upgrade in the guest regenerates a standard grub.cfg anyway.
    _write(tree / "boot/grub/grub.cfg",
           f"{serial}terminal_input console serial\nterminal_output console serial\n"
           f"search --no-floppy --fs-uuid --set=root {layout.root_uuid}\n"
           "insmod gzio\ninsmod part_gpt\ninsmod ext2\n"
           "echo 'Loading Linux ...'\n"
           f"linux /boot/vmlinuz-{version} root=UUID={layout.root_uuid} ro {cmdline}\n"
           f"initrd /boot/initrd.img-{version}\nboot\n")


def reset_first_boot_state(tree: Path) -> None:
    """Remove what must be created per instance, and what the build left behind."""
    _write(tree / "etc/machine-id", "")
    (tree / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for sub in ("var/lib/cloud", "var/cache/apt/archives", "var/lib/apt/lists"):
        target = tree / sub
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                elif child.name not in ("lock", "partial"):
                    child.unlink()
    resolv = tree / "etc/resolv.conf"
    if not resolv.is_symlink():  # the build host's copy; a link to resolved's stub is the image's
        resolv.unlink(missing_ok=True)
    for log in (tree / "var/log").rglob("*"):
        if log.is_file():
            log.write_bytes(b"")


def _sources(release: str) -> str:
    """deb822 sources as the official images have them: the release, -updates (and -backports)
    and -security."""
    backports = f" {release}-backports" if built_like_debian(release) else ""
    return (f"Types: deb\nURIs: https://deb.debian.org/debian\n"
            f"Suites: {release} {release}-updates{backports}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: https://deb.debian.org/debian-security\n"
            f"Suites: {release}-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
