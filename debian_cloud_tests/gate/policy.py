"""The publication policy: what must pass, what is excused, which facts must hold.

Loaded from TOML and validated completely before any result is looked at, so that a typo in
the policy is an input error (exit 2) instead of a rule that silently never applies.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import GateInputError
from .scope import GLOB, REGEX, SCOPE_KEYS, Pattern, Scope, Target
from .tomlcheck import Reader, describe

TOP_KEYS = ("required", "deny", "flaky", "properties", "provider_errors", "regression", "require_target",
            "accept_filter", "publication")
RULE_KEYS = ("suites", "checks", "match", *SCOPE_KEYS)
DENY_KEYS = ("id", "match", "tracker", "reason", "expires", "warn", *SCOPE_KEYS)
PACKAGES_MODES = ("report", "hold-removed")
EVERYWHERE = Scope()
SOCKETS_MODES = ("hold-new", "report")
#: The target a [[require_target]] or [[accept_filter]] entry names, each a glob (default "*").
TARGET_KEYS = ("provider", "arch", "firmware", "image_type")
ACCEPT_KEYS = (*TARGET_KEYS, "suites", "keyword", "markers", "reason")


@dataclass(frozen=True)
class TargetGlob:
    """Targets by glob on provider, arch, firmware and image type; an unknown value matches `*`
    only, so a glob naming a value never matches a run that does not say."""

    provider: str = "*"
    arch: str = "*"
    firmware: str = "*"
    image_type: str = "*"
    line: int | None = None

    def matches(self, target: Target) -> bool:
        return all(Pattern(getattr(self, key)).matches(getattr(target, key)) for key in TARGET_KEYS)

    @property
    def label(self) -> str:
        return "/".join(getattr(self, key) for key in TARGET_KEYS)


@dataclass(frozen=True)
class AcceptFilter:
    """A filtered run that may still publish on these targets: the suites it may leave out (in
    whole or in part) and the -k / -m expressions it may use, with the reason why."""

    target: TargetGlob
    suites: tuple[str, ...] = ()
    keyword: str = ""
    markers: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RequiredRule:
    """Suites and check patterns that must run and pass wherever the scope applies."""

    suites: tuple[str, ...] = ()
    checks: tuple[Pattern, ...] = ()
    scope: Scope = EVERYWHERE
    line: int | None = None


@dataclass(frozen=True)
class DenyEntry:
    """A known failure: excused (or only warned about) until it expires, with its tracker."""

    pattern: Pattern
    tracker: str
    reason: str = ""
    expires: dt.date | None = None
    warn: bool = False
    scope: Scope = EVERYWHERE
    line: int | None = None

    def expired(self, today: dt.date) -> bool:
        """The entry is valid through its `expires` day and excuses nothing after it."""
        return self.expires is not None and today > self.expires


@dataclass(frozen=True)
class FlakyPolicy:
    allowed: bool = False
    max: int | None = None


@dataclass(frozen=True)
class PropertiesPolicy:
    """Suite properties every run must carry, and those that must agree between runs."""

    required: tuple[str, ...] = ("image_sha256", "provider", "arch", "run_id")
    must_agree: tuple[str, ...] = ("image_sha256",)
    agree_within: tuple[str, ...] = ("provider", "arch")


@dataclass(frozen=True)
class RegressionPolicy:
    """Bounds on growth against the baseline; an unset bound only reports the difference."""

    image_size_pct: float | None = None
    boot_seconds_pct: float | None = None
    boot_seconds_abs: float | None = None
    cloud_init_seconds_pct: float | None = None
    cloud_init_seconds_abs: float | None = None
    #: how far the network throughput may fall (network_perf's figure), in percent
    throughput_drop_pct: float | None = None
    packages: str = "report"
    listening_sockets: str = "hold-new"


@dataclass(frozen=True)
class Policy:
    required: tuple[RequiredRule, ...] = ()
    deny: tuple[DenyEntry, ...] = ()
    flaky: FlakyPolicy = FlakyPolicy()
    properties: PropertiesPolicy = PropertiesPolicy()
    provider_error_patterns: tuple[re.Pattern[str], ...] = ()
    regression: RegressionPolicy = RegressionPolicy()
    require_targets: tuple[TargetGlob, ...] = ()
    accept_filters: tuple[AcceptFilter, ...] = ()
    #: regions whose registered copies may be released untested (gate --registered)
    accept_untested: tuple[str, ...] = ()
    source: str = "(built-in defaults)"


def _pattern(r: Reader, text: str, kind: str, path: tuple[str | int, ...]) -> Pattern:
    try:
        return Pattern(text, kind)
    except re.error as exc:
        raise r.error(path, f"{describe(path)}: invalid regular expression {text!r} ({exc})",
                      "fix the expression, or use match = \"glob\" for shell-style * and ?") from None


def _scope(r: Reader, table: dict[str, Any], path: tuple[str | int, ...]) -> Scope:
    return Scope(**{key: r.strings(table, path, key) for key in SCOPE_KEYS})


def _rule(r: Reader, raw: Any, path: tuple[str | int, ...]) -> RequiredRule:
    table = r.table(raw, path, RULE_KEYS)
    kind = r.choice(table, path, "match", (GLOB, REGEX))
    checks = tuple(_pattern(r, text, kind, (*path, "checks")) for text in r.strings(table, path, "checks"))
    suites = r.strings(table, path, "suites")
    if not suites and not checks:
        name = describe(path) if isinstance(path[-1], int) else "[required]"
        raise r.error(path, f"{name} requires nothing",
                      'add suites = ["bvt"] or checks = ["bvt.*"]')
    return RequiredRule(suites, checks, _scope(r, table, path), r.lines.get(path))


def _required(r: Reader, raw: Any) -> tuple[RequiredRule, ...]:
    table = r.table(raw, ("required",), (*RULE_KEYS, "rule"))
    rules: list[RequiredRule] = []
    if set(table) - {"rule"}:
        rules.append(_rule(r, {k: v for k, v in table.items() if k != "rule"}, ("required",)))
    for index, rule in enumerate(r.tables(table.get("rule", []), ("required", "rule"))):
        rules.append(_rule(r, rule, ("required", "rule", index)))
    return tuple(rules)


def _deny(r: Reader, raw: Any) -> tuple[DenyEntry, ...]:
    entries: list[DenyEntry] = []
    for index, item in enumerate(r.tables(raw, ("deny",))):
        path = ("deny", index)
        table = r.table(item, path, DENY_KEYS)
        kind = r.choice(table, path, "match", (GLOB, REGEX))
        tracker = r.string(table, path, "tracker", "https://bugs.debian.org/1234567")
        if not tracker.startswith(("https://", "http://")):
            raise r.error((*path, "tracker"), f"{describe((*path, 'tracker'))} is not a URL: {tracker!r}",
                          "link the bug report, e.g. https://bugs.debian.org/1234567")
        entries.append(DenyEntry(
            _pattern(r, r.string(table, path, "id", "bvt.system_running"), kind, (*path, "id")), tracker,
            table.get("reason", "") and r.string(table, path, "reason"), r.date(table, path, "expires"),
            r.boolean(table, path, "warn", False), _scope(r, table, path), r.lines.get(path)))
    return tuple(entries)


def _regression(r: Reader, raw: Any) -> RegressionPolicy:
    path = ("regression",)
    table = r.table(raw, path, RegressionPolicy.__dataclass_fields__)
    numbers = {key: r.number(table, path, key) for key in table
               if key not in ("packages", "listening_sockets")}
    return RegressionPolicy(**numbers, packages=r.choice(table, path, "packages", PACKAGES_MODES),
                            listening_sockets=r.choice(table, path, "listening_sockets", SOCKETS_MODES))


def _target(r: Reader, table: dict[str, Any], path: tuple[str | int, ...]) -> TargetGlob:
    globs = {key: r.string(table, path, key, "*") for key in TARGET_KEYS if key in table}
    return TargetGlob(**globs, line=r.lines.get(path))


def _require_targets(r: Reader, raw: Any) -> tuple[TargetGlob, ...]:
    found = []
    for index, item in enumerate(r.tables(raw, ("require_target",))):
        path = ("require_target", index)
        table = r.table(item, path, TARGET_KEYS)
        if not table:
            raise r.error(path, f"{describe(path)} names no target",
                          'write e.g. provider = "qemu" and arch = "*" and firmware = "uefi"')
        found.append(_target(r, table, path))
    return tuple(found)


def _accept_filters(r: Reader, raw: Any) -> tuple[AcceptFilter, ...]:
    found = []
    for index, item in enumerate(r.tables(raw, ("accept_filter",))):
        path = ("accept_filter", index)
        table = r.table(item, path, ACCEPT_KEYS)
        expressions = {key: r.string(table, path, key) for key in ("keyword", "markers") if key in table}
        found.append(AcceptFilter(_target(r, table, path), r.strings(table, path, "suites"), **expressions,
                                  reason=r.string(table, path, "reason", "the reboot suite needs a "
                                                  "platform that can restart the machine")))
    return tuple(found)


def _provider_errors(r: Reader, raw: Any) -> tuple[re.Pattern[str], ...]:
    path = ("provider_errors",)
    table = r.table(raw, path, ("patterns",))
    return tuple(_pattern(r, text, REGEX, (*path, "patterns")).regex
                 for text in r.strings(table, path, "patterns"))


def _syntax_error(exc: tomllib.TOMLDecodeError, source: str, where: str) -> GateInputError:
    """tomllib's message, with its line moved to the front and bad dates named as such."""
    found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    line = int(found.group(1)) if found else None
    problem = "invalid TOML: " + re.sub(r"\s*\(at line.*?\)", "", str(exc))
    lines = source.splitlines()
    text = lines[line - 1] if line and line <= len(lines) else ""
    fix = "fix the syntax (dates are written 2026-03-31, strings in quotes)"
    for date in re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text):
        try:
            dt.date.fromisoformat(date)
        except ValueError as bad:
            problem, fix = f"invalid date {date} ({bad})", "write a real calendar date, e.g. 2026-03-31"
    return GateInputError(where, problem, fix, line=line)


