"""Fresh ed25519 key pairs: the client key authorised in the guest, and injectable host keys; and
the known_hosts file of a kept machine, holding the host keys the run verified."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private_openssh: str
    public_openssh: str  # "ssh-ed25519 AAAA… comment"


def generate(comment: str) -> KeyPair:
    """A new ed25519 key pair in OpenSSH formats."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return KeyPair(private, f"{public} {comment}")


def write_private(pair: KeyPair, path: Path) -> Path:
    """Write the private key 0600 from the first byte (never world-readable, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pair.private_openssh)
    path.with_name(path.name + ".pub").write_text(pair.public_openssh + "\n")
    return path


def known_hosts_line(host: str, port: int, key: str) -> str:
    """*key* ("TYPE BASE64 [comment]") as OpenSSH's known_hosts writes it for *host*:*port*
    (``[host]:port`` unless the port is 22)."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {' '.join(key.split()[:2])}"


def write_known_hosts(path: Path, host: str, port: int, keys: Sequence[str]) -> Path:
    """Write a known_hosts file holding exactly *keys* for *host*:*port*, 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(known_hosts_line(host, port, key) + "\n" for key in keys)
    return path
