"""Which of our checks cover each rule of the audit references, or why a rule does not apply to a
cloud image at first boot: data/audit-coverage.toml joined with the references' own rule lists.

An entry's key is a rule id or a glob over a family of them (an exact id wins); its value is a
list of check ids (covered), a one-line reason (does not apply), or ``{gap = "..."}`` (applies,
and no check covers it yet).  A covered rule that asks for more than Debian's own images have is
``{checks = [...], stricter = "..."}``: the checks hold Debian's default and fail anything weaker,
and the note says what the reference flags on Debian's default (OpenSCAP and lynis report it
where our checks pass); a ``[stricter.SOURCE]`` table says such a reason once for the covered
rules it lists (``"reason" = [ids or globs]``).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import tomllib
from collections import Counter
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path

from . import references
from .references import Rule

COVERED, NOT_APPLICABLE, GAP = "covered", "not applicable", "not covered yet"
#: the mapping's table of reasons shared by several covered rules stricter than Debian's default
STRICTER = "stricter"
SOURCES = {"ssg": "SCAP Security Guide (ssg-debian), Debian 12 profiles",
           "lynis": "lynis, the test categories that concern an image, its Debian plugin and its own notices"}
_SCOPE_NAMES = {"standard": "standard", "anssi_bp28_minimal": "BP28 min",
                "anssi_bp28_intermediary": "BP28 int", "anssi_np_nt28_minimal": "NT28 min",
                "anssi_np_nt28_average": "NT28 avg"}


@dataclass(frozen=True)
class Entry:
    rule: Rule
    kind: str  # COVERED, NOT_APPLICABLE or GAP
    checks: tuple[str, ...]
    text: str  # why it does not apply, what a check would verify, or where the rule is stricter


Mapping = dict[str, dict[str, object]]  # source -> key (id or glob) -> value


def load_mapping(path: Path | None = None) -> Mapping:
    """The shipped mapping (or the one at *path*)."""
    data = (path.read_bytes() if path else
            resources.files("debian_cloud_tests").joinpath("data/audit-coverage.toml").read_bytes())
    return tomllib.loads(data.decode())


def _entry(rule: Rule, value: object) -> Entry:
    if isinstance(value, list):
        return Entry(rule, COVERED, tuple(str(v) for v in value), "")
    if isinstance(value, dict) and "checks" in value:
        return Entry(rule, COVERED, tuple(str(v) for v in value["checks"]), str(value.get("stricter", "")))
    if isinstance(value, dict):
        return Entry(rule, GAP, (), str(value.get("gap", "")))
    return Entry(rule, NOT_APPLICABLE, (), str(value))


def _keys_for(rule: Rule, keys: dict[str, object]) -> list[str]:
    if rule.id in keys:
        return [rule.id]
    return [k for k in keys if any(c in k for c in "*?[") and fnmatch.fnmatchcase(rule.id, k)]


def _stricter(entries: list[Entry], table: object) -> tuple[list[Entry], list[str]]:
    """*entries* with the reasons of the [stricter.SOURCE] tables ("reason" = [rule ids or
    globs]) given to the covered rules they list that say none of their own."""
    reasons: dict[tuple[str, str], str] = {}
    problems = []
    for source, by_reason in (table.items() if isinstance(table, dict) else ()):
        ids = {e.rule.id: e for e in entries if e.rule.source == source}
        for reason, keys in by_reason.items():
            for key in keys:
                found = [i for i in ids if i == key or fnmatch.fnmatchcase(i, key)]
                bad = [i for i in found if ids[i].kind != COVERED]
                if not found or bad:
                    problems.append(f"stricter.{source} names {key!r}, "
                                    + (f"not covered: {bad}" if bad else "which matches no rule"))
                reasons.update(((source, i), str(reason)) for i in found)
    return [replace(e, text=reasons.get((e.rule.source, e.rule.id), "")) if e.kind == COVERED and
            not e.text else e for e in entries], problems


def join(rules: list[Rule], mapping: Mapping) -> tuple[list[Entry], list[str]]:
    """Each rule's entry, and every disagreement between the mapping and the rule lists."""
    entries, problems, used = [], [], set()
    for rule in rules:
        keys = mapping.get(rule.source, {})
        matched = _keys_for(rule, keys)
        if not matched:
            problems.append(f"{rule.source} rule {rule.id} ({rule.title}) has no entry")
            continue
        if len(matched) > 1:
            problems.append(f"{rule.source} rule {rule.id} matches several globs: {matched}")
        used.add((rule.source, matched[0]))
        entries.append(_entry(rule, keys[matched[0]]))
    entries, more = _stricter(entries, mapping.get(STRICTER, {}))
    problems += more
    sources = {r.source for r in rules}
    problems += [f"{source} entry {key!r} matches no rule of the references"
                 for source, keys in mapping.items() if source in sources
                 for key in keys if (source, key) not in used]
    problems += [f"unknown reference {source!r} in the mapping" for source in mapping
                 if source not in SOURCES and source != STRICTER]
    problems += [f"{e.rule.source} rule {e.rule.id}: an empty entry" for e in entries
                 if not (e.checks or e.text.strip())]
    return entries, problems


