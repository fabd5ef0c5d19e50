"""The provider seam and its registry.

A provider turns a :class:`LaunchSpec` into a running :class:`Machine` and back into nothing.
Providers are looked up by name through the ``debian_cloud_tests.providers`` entry point group,
this package's own and any other package's alike: a vendor adds one with a line in their own
``pyproject.toml`` (docs/providers.md, "Adding a provider").  A provider's module imports its
cloud SDK only when it is first used, so listing the providers costs no SDK import.
"""

from __future__ import annotations

import abc
import functools
import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SecureBootUnavailableError, UnknownProviderError
from .machine import Machine
from .spec import LaunchSpec

if TYPE_CHECKING:
    from .options import Option

ENTRY_POINT_GROUP = "debian_cloud_tests.providers"


#: an emulated CPU (QEMU's TCG) boots several times slower than a virtualised one
EMULATED_BOOT_BUDGET = 300.0


class Provider(abc.ABC):
    """Launches machines for one platform."""

    name: str = ""
    #: the provider's own command-line options (and ini keys), passed in LaunchSpec.options by
    #: their keys; added to pytest's wherever the provider is installed
    options: tuple[Option, ...] = ()
    #: where its resources live (region, project, cloud): flags of `gc` and `providers`, given to
    #: its gc module's collect_garbage and to :meth:`preflight` by their keys
    scope_options: tuple[Option, ...] = ()
    #: launches may run at the same time, each in a thread of its own (see :mod:`lifecycle`):
    #: True only where launch creates nothing shared with another launch (every resource named
    #: for its launch; lazily made clients guarded) and its SDK clients are thread-safe.  Such a
    #: launch blocks until the instance runs (minutes on a cloud), so N of them one after the
    #: other would take N times as long.  False: launched one after the other from the calling
    #: thread (a QEMU dies with the thread that started it).
    concurrent_launches: bool = False
    #: False for a provider that reaches a host somebody else started: no console, no boot of
    #: its own to judge, no second instance to launch
    starts_machines: bool = True
    #: None where the provider boots its machines with UEFI Secure Boot enforced when the spec
    #: asks (LaunchSpec.secure_boot); else why it cannot, the one line --secure-boot is refused with
    secure_boot_refused: str | None = "it has no way to ask for Secure Boot at launch"
    #: gives its machines a local directory as an apt repository (--upgrade DIR): a local
    #: emulator can, a cloud instance cannot reach this runner's files
    serves_local_repository: bool = False
    #: None where two machines of a run can be let reach each other (Machine.link_to, for the
    #: network_perf suite); else why not, in one line
    peer_link_refused: str | None = "it has no way to let two of its machines reach each other"

    @abc.abstractmethod
    def validate(self, spec: LaunchSpec) -> LaunchSpec:
        """Check the spec before anything is created; return it with defaults filled in.

        Raises:
            UsageError (or a subclass): an option is wrong, naming the fix.
            MissingDependencyError: a program or SDK is missing, naming the package.
        """

    @abc.abstractmethod
    def launch(self, spec: LaunchSpec, run_dir: Path) -> Machine:
        """Start a machine; the caller waits for readiness and always destroys it.

        Args:
            spec: a spec returned by :meth:`validate`.
            run_dir: a private 0700 directory for keys and state, removed by the caller.

        Raises:
            ProviderError: the platform could not start the machine.
        """

    #: seconds from launch to SSH-ready a healthy image takes at most on this platform, with
    #: hardware virtualisation; emulated (TCG) machines get EMULATED_BOOT_BUDGET
    boot_budget_seconds: float = 120.0

    def boot_budget(self, machine: Machine) -> float:
        """The boot budget for *machine*: the platform's, or the emulated one under TCG."""
        if machine.properties().get("accel") == "tcg":
            return EMULATED_BOOT_BUDGET
        return self.boot_budget_seconds

    def properties(self) -> dict[str, str]:
        """JUnit properties describing the platform (versions of the tools it drives)."""
        return {}

    def preflight(self, options: Mapping[str, str] | None = None) -> str:
        """Where this provider would get its credentials and tools, in one line.

        Nothing is created and no cloud is contacted (no token is requested), so it is safe as a
        CI step before a run; no secret is ever part of the answer.

        Args:
            options: what a run would give (``region``, ``os_cloud``), as in ``LaunchSpec.options``.

        Raises:
            MissingDependencyError: the SDK or a program is missing, naming the extra or package.
            UsageError (or a subclass): no credentials or configuration, naming what to set.
        """
        return "nothing needed"


def refuse_secure_boot(provider: Provider, spec: LaunchSpec) -> None:
    """--secure-boot for a provider that cannot enforce it: one line, before anything is made.

    Raises:
        SecureBootUnavailableError: naming the provider and why.
    """
    if spec.secure_boot and provider.secure_boot_refused is not None:
        raise SecureBootUnavailableError(f"--secure-boot with --provider={provider.name}: "
                                         f"{provider.secure_boot_refused}")


def available() -> dict[str, str]:
    """Every provider installed, by name, with where it comes from: the entry points of its
    group, this package's own providers among them (a package's metadata lists them)."""
    return {ep.name: ep.value for ep in sorted(entry_points(group=ENTRY_POINT_GROUP),
                                               key=lambda ep: ep.name)}


@functools.cache
def provider_classes() -> dict[str, type[Provider]]:
    """Every installed provider's class, by name; one whose module cannot be imported (its
    package broken) is left out here and reported by `debian-cloud-tests providers`."""
    classes = {}
    for name, where in available().items():
        module_name, _, attr = where.partition(":")
        try:
            classes[name] = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            continue
    return classes


def get_provider(name: str) -> Provider:
    """Instantiate the provider called *name*.

    Raises:
        UnknownProviderError: no provider of that name is installed.
    """
    known = available()
    if name not in known:
        raise UnknownProviderError(
            f"unknown provider {name!r}; installed: {', '.join(sorted(known))}")
    module_name, _, attr = known[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cls()
