"""This runner's address as a cloud sees it, for firewall rules that open SSH to the runner only."""

from __future__ import annotations

import ipaddress
import os
import urllib.request

from .errors import ProviderError, UsageError

CHECKIP_URL = "https://checkip.amazonaws.com"


def runner_cidr(provider: str, address_var: str = "DCT_SOURCE_ADDRESS",
                url_var: str = "DCT_CHECKIP_URL", error: type[ProviderError] = ProviderError) -> str:
    """The runner's address as a /32 (or /128).

    *address_var* names it outright (a runner behind a known NAT); otherwise an echo service
    (*url_var*, default AWS's checkip) says where our calls come from.  Never every address.
    """
    given = os.environ.get(address_var, "").strip()
    url = os.environ.get(url_var, CHECKIP_URL)
    if not given:
        if not url.startswith(("https://", "http://")):
            raise UsageError(f"{url_var} {url!r}: give an http(s) URL")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                given = resp.read(100).decode("ascii", "replace").strip()
        except (OSError, ValueError) as exc:
            raise error(f"{provider}: cannot learn this runner's public address from {url} ({exc}); "
                        f"set {address_var} to it") from None
    try:
        addr = ipaddress.ip_address(given)
    except ValueError:
        raise UsageError(f"{provider}: {given[:60]!r} is not an IP address ({address_var} or the "
                         f"answer of {url})") from None
    if addr.is_unspecified:
        raise UsageError(f"{provider}: refusing to open SSH to every address; set {address_var}")
    return f"{addr}/{addr.max_prefixlen}"
