"""debian-cloud-tests: boot a Debian cloud image, check it conforms, decide whether to publish."""

__version__ = "0.1.0"