def parse_policy(source: str, where: str) -> Policy:
    """Validate a policy text completely; every mistake is a GateInputError with its line."""
    r = Reader(where, source)
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, source, where) from None
    r.table(doc, (), TOP_KEYS)
    flaky = r.table(doc.get("flaky", {}), ("flaky",), ("allowed", "max"))
    props = r.table(doc.get("properties", {}), ("properties",), PropertiesPolicy.__dataclass_fields__)
    max_flaky = r.number(flaky, ("flaky",), "max", integer=True)
    publication = r.table(doc.get("publication", {}), ("publication",), ("accept_untested",))
    defaults = PropertiesPolicy()
    return Policy(
        required=_required(r, doc["required"]) if "required" in doc else (),
        deny=_deny(r, doc.get("deny", [])),
        flaky=FlakyPolicy(r.boolean(flaky, ("flaky",), "allowed", False),
                          None if max_flaky is None else int(max_flaky)),
        properties=PropertiesPolicy(
            r.strings(props, ("properties",), "required") if "required" in props else defaults.required,
            r.strings(props, ("properties",), "must_agree") if "must_agree" in props else defaults.must_agree,
            r.strings(props, ("properties",), "agree_within") if "agree_within" in props
            else defaults.agree_within),
        provider_error_patterns=_provider_errors(r, doc.get("provider_errors", {})),
        regression=_regression(r, doc.get("regression", {})),
        require_targets=_require_targets(r, doc.get("require_target", [])),
        accept_filters=_accept_filters(r, doc.get("accept_filter", [])),
        accept_untested=r.strings(publication, ("publication",), "accept_untested"),
        source=where)


def load_policy(path: Path | None) -> Policy:
    """The policy in `path`, or the built-in defaults when no policy file is given."""
    if path is None:
        return Policy()
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateInputError(str(path), "no such policy file", "check the --policy path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError(str(path), f"cannot read the policy ({exc})", "pass a UTF-8 TOML file") from None
    return parse_policy(source, str(path))
