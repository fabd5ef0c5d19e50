"""Reading JUnit XML into runs and test cases, refusing anything that is not whole.

A truncated or empty report, or the same report counted twice, could make a broken image look
tested, so every doubt about an input file is a GateInputError (exit 2), never a verdict.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ..junitprops import Prop
from .errors import GateInputError


class Status(StrEnum):
    """A check's outcome as the JUnit report says it."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


PASSED, FAILED, ERROR, SKIPPED = Status.PASSED, Status.FAILED, Status.ERROR, Status.SKIPPED

#: Children that record earlier attempts of a test case (pytest-rerunfailures, Maven Surefire).
_EARLIER = {"rerunFailure": FAILED, "flakyFailure": FAILED, "rerunError": ERROR, "flakyError": ERROR}
_REGEN = "re-run the tests or fetch the complete report; a partial report cannot be judged"
_UNKNOWN = "pass JUnit whose results stand in <testcase> elements (see docs/gate.md)"


@dataclass
class Attempt:
    """One execution of a check: its outcome and the message explaining it."""

    status: str
    message: str = ""
    reclassified: bool = False  # a failure that [provider_errors] counts as a provider error


@dataclass
class Case:
    """One <testcase>: its check id, its final attempt and the failed attempts before it."""

    check_id: str
    final: Attempt
    earlier: list[Attempt] = field(default_factory=list)

    @property
    def suite(self) -> str:
        """The suite is the part of the check id before the first dot."""
        return self.check_id.split(".", 1)[0]


@dataclass
class Run:
    """One <testsuite>: the properties describing what was tested, and its test cases."""

    source: str
    properties: dict[str, str]
    cases: list[Case]
    timestamp: str = ""

    def prop(self, name: str) -> str:
        return self.properties.get(name, "").strip()


def _message(elem: ET.Element) -> str:
    msg = elem.get("message") or (elem.text or "").strip()
    return " ".join(msg.split("\n", 1)[0].split())


def _properties(elem: ET.Element) -> dict[str, str]:
    props: dict[str, str] = {}
    for holder in elem.findall("properties"):
        for prop in holder.findall("property"):
            name = prop.get("name")
            if name:
                props[name] = prop.get("value", prop.text or "")
    return props


def _case(elem: ET.Element) -> Case:
    props = _properties(elem)
    classname, name = elem.get("classname", ""), elem.get("name", "")
    check_id = props.get("check_id") or (f"{classname}.{name}" if classname else name)
    earlier = [Attempt(status, _message(child)) for child in elem if (status := _EARLIER.get(child.tag))]
    final = Attempt(PASSED)
    # A teardown error after a failure leaves both: the failure is the image's verdict.
    for tag, status in (("failure", FAILED), ("error", ERROR), ("skipped", SKIPPED)):
        child = elem.find(tag)
        if child is not None:
            final = Attempt(status, _message(child))
            break
    return Case(check_id, final, earlier)


#: Children that say how a test case went; anywhere but in a <testcase> they cannot be judged.
_OUTCOMES = {"failure", "error", "skipped", *_EARLIER}


def _cases_of(elem: ET.Element, source: str) -> list[ET.Element]:
    """Every <testcase> of this suite, however deep it stands (a producer may group them), but
    not those of a nested suite; an outcome outside a test case is refused, never ignored."""
    found: list[ET.Element] = []
    for child in elem:
        if child.tag == "testsuite":
            continue
        if child.tag == "testcase":
            for inner in child.iter():
                if inner is not child and inner.tag in ("testcase", "testsuite"):
                    raise GateInputError(source, f"a <{inner.tag}> inside the <testcase> "
                                         f"{child.get('name', '')!r}", _UNKNOWN)
                if inner.tag in _OUTCOMES and inner not in list(child):
                    raise _stray(source, inner, child.get("name", ""))
            found.append(child)
        elif child.tag in _OUTCOMES:
            raise _stray(source, child, "")
        elif child.tag != "properties":  # an element that groups test cases: read through it
            found.extend(_cases_of(child, source))
    return found


def _stray(source: str, elem: ET.Element, case: str) -> GateInputError:
    where = f"inside the <testcase> {case!r} but not directly in it" if case else "outside any <testcase>"
    return GateInputError(source, f"a <{elem.tag}> {where}: a result the gate cannot attribute to a "
                          "check", _UNKNOWN)


