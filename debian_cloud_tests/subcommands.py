"""The subcommands other modules add to `debian-cloud-tests`, each listed even when it cannot load.

A module that fails to import (a dependency missing or broken) must not make its subcommand
vanish, which would read as "no such command": the subcommand stays, and running it is one line
naming the module and what is missing, with the exit code of a missing dependency (25).
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType
from typing import Any

from .errors import MissingDependencyError

PROG = "debian-cloud-tests"

#: module (below debian_cloud_tests) -> the subcommands its add_parser() adds
MODULES: dict[str, tuple[str, ...]] = {
    "gate.cli": ("gate",),
    "catalogue": ("checks",),
    "audit.coverage": ("audit-coverage",),
    "gc": ("gc",),
    "faibuild.cli": ("build",),
    "pipeline.cli": ("pipeline", "publish"),
    "locator.cli": ("images",),
}


def _cannot_load(command: str, name: str, exc: ImportError) -> MissingDependencyError:
    return MissingDependencyError(f"{command}: cannot load {name}: {exc}")


def load(module: str, command: str) -> ModuleType:
    """debian_cloud_tests.<module>, or a MissingDependencyError naming *command* and the cause."""
    name = f"debian_cloud_tests.{module}"
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise _cannot_load(command, name, exc) from None


def add_all(sub: Any) -> None:
    """Add every module's subcommands; a module that cannot load gets stand-ins that fail."""
    for module, commands in MODULES.items():
        name = f"debian_cloud_tests.{module}"
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            for command in commands:
                _stand_in(sub, command, _cannot_load(command, name, exc))
            continue
        mod.add_parser(sub)


def _stand_in(sub: Any, command: str, error: MissingDependencyError) -> None:
    """A subcommand that takes any arguments (its real options are unknown) and raises *error*."""
    parser = sub.add_parser(command, help=f"unavailable: {error.message}", add_help=False)

    def fail(_args: argparse.Namespace) -> int:
        raise error

    def parse_known_args(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        return argparse.Namespace(func=fail), []

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]
