"""Amazon EC2: launch an AMI, reach it over SSH on its public address, leave nothing behind.

Nothing here imports boto3 at import time: the SDK is loaded when the provider is first used.
"""

from .provider import AwsProvider

__all__ = ["AwsProvider"]
