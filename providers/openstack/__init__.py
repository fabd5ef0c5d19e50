"""OpenStack: boot a Glance image on Nova, reach it over SSH on its address, leave nothing behind.

Nothing here imports openstacksdk at import time: it is loaded when the provider is first used.
"""

from .provider import OpenStackProvider

__all__ = ["OpenStackProvider"]