def unknown_checks(entries: list[Entry], check_ids: set[str]) -> list[str]:
    """Entries naming a check that is not in the catalogue."""
    return [f"{e.rule.source} rule {e.rule.id} names {c}, which is not a check"
            for e in entries for c in e.checks if c not in check_ids]


def _cell(text: str) -> str:
    return text.replace("|", "/")


def render(entries: list[Entry], versions: dict[str, str]) -> str:
    """The Markdown table of docs/audit-coverage.md."""
    counts = Counter(e.kind for e in entries)
    lines = ["# Audit coverage", "",
             "Generated by `debian-cloud-tests audit-coverage > docs/audit-coverage.md` from "
             + ", ".join(f"{p} {v}" for p, v in sorted(versions.items())) + ".",
             f"{len(entries)} rules: {counts[COVERED]} {COVERED}, {counts[NOT_APPLICABLE]} "
             f"{NOT_APPLICABLE} to a cloud image at first boot, {counts[GAP]} {GAP}."]
    for source, title in SOURCES.items():
        mine = [e for e in entries if e.rule.source == source]
        lines += ["", f"## {title}", "", "| rule | scope | title | covered by, or why not |",
                  "|---|---|---|---|"]
        for e in mine:
            scope = ", ".join(_SCOPE_NAMES.get(s, s) for s in e.rule.scope)
            verdict = (", ".join(f"`{c}`" for c in e.checks) + (f" (stricter than Debian: {e.text})"
                                                                if e.text else "")
                       if e.kind == COVERED
                       else f"**{GAP}**: {e.text}" if e.kind == GAP else e.text)
            lines.append(f"| `{e.rule.id}` | {scope} | {_cell(e.rule.title)} | {_cell(verdict)} |")
    return "\n".join(lines) + "\n"


def build() -> tuple[list[Entry], list[str], dict[str, str]]:
    """Entries, problems and reference versions from the installed references."""
    where = references.root()
    entries, problems = join(references.ssg_rules(where) + references.lynis_rules(where),
                             load_mapping())
    return entries, problems, references.versions(where)


def _run(args: argparse.Namespace) -> int:
    entries, problems, versions = build()
    if args.format == "json":
        print(json.dumps([asdict(e) for e in entries], indent=1))
    else:
        print(render(entries, versions), end="")
    for problem in problems:
        print(f"debian-cloud-tests audit-coverage: {problem}", file=sys.stderr)
    return 1 if problems else 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("audit-coverage", help="which checks cover each rule of ssg-debian "
                            "and lynis, or why a rule does not apply to a cloud image")
    parser.add_argument("--format", choices=["markdown", "json"], default="markdown")
    parser.set_defaults(func=_run)
