"""--upgrade and --upgrade-key: what the run accepts, what it refuses in one line (a repository
that is not signed, or not by the key given), and how a directory is served to a guest."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests import console
from debian_cloud_tests.errors import UsageError
from debian_cloud_tests.reboot import _new_boot
from debian_cloud_tests.testimage.upgrade_repo import SUITE, sign_release, write_index
from debian_cloud_tests.upgrade import serve, source
from debian_cloud_tests.upgrade.errors import UnsignedRepositoryError
from debian_cloud_tests.upgrade.steps import (
    HOST_KEYS_BLOCK,
    Snapshot,
    UpgradeOutcome,
    _unpacked,
    reran_per_instance,
)

needs_gpg = pytest.mark.skipif(subprocess.run(["sh", "-c", "command -v gpg"], capture_output=True)
                               .returncode != 0, reason="gpg is not installed")


def _repo(tmp_path: Path, name: str, signed: bool = True) -> tuple[Path, Path]:
    """A small repository (no package) signed by a key of its own, and that key (armored)."""
    repo = tmp_path / name
    (repo / "pool").mkdir(parents=True)
    write_index(repo, "amd64")
    key = tmp_path / f"{name}.asc"
    key.write_text(sign_release(repo / "dists" / SUITE, tmp_path / f"{name}-gnupg", signed=signed))
    return repo, key


def test_no_upgrade_asked_for() -> None:
    assert source.parse(None, None) is None
    with pytest.raises(UsageError, match="--upgrade-key without --upgrade"):
        source.parse(None, "/k.asc")


def test_own_sources_need_no_key(tmp_path: Path) -> None:
    assert source.parse("own", None).own
    with pytest.raises(UsageError, match="drop --upgrade-key"):
        source.parse("own", str(tmp_path / "k.asc"))


@needs_gpg
def test_url_repository_with_its_key(tmp_path: Path) -> None:
    _, key = _repo(tmp_path, "r")
    found = source.parse("https://repo.example/debian stable main contrib", str(key))
    assert (found.url, found.suite, found.components) == ("https://repo.example/debian", "stable",
                                                          ("main", "contrib"))
    assert found.list_line("https://repo.example/debian") == (
        f"deb [signed-by={source.GUEST_KEY}] https://repo.example/debian/ stable main contrib\n")
    with pytest.raises(UsageError, match="URL SUITE COMPONENT"):
        source.parse("https://repo.example/debian", str(key))


@needs_gpg
def test_signed_directory_accepted_with_an_armored_or_a_binary_key(tmp_path: Path) -> None:
    repo, key = _repo(tmp_path, "r")
    found = source.parse(str(repo), str(key))
    assert (found.directory, found.suite, found.components) == (repo.resolve(), SUITE, ("main",))
    binary = tmp_path / "key.gpg"
    binary.write_bytes(found.key)
    assert source.parse(str(repo), str(binary)).key == found.key


@needs_gpg
def test_unsigned_or_foreign_signed_directory_refused(tmp_path: Path) -> None:
    unsigned, unsigned_key = _repo(tmp_path, "unsigned", signed=False)
    with pytest.raises(UnsignedRepositoryError, match="not signed") as refused:
        source.parse(str(unsigned), str(unsigned_key))
    assert refused.value.exit_code == 38
    repo, _ = _repo(tmp_path, "r")
    with pytest.raises(UnsignedRepositoryError, match="not signed by --upgrade-key"):
        source.parse(str(repo), str(unsigned_key))
    with pytest.raises(UnsignedRepositoryError, match="give --upgrade-key"):
        source.parse(str(repo), None)


def test_not_a_key_or_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "dists/a").mkdir(parents=True)
    (tmp_path / "dists/b").mkdir(parents=True)
    text = tmp_path / "k.txt"
    text.write_text("hello\n")
    with pytest.raises(UsageError, match="one suite under dists/ is needed, found a, b"):
        source.parse(str(tmp_path), str(text))
    with pytest.raises(UsageError, match="neither 'own', a URL nor a directory"):
        source.parse(str(tmp_path / "nowhere"), str(text))


def test_dearmor_reads_headers_and_drops_the_checksum() -> None:
    packets = b"\x99\x00\x01\x04" * 20
    body = base64.b64encode(packets).decode()
    armored = (f"-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: x\n\n{body[:64]}\n{body[64:]}\n=AbCd\n"
               "-----END PGP PUBLIC KEY BLOCK-----\n").encode()
    assert source.dearmor(armored) == packets


def _ask(directory: Path, request: bytes) -> bytes:
    """*request* to the server as QEMU's guestfwd runs it: the connection on stdin and stdout."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        proc = subprocess.Popen([sys.executable, "-m", "debian_cloud_tests.upgrade.serve",
                                 str(directory)], stdin=theirs, stdout=theirs, stderr=theirs)
        theirs.close()
        ours.sendall(request)
        ours.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := ours.recv(65536):
            answer += chunk
        assert proc.wait(timeout=30) == 0
    return answer


