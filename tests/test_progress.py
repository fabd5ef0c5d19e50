"""Boot progress: a live line on a TTY (spinner, stage, time; a summary once SSH is ready) and
plain, stable lines in a log; checked on the renderer and on a real run under a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from debian_cloud_tests.plugin import suites_dir
from debian_cloud_tests.progress import SPINNER, BootProgress

from .conftest import run_suites
from .fakes.sshd import Sshd

POLLS = [("", 0.1), ("firmware", 0.4), ("firmware", 0.6), ("kernel", 2.9), ("kernel", 3.1),
         ("ssh", 33.9)]


def _render(live: bool) -> tuple[list[str], list[str]]:
    lines: list[str] = []
    rewrites: list[str] = []
    progress = BootProgress("qemu", lines.append, rewrites.append if live else None)
    for stage, elapsed in POLLS:
        progress(stage, elapsed)
    return lines, rewrites


def test_plain_lines_say_each_stage_once() -> None:
    lines, _ = _render(live=False)
    assert [" ".join(line.split()) for line in lines] == [
        "[qemu] firmware 0.4s", "[qemu] kernel 2.9s", "[qemu] ssh 33.9s"]


def test_live_line_ticks_then_ends_with_a_summary() -> None:
    lines, rewrites = _render(live=True)
    assert len(rewrites) == len(POLLS)  # every poll redraws: the time ticks while a stage lasts
    assert all(r[0] in SPINNER for r in rewrites[:-1])
    assert "kernel" in rewrites[-2] and "3.1s" in rewrites[-2]
    assert rewrites[-1] == "[qemu] ssh ready in 33.9s (firmware 0.4s · kernel 2.9s)"
    assert lines == [""]  # the summary line is closed, so pytest's next output starts afresh


def _args(server: Sshd) -> list[str]:
    return ["--provider=ssh", "--image=debian-12-genericcloud-amd64",
            f"--host=root@127.0.0.1:{server.port}", f"--ssh-key={server.client_key}",
            f"--host-key={server.host_key}", "--boot-timeout=20",
            f"{suites_dir()}/metadata/test_metadata.py::test_arch_matches"]


def _run_on_a_tty(cmd: list[str], cwd: Path, timeout: float = 120) -> str:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=follower, stdout=follower, stderr=follower,
                            env={**os.environ, "TERM": "xterm", "COLUMNS": "120"})
    os.close(follower)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed its side
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(leader)
    return out.decode(errors="replace")


def test_a_terminal_gets_the_live_line_and_a_log_gets_plain_lines(sshd: Sshd, tmp_path: Path) -> None:
    tty_out = _run_on_a_tty([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             *_args(sshd)], tmp_path)
    assert "[ssh] ssh ready in" in tty_out, tty_out
    assert "\r" in tty_out.split("[ssh] ssh ready in")[0], tty_out  # redrawn in place
    (tmp_path / "log").mkdir()
    *options, check = _args(sshd)
    logged = run_suites(tmp_path / "log", *options, select=check, timeout=120)
    assert "[ssh] ssh " in logged.stdout, logged.explain()
    assert "ssh ready in" not in logged.stdout and not any(c in logged.stdout for c in SPINNER)
