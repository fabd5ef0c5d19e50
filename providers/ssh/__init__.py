"""An already-running host: reach it over SSH with a known host key, create and destroy nothing."""

from .provider import SshProvider

__all__ = ["SshProvider"]
