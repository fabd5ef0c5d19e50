"""`debian-cloud-tests run --instances 2` on QEMU: two real machines from the built image, tested at
once, each with its own JUnit file, and each a different instance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import in_private_network, junit_span, parse_junit

pytestmark = pytest.mark.e2e


# two boots at once; the parallel runs' handling without boots: tests/test_cli_parallel.py
@pytest.mark.matrix
@pytest.mark.cost(250)
def test_two_instances_of_one_image_are_tested_at_once(good_image: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "debian_cloud_tests.cli", "run", f"--image={good_image}",
           "--instances=2", f"--output={tmp_path / 'out'}", "--name=two", "--",
           "--instance-type=1x1024", "--qemu-network=user", "-k", "metadata"]
    proc = subprocess.run(in_private_network(cmd), capture_output=True, text=True, timeout=1200,
                          cwd=tmp_path)
    explain = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, explain
    ids = set()
    for label in ("qemu-1", "qemu-2"):
        checks, _, props = parse_junit(tmp_path / "out" / f"two-{label}.xml")
        ran = {c: s for c, s in checks.items() if c.startswith("metadata.")}
        assert ran and set(ran.values()) <= {"passed", "skipped"}, (label, checks)
        assert ran["metadata.instance_id_matches"] == "passed", (label, checks)
        ids.add(props["instance_id"])
    assert len(ids) == 2, ids  # two machines, not one tested twice
    (s1, e1), (s2, e2) = (junit_span(tmp_path / "out" / f"two-{label}.xml") for label in ("qemu-1", "qemu-2"))
    assert s2 < e1 and s1 < e2, (s1, e1, s2, e2)  # the boots overlapped
