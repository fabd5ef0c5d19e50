"""The one error the gate raises on purpose: an input it cannot judge.

A bad input must never be mistaken for a verdict, so it has its own exit code (2) and is printed
as one line that names the file, the line when known, and what to do about it.
"""

from __future__ import annotations

#: Exit codes of `debian-cloud-tests gate`; documented in docs/gate.md, never renumber one.
EXIT_PUBLISH = 0
EXIT_HOLD = 1
EXIT_INPUT = 2


class GateInputError(Exception):
    """A file or option the gate cannot use; carries where it is and how to fix it."""

    def __init__(self, where: str, problem: str, fix: str, *, line: int | None = None) -> None:
        super().__init__(problem)
        self.where = where
        self.problem = problem
        self.fix = fix
        self.line = line

    def __str__(self) -> str:
        loc = self.where if self.line is None else f"{self.where}:{self.line}"
        text = f"{loc}: {self.problem}"
        return f"{text}; {self.fix}" if self.fix else text

    def one_line(self) -> str:
        """The message squeezed onto one line, so that CI logs show it whole."""
        return " ".join(str(self).split())