def test_repository_served_over_the_guests_connection(tmp_path: Path) -> None:
    (tmp_path / "dists/s").mkdir(parents=True)
    (tmp_path / "dists/s/Release").write_text("Suite: s\n")
    (tmp_path / "secret").write_text("outside\n")
    repo = tmp_path / "dists"
    answer = _ask(repo.parent, b"GET /dists/s/Release HTTP/1.1\r\nHost: r\r\n\r\n"
                               b"HEAD /dists/s/Release HTTP/1.1\r\nHost: r\r\n\r\n"
                               b"GET /dists/ HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200") == 2 and answer.count(b"Suite: s\n") == 1
    assert b"HTTP/1.1 404" in answer  # no listing
    assert b"outside" not in _ask(repo, b"GET /../secret HTTP/1.1\r\nHost: r\r\n\r\n")
    assert serve.guest_address() == "10.0.2.4"
    assert serve.guest_address("192.168.76.0/24") == "192.168.76.4"


def test_snapshot_and_per_instance_evidence() -> None:
    before = Snapshot.parse("6.1.0-1\n\nabc\n\ni-1\n\n6.12-1\n\n/var/lib/cloud/instance/sem/config_ssh 100\n"
                            "/var/lib/cloud/instance/sem/config_users 100\n\nreboot-required\n")
    assert (before.kernel, before.machine_id, before.instance_id, before.newest_kernel) == (
        "6.1.0-1", "abc", "i-1", "6.12-1")
    assert before.reboot_required and before.semaphores["/var/lib/cloud/instance/sem/config_ssh"] == "100"
    same = UpgradeOutcome("repo", before=before, after=before, console_after="login: ")
    assert reran_per_instance(same) is None
    later = Snapshot(**{**before.__dict__, "semaphores": {
        **before.semaphores, "/var/lib/cloud/instance/sem/config_ssh": "200"}})
    assert "config_ssh" in (reran_per_instance(UpgradeOutcome("repo", before=before, after=later)) or "")
    printed = UpgradeOutcome("repo", before=before, console_after=f"{HOST_KEYS_BLOCK}\nssh-ed25519 AAAA")
    assert "host keys again" in (reran_per_instance(printed) or "")


def test_unpacked_lines() -> None:
    assert _unpacked("Unpacking netbase (6.4+dct1) over (6.4) ...") == "netbase 6.4 -> 6.4+dct1"
    assert _unpacked("Unpacking linux-image-6.12 (6.12.95-1) ...") == "linux-image-6.12 (new) -> 6.12.95-1"


@pytest.mark.parametrize("line", [
    "Gave up waiting for root file system device.  Common problems:",
    "ALERT!  UUID=5de1c32a does not exist.  Dropping to a shell!",
    "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
    "Failed to boot both default and fallback entries.",
    "You are in emergency mode. After logging in, type \"journalctl -xb\"",
])
def test_a_boot_that_cannot_go_on_is_told_at_once(line: str) -> None:
    old = "[  OK  ] Stopped target x.\r\n[   9.1] reboot: Restarting system\r\n"
    assert console.dead_end(_new_boot(old + "SeaBIOS\r\nLinux version 6.12\r\n" + line)) == line.strip()
    assert console.dead_end(_new_boot(old + "SeaBIOS\r\nLinux version 6.12\r\nlogin: ")) is None
    # the old boot's last words are not the new boot's
    assert console.dead_end(_new_boot(line + "\r\n" + old + "SeaBIOS\r\n")) is None
