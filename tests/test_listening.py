"""config.listening_sockets_allowlisted reads ss's local addresses: the loopback ones, which
nothing beyond the machine reaches, are told from the rest in every form ss prints."""

from __future__ import annotations

import pytest

from suites.config.test_hardening import on_loopback


@pytest.mark.parametrize("local", ["127.0.0.1:25", "[::1]:631", "127.0.0.53%lo:53",
                                   "127.0.0.54:53", "[::ffff:127.0.0.1]:8080"])
def test_loopback_addresses(local: str) -> None:
    assert on_loopback(local)


@pytest.mark.parametrize("local", ["*:22", "0.0.0.0:8080", "[::]:8080", "10.0.2.15%eth0:68",
                                   "[fe80::5054:ff:fe12:3456]%eth0:546", "192.0.2.1:123"])
def test_addresses_others_reach(local: str) -> None:
    assert not on_loopback(local)
