"""Boot progress on the terminal: a live line on a TTY, one plain line per stage elsewhere.

A maintainer at their desk sees a spinner, the stage the console shows and the time ticking;
a CI log gets the same facts as stable lines it can keep (no control characters).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
READY = "ssh"


class BootProgress:
    """Called with (stage, elapsed) on every readiness poll; renders as the terminal allows."""

    def __init__(self, label: str, write_line: Callable[[str], None],
                 rewrite: Callable[[str], None] | None = None,
                 quiet: Callable[[], Any] = nullcontext) -> None:
        """*rewrite* replaces the current terminal line (given on a TTY only); *quiet* is a
        context in which output reaches the terminal despite pytest's capture."""
        self.label = label
        self._write_line = write_line
        self._rewrite = rewrite
        self._quiet = quiet
        self.stages: list[tuple[str, float]] = []
        self._live = False

    def __call__(self, stage: str, elapsed: float) -> None:
        changed = bool(stage) and (not self.stages or self.stages[-1][0] != stage)
        if changed:
            self.stages.append((stage, elapsed))
        with self._quiet():
            if self._rewrite is None:
                if changed:
                    self._write_line(f"[{self.label}] {stage:<13} {elapsed:6.1f}s")
            elif stage == READY:
                self._rewrite(self.summary(elapsed))
                self._write_line("")
            else:
                spin = SPINNER[int(elapsed * 5) % len(SPINNER)]
                self._rewrite(f"{spin} [{self.label}] booting {elapsed:6.1f}s  "
                              f"{self.stages[-1][0] if self.stages else 'starting'} …")

    def summary(self, elapsed: float) -> str:
        """One line with every stage and when it was reached."""
        marks = " · ".join(f"{s} {t:.1f}s" for s, t in self.stages if s != READY)
        return f"[{self.label}] ssh ready in {elapsed:.1f}s" + (f" ({marks})" if marks else "")


def for_pytest(config: Any, label: str) -> BootProgress:
    """A progress for pytest's terminal: live when it is a TTY, plain lines otherwise."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    quiet = capman.global_and_fixture_disabled if capman is not None else nullcontext
    if reporter is None:
        return BootProgress(label, lambda line: None)
    rewrite = None
    if reporter.isatty and config.getoption("verbose") >= 0:
        started = False

        def rewrite(line: str) -> None:
            nonlocal started
            if not started:  # leave pytest's current line (a test file's name) intact
                reporter.ensure_newline()
                started = True
            reporter.rewrite(line, erase=True)
    return BootProgress(label, reporter.write_line, rewrite, quiet)
