"""Typed, line-aware access to a parsed TOML document, for validating the gate policy.

tomllib accepts any key and any type; a policy typo silently ignored would quietly loosen the gate,
so every key is checked here and every mistake names its line and the closest valid key.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Collection
from typing import Any

from .errors import GateInputError
from .tomlpos import Path, key_lines, line_of


def describe(path: Path) -> str:
    """A human name for a key path: ('deny', 2, 'expires') → "'expires' in [[deny]] #3"."""
    *table, key = path
    if isinstance(key, int):
        return f"[[{'.'.join(str(p) for p in table)}]] #{key + 1}"
    names = [str(p) for p in table if not isinstance(p, int)]
    if not names:
        return f"[{key}]"
    if table and isinstance(table[-1], int):
        return f"'{key}' in [[{'.'.join(names)}]] #{table[-1] + 1}"
    return f"'{key}' in [{'.'.join(names)}]"


class Reader:
    """Validating getters that raise GateInputError pointing at the offending line."""

    def __init__(self, where: str, source: str) -> None:
        self.where = where
        self.lines = key_lines(source)

    def error(self, path: Path, problem: str, fix: str) -> GateInputError:
        return GateInputError(self.where, problem, fix, line=line_of(self.lines, path))

    def table(self, value: Any, path: Path, allowed: Collection[str]) -> dict[str, Any]:
        """The value as a table whose keys are all in `allowed`."""
        if not isinstance(value, dict):
            array = bool(path) and isinstance(path[-1], int)
            dotted = ".".join(str(p) for p in (path[:-1] if array else path))
            header = f"[[{dotted}]]" if array else f"[{dotted}]"
            raise self.error(path, f"{_table_name(path)} must be a table, not {value!r}",
                             f"write it as a {header} block")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'? " if close else ""
                where = _table_name(path) or "the top level"
                raise self.error((*path, key), f"unknown key '{key}' in {where}",
                                 f"{hint}valid keys: {', '.join(sorted(allowed))}")
        return value

    def tables(self, value: Any, path: Path) -> list[Any]:
        """An array of tables ([[name]] blocks)."""
        if not isinstance(value, list):
            raise self.error(path, f"[{'.'.join(map(str, path))}] must be an array of tables",
                             f"write each entry as [[{'.'.join(map(str, path))}]]")
        return value

    def strings(self, table: dict[str, Any], path: Path, key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error((*path, key), f"{describe((*path, key))} must be a list of non-empty strings",
                             f'write e.g. {key} = ["a", "b"]')
        return tuple(value)

    def string(self, table: dict[str, Any], path: Path, key: str, example: str = "…") -> str:
        value = table.get(key)
        if not isinstance(value, str) or not value:
            needed = "is required and " if key not in table else ""
            raise self.error((*path, key), f"{describe((*path, key))} {needed}must be a non-empty string",
                             f'write e.g. {key} = "{example}"')
        return value

    def boolean(self, table: dict[str, Any], path: Path, key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.error((*path, key), f"{describe((*path, key))} must be true or false, not {value!r}",
                             f"write {key} = true or {key} = false (no quotes)")
        return value

    def number(self, table: dict[str, Any], path: Path, key: str, *, integer: bool = False) -> float | None:
        """A non-negative number, or None when absent."""
        value = table.get(key)
        if value is None:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
            kind = "a whole number" if integer else "a number"
            raise self.error((*path, key), f"{describe((*path, key))} must be {kind} ≥ 0, not {value!r}",
                             f"write e.g. {key} = {'3' if integer else '20'} (no quotes)")
        return value

    def choice(self, table: dict[str, Any], path: Path, key: str, choices: tuple[str, ...]) -> str:
        value = table.get(key, choices[0])
        if value not in choices:
            raise self.error((*path, key), f"{describe((*path, key))} is {value!r}",
                             f"use one of: {', '.join(repr(c) for c in choices)}")
        return value

    def date(self, table: dict[str, Any], path: Path, key: str) -> dt.date | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise self.error((*path, key), f"{describe((*path, key))} must be a TOML date, not {value!r}",
                             f"write e.g. {key} = 2026-03-31 (a date, no quotes, no time)")
        return value


def _table_name(path: Path) -> str:
    if not path:
        return ""
    if isinstance(path[-1], int):
        return f"[[{'.'.join(str(p) for p in path[:-1])}]] #{path[-1] + 1}"
    return f"[{'.'.join(str(p) for p in path)}]"
