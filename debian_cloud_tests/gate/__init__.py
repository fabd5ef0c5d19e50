"""The publication gate: JUnit results + policy → publish (exit 0) or hold (exit 1).

Reads the JUnit XML written by the test jobs (ours or any other producer's), judges it against
a TOML policy and, optionally, the last published image's facts, and explains every reason to
hold.  Inputs it cannot trust are errors (exit 2), never a verdict.  See docs/gate.md.
"""

from __future__ import annotations

from .errors import EXIT_HOLD, EXIT_INPUT, EXIT_PUBLISH, GateInputError

__all__ = ["EXIT_HOLD", "EXIT_INPUT", "EXIT_PUBLISH", "GateInputError"]
