"""The throughput check's parts without a machine: iperf3's report read, the floor held, the
platform's rate limiter shaping a link, the figure compared with a baseline's."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from debian_cloud_tests import iperfrun, throughput

#: the parts of a real iperf3 3.12 client report (`iperf3 -c … -J`) the check reads
REPORT = {
    "start": {"version": "iperf 3.12", "connected": [{"local_host": "198.18.0.1"}]},
    "intervals": [],
    "end": {
        "sum_sent": {"start": 0, "end": 5.000119, "seconds": 5.000119, "bytes": 24340070,
                     "bits_per_second": 38943112.5, "retransmits": 12, "sender": True},
        "sum_received": {"start": 0, "end": 5.004004, "seconds": 5.004004, "bytes": 23886330,
                         "bits_per_second": 38187123.4, "sender": True},
    },
}
#: what iperf3 -J prints when it cannot reach its server
REFUSED = ('{\n\t"start":\t{\n\t\t"connected":\t[],\n\t\t"version":\t"iperf 3.12"\n\t},\n'
           '\t"intervals":\t[],\n\t"end":\t{\n\t},\n'
           '\t"error":\t"unable to connect to server: Connection refused"\n}\n')


def test_the_received_rate_is_the_figure() -> None:
    measured = throughput.parse_report(json.dumps(REPORT))
    assert measured == throughput.Measurement(38.2, 5.004004, 12)


@pytest.mark.parametrize(("text", "says"), [
    (REFUSED, "iperf3 failed: unable to connect to server: Connection refused"),
    ("iperf3: error - unable to connect", "iperf3 printed no JSON report"),
    ("", "iperf3 printed no JSON report"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"end": {"sum_sent": REPORT["end"]["sum_sent"]}}), "no received total"),
    (json.dumps({"end": {"sum_received": {"bits_per_second": "fast"}}}), "not a number"),
])
def test_a_report_without_a_figure_says_why(text: str, says: str) -> None:
    with pytest.raises(throughput.ReportError, match=says):
        throughput.parse_report(text)


def test_the_floor_is_met_at_or_above_it() -> None:
    assert throughput.below_floor(40.0, 40.0, "qemu", "2x1024") is None
    assert throughput.below_floor(2500.5, 2500, "azure", "Standard_D2s_v5") is None


def test_below_the_floor_one_line_names_figure_floor_and_instance_type() -> None:
    said = throughput.below_floor(1.8, 10, "qemu", "1x1024")
    assert said is not None and "\n" not in said
    assert said.startswith("1.8 Mbit/s between two qemu 1x1024 instances, below the floor of "
                           "10 Mbit/s the instance-type table sets for 1x1024")


def test_the_bundle_holds_iperf3_and_its_libraries_only(tmp_path: Path) -> None:
    for name in ("usr/bin/iperf3", "usr/lib/x86_64-linux-gnu/libiperf.so.0.0.0",
                 "usr/lib/x86_64-linux-gnu/libsctp.so.1.0.19", "usr/share/doc/iperf3/copyright",
                 "etc/init.d/iperf3"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "usr/lib/x86_64-linux-gnu/libiperf.so.0").symlink_to("libiperf.so.0.0.0")
    with tarfile.open(fileobj=io.BytesIO(iperfrun.bundle(tmp_path))) as tar:
        names = sorted(tar.getnames())
    assert names == ["iperf3", "lib/libiperf.so.0", "lib/libiperf.so.0.0.0", "lib/libsctp.so.1.0.19"]


def _relay(tmp_path: Path, rate: float) -> tuple[subprocess.Popen[str], dict[str, socket.socket]]:
    """The rate limiter between two bound sockets standing for the guests' NICs."""
    guests = {}
    for side in ("a", "b"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(tmp_path / f"guest-{side}.sock"))
        sock.settimeout(5)
        guests[side] = sock
    (tmp_path / "relay").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "debian_cloud_tests.providers.qemu.peerrelay",
                             str(tmp_path / "relay"), str(rate), str(tmp_path / "guest-a.sock"),
                             str(tmp_path / "guest-b.sock")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, guests


def test_the_platform_rate_limit_shapes_both_ways(tmp_path: Path) -> None:
    """What one side sends reaches the other no faster than the rate, each way; frames that
    would queue too long are dropped, as a full queue drops them."""
    rate, frame, frames = 200_000.0, b"x" * 1000, 200
    proc, guests = _relay(tmp_path, rate)
    try:
        for src, dst in (("a", "b"), ("b", "a")):
            received: list[int] = []
            reader = threading.Thread(target=_drain, args=(guests[dst], received))
            reader.start()
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            started = time.monotonic()
            for _ in range(frames):  # paced at twice the rate: what is too much waits or is lost
                sender.sendto(frame, str(tmp_path / "relay" / f"{src}.sock"))
                time.sleep(len(frame) / rate / 2)
            reader.join()
            sender.close()
            elapsed = time.monotonic() - started
            got = sum(received)
            assert got >= frames * len(frame) / 4, (src, got)  # it passes, each way
            assert got <= rate * elapsed + 2 * len(frame), (src, got, elapsed)  # no faster
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
        assert proc.stdout is not None
        proc.stdout.close()
        for sock in guests.values():
            sock.close()


def _drain(sock: socket.socket, received: list[int]) -> None:
    """Count what reaches *sock* until nothing has for half a second."""
    sock.settimeout(0.5)
    while True:
        try:
            received.append(len(sock.recv(65536)))
        except TimeoutError:
            return
