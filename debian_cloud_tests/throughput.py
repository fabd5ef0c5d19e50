"""The network throughput between two instances: iperf3's JSON report read into one figure, and
that figure held against the instance type's floor.

Apart from the suite so that the reading and the verdict are tested without a machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .junitprops import Prop

#: the JUnit property holding the figure (testcase and testsuite), which the baseline compares
PROPERTY = Prop.THROUGHPUT_MBPS.value


class ReportError(ValueError):
    """iperf3's output is not a report of a finished test (it says why, or nothing usable)."""


@dataclass(frozen=True)
class Measurement:
    """What one iperf3 client run measured, from the receiver's side."""

    mbps: float
    seconds: float
    retransmits: int | None = None


def parse_report(text: str) -> Measurement:
    """The received rate of an `iperf3 --json` client run: the receiver's count, since what the
    sender queued may never have arrived.

    Raises:
        ReportError: not JSON, iperf3's own error, or a report without a received sum.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        raise ReportError(f"iperf3 printed no JSON report: {text.strip()[:200]!r}") from None
    if not isinstance(doc, dict):
        raise ReportError(f"iperf3's report is not a JSON object: {text.strip()[:200]!r}")
    if doc.get("error"):
        raise ReportError(f"iperf3 failed: {doc['error']}")
    end = doc.get("end")
    received = end.get("sum_received") if isinstance(end, dict) else None
    if not isinstance(received, dict) or "bits_per_second" not in received:
        raise ReportError("iperf3's report has no received total (end.sum_received)")
    try:
        bps = float(received["bits_per_second"])
        seconds = float(received.get("seconds", 0.0))
    except (TypeError, ValueError):
        raise ReportError(f"iperf3's received total is not a number: {received!r}") from None
    sent = end.get("sum_sent") if isinstance(end, dict) else None
    retransmits = sent.get("retransmits") if isinstance(sent, dict) else None
    return Measurement(round(bps / 1e6, 1), seconds,
                       retransmits if isinstance(retransmits, int) else None)


def below_floor(mbps: float, floor: float, provider: str, instance_type: str) -> str | None:
    """The one line a figure below the floor fails with; None when it meets the floor."""
    if mbps >= floor:
        return None
    return (f"{mbps:g} Mbit/s between two {provider} {instance_type} instances, below the "
            f"floor of {floor:g} Mbit/s the instance-type table sets for {instance_type}: the "
            "image's NIC driver or network configuration (offloads, MTU, queues), or the "
            "platform's network, falls short")
