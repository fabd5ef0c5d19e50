"""Each cloud's locator, loaded on use (a cloud's SDK is imported only when asked for)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from importlib import import_module
from typing import Protocol

from ..errors import UsageError
from ..junitprops import Prop
from ..spec import LaunchSpec
from .errors import AliasNotFoundError
from .model import Alias, Offered, Query, newest_first, parse_alias

LOCATORS = {
    "aws": "debian_cloud_tests.providers.aws.images:AwsImages",
    "azure": "debian_cloud_tests.providers.azure.images:AzureImages",
    "gce": "debian_cloud_tests.providers.gce.images:GceImages",
    "openstack": "debian_cloud_tests.providers.openstack.images:OpenStackImages",
}


class Locator(Protocol):
    def offered(self, query: Query, region: str | None) -> list[Offered]:
        """Debian's images matching *query* (in *region*, where images are regional)."""
        ...


def locator(provider: str) -> Locator:
    target = LOCATORS.get(provider)
    if target is None:
        raise UsageError(f"--provider {provider!r}: images are listed for "
                         f"{', '.join(sorted(LOCATORS))}")
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)()  # type: ignore[no-any-return]


def offered(provider: str, query: Query, region: str | None) -> list[Offered]:
    return newest_first(locator(provider).offered(query, region))


def resolve(provider: str, alias: Alias, arch: str, region: str | None,
            found: Locator | None = None, only: Callable[[Offered], bool] | None = None) -> Offered:
    """The newest image *alias* names for *arch* (of those *only* keeps): the one the cloud's
    own pointer (an SSM parameter, a family) names when there is one, else the newest listed."""
    images = newest_first([i for i in (found or locator(provider)).offered(
        Query(alias.version, arch), region) if only is None or only(i)])
    pointed = [i for i in images if i.pointers]
    if not images:
        where = f" in {region}" if region else ""
        raise AliasNotFoundError(f"--image {alias.text}: {provider} offers no Debian {alias.version} "
                                 f"{arch} image{where}; `debian-cloud-tests images --provider "
                                 f"{provider}` lists what it offers")
    return (pointed or images)[0]


def resolve_spec(provider: str, spec: LaunchSpec, region: str | None,
                 found: Locator | None = None,
                 only: Callable[[Offered], bool] | None = None) -> tuple[LaunchSpec, dict[str, str]]:
    """*spec* with an alias in ``--image`` replaced by the image it names (so the run records
    that image), and the alias as a property; unchanged when ``--image`` is the cloud's own id."""
    alias = parse_alias(spec.image)
    if alias is None:
        return spec, {}
    arch = alias.arch or spec.arch.value
    image = resolve(provider, alias, arch, region, found, only)
    return replace(spec, image=image.id), {Prop.IMAGE_ALIAS: alias.text}
