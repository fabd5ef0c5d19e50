"""The catalogue of checks, generated from the suites' code: id, suite, where it applies, what it
verifies.  `debian-cloud-tests checks` prints it as a table, Markdown (for the README) or JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass

import pytest

from . import applicability


@dataclass(frozen=True)
class CheckInfo:
    id: str
    suite: str
    applies: str  # "everywhere" or "provider=aws; arch=arm64"
    verifies: str  # the docstring's first line


class _Collector:
    """A pytest plugin that records every suite item at collection and runs nothing."""

    def __init__(self) -> None:
        self.checks: list[CheckInfo] = []

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from .plugin import _is_suite_item, check_id

        for item in items:
            if not _is_suite_item(item):
                continue
            cid = check_id(item)
            where = "; ".join(applicability.describe(k, v)
                              for m in item.iter_markers("applies") for k, v in m.kwargs.items())
            doc = (getattr(item, "function", None).__doc__ or "").strip().splitlines()  # type: ignore[union-attr]
            self.checks.append(CheckInfo(cid, cid.split(".")[0], where or "everywhere",
                                         doc[0] if doc else ""))


def collect() -> list[CheckInfo]:
    """Every check of the installed suites, in collection order."""
    from .plugin import suites_dir

    collector = _Collector()
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        rc = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", str(suites_dir())],
                         plugins=[collector])
    if rc not in (0, 5):
        raise RuntimeError(f"collecting the suites failed:\n{sink.getvalue()[-2000:]}")
    return collector.checks


def render(checks: list[CheckInfo], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(c) for c in checks], indent=1)
    if fmt == "markdown":
        lines = [f"{len(checks)} checks.", "", "| id | applies | verifies |", "|---|---|---|"]
        lines += [f"| `{c.id}` | {c.applies} | {c.verifies.replace('|', '/')} |" for c in checks]
        return "\n".join(lines)
    width = max((len(c.id) for c in checks), default=10)
    where = max((len(c.applies) for c in checks), default=10)
    rows = [f"{'ID':<{width}}  {'APPLIES':<{where}}  VERIFIES"]
    rows += [f"{c.id:<{width}}  {c.applies:<{where}}  {c.verifies}" for c in checks]
    rows.append(f"{len(checks)} checks")
    return "\n".join(rows)


def _run(args: argparse.Namespace) -> int:
    checks = collect()
    if args.suite:
        checks = [c for c in checks if c.suite in args.suite]
    print(render(checks, args.format))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("checks", help="list every check: id, suite, where it applies, what it verifies")
    parser.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    parser.add_argument("--suite", action="append", help="only this suite (repeatable)")
    parser.set_defaults(func=_run)


if __name__ == "__main__":
    sys.exit(_run(argparse.Namespace(format="table", suite=None)))
