"""Expiry marks: when `gc` may delete what a run made on a cloud, written on the resource itself.

Every cloud provider writes the same mark (its run's end plus :data:`TTL`) in the form that cloud
allows where it keeps it: a tag, a label, metadata, a name or a description.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: how long a run's resources may live before gc may delete them
TTL = timedelta(hours=3)
#: tags, metadata and descriptions
ISO = "%Y-%m-%dT%H:%M:%SZ"
#: where only lower-case letters, digits, "-" and "_" are allowed (GCE labels, resource names)
COMPACT = "%Y%m%dt%H%M%Sz"


def expires(now: datetime | None = None) -> datetime:
    """When what a run makes from *now* on may be collected."""
    return (now or datetime.now(UTC)) + TTL


def mark(now: datetime | None = None, compact: bool = False) -> str:
    """The expiry of what a run makes from *now* on, as written on the resource."""
    return expires(now).strftime(COMPACT if compact else ISO)


def parse(value: str | None) -> datetime | None:
    """A mark in either form (or any ISO 8601 time) as an aware datetime; None when it is not
    one, so a resource somebody else tagged is never taken for expired."""
    if not value:
        return None
    try:
        return datetime.strptime(value, COMPACT).replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def expired(value: str | None, now: datetime) -> bool:
    """Whether a resource marked *value* may be collected at *now* (never one without a mark)."""
    when = parse(value)
    return when is not None and when < now
