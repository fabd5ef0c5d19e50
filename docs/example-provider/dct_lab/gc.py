"""`debian-cloud-tests gc --provider lab --lab-leases DIR`: leases past their expiry, and the
lease of one run whose guard saw it die."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from debian_cloud_tests import expiry


def collect_garbage(now: datetime, lab_leases: str | None = None) -> list[str]:
    """Remove the expired leases in *lab_leases*; returns the machines they held."""
    freed = []
    for lease in sorted(Path(lab_leases or ".").glob("*.lease")):
        host, _, mark = lease.read_text().strip().rpartition(" ")
        if expiry.expired(mark, now):
            lease.unlink()
            freed.append(f"lease of {host} ({lease.stem})")
    return freed


def collect_run(run_id: str, lab_leases: str) -> list[str]:
    """Remove the lease of the dead run *run_id*."""
    lease = Path(lab_leases) / f"{run_id}.lease"
    lease.unlink(missing_ok=True)
    return [lease.stem]
