"""A test-image bootstrap stopped by Ctrl-C leaves nothing: mmdebstrap and what it started are
stopped as a group and waited for, the chroot's mounts are taken down, the partial tree removed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from debian_cloud_tests import mounts

BUILD = ("from debian_cloud_tests.testimage.builder import Recipe, _base_tree; "
         "_base_tree(Recipe())")


@pytest.mark.cost(20)
def test_interrupted_bootstrap_leaves_no_mount_and_no_tree(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("mmdebstrap"):
        pytest.skip("needs root and mmdebstrap")
    cache = tmp_path / "cache"
    # SIGINT at its default whatever this runner inherited (a shell's background job ignores it,
    # and Python then raises no KeyboardInterrupt)
    proc = subprocess.Popen([sys.executable, "-c", BUILD], env={**os.environ, "DCT_CACHE_DIR": str(cache)},
                            start_new_session=True, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not mounts.under(cache) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mounts.under(cache), "the bootstrap never mounted its chroot's /proc"
    # to the builder alone, as a CI runner's stop or `kill` reaches it: what it started must be
    # stopped by it (Ctrl-C in a terminal would reach mmdebstrap too)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, err[-2000:]
    assert not mounts.under(cache), mounts.under(cache)
    trees = cache / "trees"
    assert sorted(p.suffix for p in trees.iterdir()) == [".lock"], list(trees.iterdir())
    assert subprocess.run(["pgrep", "-f", str(cache)], capture_output=True).returncode == 1
