"""Local QEMU, the embedded default: no account, no network beyond 127.0.0.1."""

from .provider import QemuProvider

__all__ = ["QemuProvider"]
