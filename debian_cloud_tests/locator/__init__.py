"""The Debian images a cloud offers, newest first, and the aliases (`debian-13`) that name the
newest one for an arch: `debian-cloud-tests images`, and `--image debian-13` on any cloud
provider."""

from .model import ALIASES, Alias, Offered, Query, parse_alias, parse_release

__all__ = ["ALIASES", "Alias", "Offered", "Query", "parse_alias", "parse_release"]
