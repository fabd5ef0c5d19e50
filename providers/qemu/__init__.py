"""Local QEMU, the embedded default: no account, no network beyond 127.0.0.1."""

from .provider import QemuProvider
from .settings import QemuHooks

__all__ = ["QemuHooks", "QemuProvider"]
