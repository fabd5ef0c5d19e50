"""config.apt_update_works says what to do about the failure apt-get update reported: a
certificate the guest does not trust points at --ca-cert (a TLS-intercepting proxy on the way,
as apt words it in Debian 12 and 13), anything else at the image's sources."""

from __future__ import annotations

import pytest

from suites.config.test_apt import apt_failure_remedy

UNTRUSTED = {
    "trixie (OpenSSL)": "SSL connection failed: error:0A000086:SSL routines::certificate verify "
                        "failed / Success [IP: 203.0.113.80 443]",
    "bookworm (GnuTLS)": "Certificate verification failed: The certificate is NOT trusted. The "
                         "certificate issuer is unknown.  Could not handshake: Error in the "
                         "certificate verification. [IP: 203.0.113.80 443]",
}


@pytest.mark.parametrize("reason", UNTRUSTED.values(), ids=UNTRUSTED.keys())
def test_an_untrusted_certificate_points_at_the_ca_option(reason: str) -> None:
    remedy = apt_failure_remedy(["W: Failed to fetch https://deb.debian.org/debian/dists/trixie/"
                                 "InRelease", reason])
    assert "--ca-cert" in remedy and "/etc/apt" not in remedy


def test_other_failures_point_at_the_sources() -> None:
    remedy = apt_failure_remedy(["E: The repository 'http://deb.debian.org/debian bookwrm "
                                 "Release' does not have a Release file."])
    assert "/etc/apt" in remedy and "--ca-cert" not in remedy
