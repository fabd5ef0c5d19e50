#!/bin/bash
# Install everything debian-cloud-tests needs on Debian 12 (as root): QEMU and firmware, the
# image-building tools, and the Python package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
packages=(
  qemu-system-x86 qemu-system-arm qemu-utils ovmf qemu-efi-aarch64   # machines and firmware
  mmdebstrap gdisk fdisk e2fsprogs dosfstools mtools grub-common grub-pc-bin grub-efi-amd64-bin
  qemu-user-static binfmt-support arch-test                          # arm64 test images
  fai-server fai-setup-storage                                       # the FAI build driver
  openssh-client openssh-server ca-certificates iproute2 util-linux parted kpartx udev debootstrap
  vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients dnsmasq-base iptables ebtables  # vagrant provider
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Foreign-arch chroots (arm64 test images) need binfmt_misc; a fresh machine may not mount it.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
update-binfmts --enable >/dev/null 2>&1 || true

python3 -m pip install -q -e '.[test]'
