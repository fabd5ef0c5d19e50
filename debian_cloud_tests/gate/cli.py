"""`debian-cloud-tests gate`: read JUnit results, answer publish (0) or hold (1); 2 on bad input.

The exit code is the interface for pipelines, so nothing may blur it: usage and input errors
are one line on stderr with exit 2, never a traceback (whose exit code 1 would read as "hold").
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from .. import shipped
from . import baseline, junit, registered
from .errors import EXIT_HOLD, EXIT_INPUT, EXIT_PUBLISH, GateInputError
from .export import json_text, junit_text
from .policy import load_policy
from .report import markdown, print_terminal
from .summary import headline
from .verdict import Verdict, evaluate

PROG = "debian-cloud-tests gate"
DESCRIPTION = ("Decide whether the image the JUnit results describe may be published: exit 0 publish, "
               "1 hold (every reason is listed), 2 usage or input error.")


def _sha256(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a SHA-256 (64 hex digits; see sha256sum IMAGE)")
    return text.lower()


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (write YYYY-MM-DD)") from None


def _one_line_errors(parser: argparse.ArgumentParser) -> Callable[[str], NoReturn]:
    """argparse prints the whole usage on error; a CI log reads better with one line and the fix."""
    def error(message: str) -> NoReturn:
        parser.exit(EXIT_INPUT, f"{PROG}: error: {message}; see {PROG} --help\n")
    return error


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", type=Path, metavar="JUNIT.xml",
                        help="JUnit XML files of the test jobs (reruns included)")
    parser.add_argument("--policy", type=Path, metavar="TOML",
                        help="publication policy: a TOML file, or `debian` for Debian's, shipped with "
                        "the package (default: built-in and strict, see docs/gate.md)")
    parser.add_argument("--baseline", type=Path, action="append", default=[], metavar="FILE",
                        help="JUnit XML or JSON facts of the last published image (repeatable, one per arch)")
    parser.add_argument("--image-sha256", action="append", default=[], type=_sha256, metavar="HEX",
                        help="the image being gated; results of any other image hold (repeatable)")
    parser.add_argument("--registered", action="append", default=[], type=registered.parse,
                        metavar="ID@REGION", help="an image registered on a cloud that a run must "
                        "have tested (repeatable; `publish` gives one per copy)")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the verdict as JSON")
    parser.add_argument("--junit-out", type=Path, metavar="FILE", help="write a merged JUnit report")
    parser.add_argument("--today", type=_date, metavar="YYYY-MM-DD",
                        help="the date deny entries expire against (default: today, UTC)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line")


def _no_extras(parser: argparse.ArgumentParser) -> Callable[..., tuple[argparse.Namespace, list[str]]]:
    """Arguments after `gate` all belong to it; left to the main parser, an unknown one would be
    reported with the main command's multi-line usage instead of one line naming the fix."""
    parse = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        known, extras = parse(args, namespace)
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return known, extras
    return parse_known_args


def add_parser(subparsers: Any) -> None:
    """Add the `gate` subcommand to the main command's subparsers."""
    parser = subparsers.add_parser("gate", help="decide publish or hold from JUnit results",
                                   description=DESCRIPTION)
    _configure(parser)
    parser.error = _one_line_errors(parser)  # type: ignore[method-assign]
    parser.parse_known_args = _no_extras(parser)  # type: ignore[method-assign]
    parser.set_defaults(func=run)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise GateInputError(str(path), f"cannot write the output ({exc.strerror})",
                             "choose a writable path") from None


def _judge(args: argparse.Namespace) -> Verdict:
    policy = load_policy(shipped.policy_path(args.policy))
    runs = junit.load(list(args.results))
    baselines = [facts for path in args.baseline for facts in baseline.load(path)]
    today = args.today or dt.datetime.now(dt.UTC).date()
    return evaluate(runs, policy, today=today, image_sha256=tuple(args.image_sha256), baselines=baselines,
                    registered=tuple(args.registered))


def run(args: argparse.Namespace) -> int:
    """Judge, print the summary, write the requested reports; the exit code is the verdict."""
    try:
        verdict = _judge(args)
        if args.quiet:
            print(headline(verdict))
        else:
            print_terminal(verdict, sys.stdout)
        for path, render in ((args.markdown, markdown), (args.json, json_text), (args.junit_out, junit_text)):
            if path is not None:
                _write(path, render(verdict))
    except GateInputError as exc:
        print(f"{PROG}: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        raise  # our reader went away (`| head`): errors.guarded ends quietly, it is no crash
    except Exception as exc:  # a crash must not exit 1, which pipelines read as an ordinary hold
        print(f"{PROG}: error: internal error ({type(exc).__name__}: {exc}); "
              "please report it with the input files", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_PUBLISH if verdict.publish else EXIT_HOLD


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: `python -m debian_cloud_tests.gate …`."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    _configure(parser)
    parser.error = _one_line_errors(parser)  # type: ignore[method-assign]
    return run(parser.parse_args(argv))
