"""Google Compute Engine: boot a public or private image, reach it over SSH on its external
address, leave nothing behind.

Nothing here imports the Google SDK at import time: it is loaded when the provider is first used.
"""

from .provider import GceProvider

__all__ = ["GceProvider"]
