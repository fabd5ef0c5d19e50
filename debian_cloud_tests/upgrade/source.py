"""Where the upgrade suite upgrades from: ``--upgrade own`` (the image's own apt sources) or a
signed repository (``--upgrade DIR`` or ``--upgrade "URL SUITE [COMPONENT…]"``) whose Release is
signed by ``--upgrade-key``.

A directory is checked here, before anything is launched: its one suite under ``dists/``, its
components, and a signature gpgv accepts with the key.  A URL is the instance's to reach; apt on
the instance checks its signature with the same key.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingDependencyError, UsageError
from .errors import UnsignedRepositoryError

OWN = "own"
#: where the repository's key goes on the instance (binary: every apt and gpgv reads it)
GUEST_KEY = "/etc/apt/keyrings/dct-upgrade.gpg"
GUEST_LIST = "/etc/apt/sources.list.d/dct-upgrade.list"


@dataclass(frozen=True)
class UpgradeSource:
    """The guest's own sources (no repository), or one signed repository added before upgrading."""

    directory: Path | None = None
    url: str | None = None
    suite: str = ""
    components: tuple[str, ...] = ()
    #: the public key that signs the repository, binary (OpenPGP packets)
    key: bytes = b""

    @property
    def own(self) -> bool:
        return self.directory is None and self.url is None

    def describe(self) -> str:
        if self.own:
            return "the image's own apt sources"
        return f"{self.directory or self.url} {self.suite} {' '.join(self.components)}"

    def list_line(self, url: str) -> str:
        """The one-line apt source for the repository at *url* (one-line: every apt reads it)."""
        return f"deb [signed-by={GUEST_KEY}] {url.rstrip('/')}/ {self.suite} {' '.join(self.components)}\n"


def parse(value: str | None, key: str | None) -> UpgradeSource | None:
    """The source --upgrade and --upgrade-key name, checked; None when no upgrade was asked for.

    Raises:
        UsageError: a malformed value, a missing key or directory.
        UnsignedRepositoryError: a directory repository that is not signed by the key.
    """
    if not value:
        if key:
            raise UsageError("--upgrade-key without --upgrade: name the repository it signs")
        return None
    if value.strip() == OWN:
        if key:
            raise UsageError("--upgrade own upgrades from the image's own sources, which its own "
                             "keyring signs: drop --upgrade-key")
        return UpgradeSource()
    words = value.split()
    if words[0].startswith(("http://", "https://")):
        if len(words) < 3:
            raise UsageError(f"--upgrade {value!r}: give the repository as URL SUITE COMPONENT…, "
                             "e.g. 'http://repo.example/debian stable main'")
        return UpgradeSource(url=words[0], suite=words[1], components=tuple(words[2:]),
                             key=_read_key(key, value))
    directory = Path(value)
    if not directory.is_dir():
        raise UsageError(f"--upgrade {value!r}: neither 'own', a URL nor a directory")
    suite = _only_suite(directory)
    release = directory / "dists" / suite
    packets = _read_key(key, value)
    _check_signed(release, packets, value)
    components = _components(release, value)
    return UpgradeSource(directory=directory.resolve(), suite=suite, components=components,
                         key=packets)


def _read_key(key: str | None, value: str) -> bytes:
    """The key file's OpenPGP packets (an armored key is dearmored: gpgv and apt take both)."""
    if not key:
        raise UnsignedRepositoryError(f"--upgrade {value}: give --upgrade-key, the OpenPGP public "
                                      "key that signs it (an unsigned repository is refused)")
    try:
        data = Path(key).read_bytes()
    except OSError as exc:
        raise UsageError(f"--upgrade-key {key}: {exc.strerror or exc}") from None
    packets = dearmor(data) if ARMOR_BEGIN in data else data
    # a public key packet (tag 6): old format 0x98/0x99, new format 0xc6
    if not packets or packets[0] not in (0x98, 0x99, 0xC6):
        raise UsageError(f"--upgrade-key {key}: not an OpenPGP public key")
    return packets


ARMOR_BEGIN = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"


def dearmor(data: bytes) -> bytes:
    """The packets of an ASCII-armored key: the base64 body, without headers and checksum."""
    text = data.decode("ascii", errors="replace")
    body = text.split(ARMOR_BEGIN.decode(), 1)[1].split("-----END", 1)[0]
    _headers, _, encoded = body.partition("\n\n") if "\n\n" in body else ("", "", body)
    lines = [ln.strip() for ln in encoded.splitlines()
             if ln.strip() and not ln.strip().startswith("=")]
    try:
        return base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _only_suite(directory: Path) -> str:
    suites = sorted(p.name for p in (directory / "dists").glob("*") if p.is_dir())
    if len(suites) != 1:
        found = ", ".join(suites) or "none"
        raise UsageError(f"--upgrade {directory}: an apt repository with one suite under dists/ "
                         f"is needed, found {found}")
    return suites[0]


def _components(release: Path, value: str) -> tuple[str, ...]:
    fields = _release_fields(release)
    components = tuple(fields.get("Components", "").split())
    if not components:
        raise UsageError(f"--upgrade {value}: {release}/Release names no Components")
    return components


def _release_fields(release: Path) -> dict[str, str]:
    """The Release file's top fields (from Release, else from the text InRelease signs)."""
    path = release / "Release" if (release / "Release").is_file() else release / "InRelease"
    fields: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        name, sep, rest = line.partition(":")
        if sep and not line.startswith((" ", "-")):
            fields.setdefault(name.strip(), rest.strip())
    return fields


def _check_signed(release: Path, key: bytes, value: str) -> None:
    """gpgv accepts InRelease, or Release with Release.gpg, signed by *key*."""
    inline, detached = release / "InRelease", release / "Release.gpg"
    if inline.is_file():
        signed = [str(inline)]
    elif detached.is_file() and (release / "Release").is_file():
        signed = [str(detached), str(release / "Release")]
    else:
        raise UnsignedRepositoryError(
            f"--upgrade {value}: the repository is not signed ({release} has no InRelease and no "
            "Release.gpg): apt refuses an unsigned repository; sign its Release")
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise MissingDependencyError("checking --upgrade's signature needs gpgv: apt-get install gpgv")
    with tempfile.TemporaryDirectory(prefix="dct-upgrade-key-") as tmp:
        keyring = Path(tmp) / "key.gpg"
        keyring.write_bytes(key)
        proc = subprocess.run([gpgv, "--keyring", str(keyring), *signed],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        said = next((ln for ln in proc.stderr.splitlines() if "BAD" in ln or "Can't check" in ln
                     or "no valid OpenPGP" in ln), proc.stderr.strip().splitlines()[-1:] or ["?"])
        said = said if isinstance(said, str) else said[0]
        raise UnsignedRepositoryError(
            f"--upgrade {value}: its Release is not signed by --upgrade-key ({said.strip()[:160]})")
