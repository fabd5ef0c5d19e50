"""The typed error hierarchy, and the exit code each error means.

Every error a user can cause, or a cloud can cause, has its own class and its own exit code, so
that a pipeline can tell "bad input" from "the cloud failed" from "the image is broken" without
parsing text.  The codes are documented in the README; never renumber one.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable

#: The reader of our output went away (`debian-cloud-tests checks | head -1`): what a shell reports
#: for a program SIGPIPE ended (128 + 13), as `yes | head -1` does; 0 would claim a whole output
#: and, for the gate, a publish verdict nobody read, and 1 is "checks failed / hold".
EXIT_BROKEN_PIPE = 141


class DCTError(Exception):
    """Base of every error this project raises on purpose; carries its exit code."""

    exit_code = 20
    #: A provider problem (the cloud, not the image) is reported as a JUnit *error*.
    provider_problem = False

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        #: Extra lines (e.g. the last console lines) shown after the one-line message.
        self.detail = detail

    def __str__(self) -> str:
        return self.message if not self.detail else f"{self.message}\n{self.detail}"


class UsageError(DCTError):
    """An option is missing, unknown or contradicts another one."""

    exit_code = 20


class UnknownProviderError(UsageError):
    """No provider of that name is registered."""

    exit_code = 21


class ImageNotFoundError(UsageError):
    """The candidate image does not exist or cannot be read."""

    exit_code = 22


class ImageFormatError(UsageError):
    """The file is not a disk image in a format we accept."""

    exit_code = 23


class ArchFirmwareError(UsageError):
    """The requested arch, firmware and image do not fit together."""

    exit_code = 24


class SecureBootUnavailableError(UsageError):
    """--secure-boot where it cannot be given: BIOS firmware, a firmware build with no keys
    enrolled, or a provider that cannot enforce it."""

    exit_code = 36


class UnknownDatasourceError(UsageError):
    """--datasource names no platform the run can emulate."""

    exit_code = 26


class DatasourcePlatformError(UsageError):
    """The emulated cloud has no machines of that arch and firmware (arm64 instances boot UEFI)."""

    exit_code = 27


class DatasourceContradictionError(UsageError):
    """The image is built for one cloud and the datasource, not given on the command line, is
    another's."""

    exit_code = 28


class InstanceTypeTableError(UsageError):
    """An instance-type table (the shipped one or --instance-types) has a malformed entry."""

    exit_code = 37


class MissingDependencyError(DCTError):
    """A program or package the provider needs is not installed."""

    exit_code = 25


class ProviderError(DCTError):
    """The platform failed: not a defect of the image."""

    exit_code = 30
    provider_problem = True


class CloudError(ProviderError):
    """A cloud refused or failed a call; *code* is the cloud's own name for the failure (an
    error code, a reason or an HTTP status)."""

    def __init__(self, message: str, code: str | int = "", *, detail: str = "") -> None:
        super().__init__(message, detail=detail)
        self.code = code


class QuotaError(CloudError):
    """An account or project limit (instances, cores, addresses, groups) is reached."""


class CapacityError(CloudError):
    """The cloud has no capacity for the machine type where it was asked for, right now."""


class ThrottledError(CloudError):
    """The cloud kept throttling the calls after every retry."""


class CredentialsError(UsageError):
    """No credentials, or the cloud refused them: the user's to fix, before anything is created."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class NoFreePortError(ProviderError):
    """No local TCP port could be reserved for SSH forwarding."""

    exit_code = 31


class BootError(DCTError):
    """The machine started but the image never booted (no SSH host keys on the console)."""

    exit_code = 32


class SSHNotReadyError(DCTError):
    """The image booted but sshd never completed a handshake within the boot timeout."""

    exit_code = 33


class HostKeyMismatchError(DCTError):
    """The SSH server presented a key that is not the one the guest announced."""

    exit_code = 34


class BuildError(DCTError):
    """An image build failed."""

    exit_code = 40


class CleanupError(DCTError):
    """One or more resources could not be removed; lists every failure, not the first."""

    exit_code = 35

    def __init__(self, errors: list[BaseException]) -> None:
        lines = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
        super().__init__(f"cleanup failed: {lines}")
        self.errors = errors


def swept(deleted: list[str], failures: list[BaseException]) -> list[str]:
    """The end of a garbage collection pass: what it *deleted*, or a CleanupError listing every
    failure (with what was deleted all the same as its detail)."""
    if failures:
        error = CleanupError(failures)
        error.detail = f"deleted: {', '.join(deleted) or 'nothing'}"
        raise error
    return deleted


def note_cleanup_failures(exc: BaseException, failures: list[BaseException]) -> None:
    """Attach what a failed launch could not remove to the error that made it fail."""
    if not failures:
        return
    note = "cleanup also failed: " + "; ".join(str(f) for f in failures)
    if isinstance(exc, DCTError):
        exc.detail = f"{exc.detail}\n{note}".strip()
    else:
        exc.add_note(note)


def guarded(command: Callable[[], int]) -> int:
    """Run a command-line entry point: a DCTError becomes its one line and its exit code; output
    piped into a reader that stops early (`| head`) ends quietly with EXIT_BROKEN_PIPE."""
    try:
        rc = int(command())
        sys.stdout.flush()  # a reader gone shows here, not as a traceback when Python exits
        return rc
    except DCTError as exc:
        print(f"debian-cloud-tests: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("debian-cloud-tests: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_gone():
            raise  # another pipe or a socket broke: a real error, not the end of our reader
        # Python flushes stdout once more at exit: aim it at /dev/null so that cannot fail too
        # (the recipe of the Python docs' "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error on it)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))