def _count(elem: ET.Element, source: str, cases: list[ET.Element]) -> None:
    """The suite's own counts must agree with the test cases in the file: a report that lost
    test cases (or was edited) must not be judged on what is left of it."""
    def elements(tag: str) -> int:
        return sum(1 for case in cases for child in case if child.tag == tag)

    counted = {"failures": elements("failure"), "errors": elements("error"), "skipped": elements("skipped")}
    given: dict[str, int] = {}
    for name in ("tests", *counted):
        text = elem.get(name)
        if text is None:
            continue
        try:
            given[name] = int(text)
        except ValueError:
            raise GateInputError(source, f"<{elem.tag} {elem.get('name', '')!r}> has {name}={text!r}, "
                                 "not a number", _REGEN) from None
    wrong = [f"{name}={value} but {counted[name]} in the file" for name, value in given.items()
             if name != "tests" and value != counted[name]]
    # pytest writes a failure and its teardown error as two test cases of one name, and counts
    # an error of setup or teardown as a test of its own: `tests` lies between the distinct
    # test cases and the test cases plus their errors
    distinct = len({(case.get("classname", ""), case.get("name", "")) for case in cases})
    if "tests" in given and not distinct <= given["tests"] <= len(cases) + counted["errors"]:
        wrong.insert(0, f"tests={given['tests']} but {len(cases)} test cases in the file")
    if wrong:
        raise GateInputError(source, f"<{elem.tag} {elem.get('name', '')!r}> says {'; '.join(wrong)}",
                             _REGEN)


def _suites_below(elem: ET.Element) -> list[ET.Element]:
    """The suites nested in this one, also inside elements that only group them."""
    found: list[ET.Element] = []
    for child in elem:
        if child.tag == "testsuite":
            found.append(child)
        elif child.tag not in ("testcase", "properties"):
            found.extend(_suites_below(child))
    return found


def _collect(elem: ET.Element, inherited: dict[str, str], source: str, runs: list[Run]) -> None:
    props = {**inherited, **_properties(elem)}
    nested = _suites_below(elem)
    found = _cases_of(elem, source)
    _count(elem, source, list(elem.iter("testcase")))
    cases = [_case(tc) for tc in found]
    # test cases straight under the root <testsuites> are a run too: never left unread
    if cases or (elem.tag == "testsuite" and not nested):
        runs.append(Run(source, props, cases, elem.get("timestamp", "")))
    for child in nested:
        _collect(child, props, source, runs)


def parse(path: Path) -> list[Run]:
    """The runs in one JUnit file; a root <testsuites> or a bare <testsuite> are both accepted."""
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GateInputError(source, "no such file", "check the path or the artifacts of the test job") \
            from None
    except OSError as exc:
        raise GateInputError(source, f"cannot read: {exc.strerror}", "pass a readable JUnit XML file") \
            from None
    if not data.strip():
        raise GateInputError(source, "the file is empty", _REGEN)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, _col = exc.position
        reason = str(exc).split(":", 1)[0]
        raise GateInputError(source, f"malformed or truncated XML ({reason})", _REGEN, line=line) from None
    if root.tag not in ("testsuites", "testsuite"):
        raise GateInputError(source, f"not JUnit XML: the root element is <{root.tag}>",
                             "pass the file written by pytest --junitxml (root <testsuites> or <testsuite>)")
    runs: list[Run] = []
    _collect(root, {}, source, runs)
    return runs or [Run(source, {}, [])]


def load(paths: list[Path]) -> list[Run]:
    """All runs of all files, refusing a file given twice or two reports of the same run."""
    if not paths:
        raise GateInputError("gate", "no JUnit file given", "pass the results-*.xml files of the test jobs")
    seen_paths: dict[Path, str] = {}
    seen_digests: dict[str, str] = {}
    seen_runs: dict[str, str] = {}
    runs: list[Run] = []
    for path in paths:
        real = path.resolve()
        if real in seen_paths:
            raise GateInputError(str(path), f"given twice (also as {seen_paths[real]})",
                                 "pass each JUnit file once")
        seen_paths[real] = str(path)
        file_runs = parse(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen_digests:
            raise GateInputError(str(path), f"has the same content as {seen_digests[digest]}",
                                 "pass each report once; a copy would count the same results twice")
        seen_digests[digest] = str(path)
        for run in file_runs:
            run_id = run.prop(Prop.RUN_ID)
            if run_id and run_id in seen_runs:
                raise GateInputError(str(path), f"run_id {run_id} is also in {seen_runs[run_id]}",
                                     "pass each run's report once (a rerun gets its own run_id)")
            if run_id:
                seen_runs[run_id] = str(path)
        runs.extend(file_runs)
    return runs
