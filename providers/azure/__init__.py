"""Microsoft Azure: boot a marketplace, gallery or managed image in a resource group of its own,
reach it over SSH on its public address, and delete the group as a whole.

Nothing here imports the Azure SDK at import time: it is loaded when the provider is first used.
"""

from .provider import AzureProvider

__all__ = ["AzureProvider"]
