#!/bin/bash
# Install everything debian-cloud-tests needs on Debian 12 or 13, as root: QEMU and firmware, the
# image-building tools from Debian's archive, and the Python package with its test extras in a
# virtual environment (.venv beside this script's checkout; Debian's python3 is never touched).
# `debian-cloud-tests` is linked into /usr/local/bin, and the audit references (ssg-debian, lynis)
# are unpacked into the venv, as is azurite (Azure Storage's emulator, from npm) for the tests of
# publication on Azure. A second run installs nothing and is quick.
#
# Exit codes: 50 not Debian, 51 not root, 52 no apt-get/dpkg, 53 Debian older than 12;
# otherwise that of the step that failed (apt-get, pip, npm).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd -P)

fail() { echo "setup.sh: $2" >&2; exit "$1"; }

# What this script can serve: say so in one line where it cannot.
[ "$(uname -s)" = Linux ] && [ -r /etc/os-release ] || fail 50 "this is not Debian (needs Debian 12 or 13)"
os_id=$(. /etc/os-release && echo "${ID:-}")
os_version=$(. /etc/os-release && echo "${VERSION_ID:-}")
[ "$os_id" = debian ] || fail 50 "this is ${os_id:-an unknown system}, not Debian (needs Debian 12 or 13)"
[ "$(id -u)" = 0 ] || fail 51 "run as root: it installs Debian packages and builds images with loop devices"
for tool in apt-get dpkg-query; do
  path=$(command -v "$tool" || true)  # bash names a file it cannot execute when it finds no other
  [ -n "$path" ] && [ -x "$path" ] || fail 52 "$tool not found: Debian's package tools are needed"
done
# testing/unstable have no VERSION_ID; they are newer than 12
if [ -n "$os_version" ] && [ "${os_version%%.*}" -lt 12 ]; then
  fail 53 "Debian $os_version is too old: needs Debian 12 or later (python3 >= 3.11)"
fi

export DEBIAN_FRONTEND=noninteractive
packages=(
  python3 python3-venv                                               # the Python side, in a venv
  qemu-system-x86 qemu-system-arm qemu-utils ovmf qemu-efi-aarch64   # machines and firmware
  slirp4netns                                                        # a guest network walled off this host
  mmdebstrap gdisk fdisk e2fsprogs dosfstools mtools grub-common grub-pc-bin grub-efi-amd64-bin
  gpg                                                                # signs the upgrade suite's test repository
  qemu-user-static binfmt-support arch-test                          # arm64 test images
  fai-server fai-setup-storage                                       # the FAI build driver
  openssh-client openssh-server ca-certificates iproute2 util-linux parted kpartx udev debootstrap
  vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients dnsmasq-base iptables ebtables  # vagrant provider
)
# azurite, for the tests: Debian's nodejs and npm, unless a node with its own npm is there already
# (NodeSource's nodejs package holds npm, and conflicts with Debian's)
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
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

# The venv is made by Debian's python3 (not whatever python3 comes first on PATH) and remade
# when that interpreter changed, e.g. after an upgrade from 12 to 13.
python=/usr/bin/python3
venv=$checkout/.venv
want="$("$python" -c 'import sys; print(sys.version)') $(sha256sum pyproject.toml | cut -d' ' -f1)"
stamp=$venv/.debian-cloud-tests-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$checkout[test]"
  echo "$want" >"$stamp"
fi
# The audit references docs/audit-coverage.md is built from: the rule lists of Debian's SCAP content
# (ssg-debian) and of lynis, at the versions of Debian 13 on every machine (Debian 12's ssg-debian
# has no Debian 12 profiles). Unpacked beside the venv, not installed: nothing here runs them.
refs=$venv/share/debian-cloud-tests/audit-references
refs_suite=trixie
if [ ! -e "$refs/versions" ]; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' |
           awk -v c="$codename" '$2 == c { print $1; exit }')
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo "deb ${mirror:-http://deb.debian.org/debian/} $refs_suite main" >"$work/sources.list"
  # a private index: the system's own sources, lists and package cache are left as they are
  apt_refs=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=-
            -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
            -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
  apt-get "${apt_refs[@]}" update -q
  (cd "$work" && apt-get "${apt_refs[@]}" download -q ssg-debian lynis)
  rm -rf "$refs" && mkdir -p "$refs"
  for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$refs"
    dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >>"$refs/versions.new"
  done
  mv "$refs/versions.new" "$refs/versions"  # last: its presence says the unpacking finished
fi
# azurite for tests/fakes/azurite.py: 3.35.0, the last release whose package asks for no newer
# nodejs than Debian 12's 18 (3.36 asks for 21)
azurite=$venv/share/debian-cloud-tests/azurite
azurite_version=3.35.0
if [ "$(cat "$azurite/version" 2>/dev/null)" != "$azurite_version" ]; then
  rm -rf "$azurite" && mkdir -p "$azurite"
  npm install --prefix "$azurite" --omit=dev --no-audit --no-fund --loglevel=error "azurite@$azurite_version"
  echo "$azurite_version" >"$azurite/version"  # last: its presence says the install finished
fi
link=/usr/local/bin/debian-cloud-tests
if [ "$(readlink "$link" 2>/dev/null)" != "$venv/bin/debian-cloud-tests" ]; then
  mkdir -p /usr/local/bin
  ln -sfn "$venv/bin/debian-cloud-tests" "$link"
fi
