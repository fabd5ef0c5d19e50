"""The pytest plugin: `pytest --provider=qemu --image=IMAGE` boots the image and runs the suites.

Options are validated before anything is collected or created, so bad input costs one line and
a distinct exit code.  The machine is launched lazily by the first check that needs it, shared by
every check of the session, and destroyed at the end, whatever ends the session.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Generator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from . import (
    __version__,
    applicability,
    artifacts,
    completeness,
    interrupts,
    options,
    probes,
)
from .errors import DCTError, UsageError
from .facts import Facts, Probe
from .lifecycle import Fleet
from .provider import Provider, get_provider, refuse_secure_boot
from .rundir import new_run_id
from .spec import KeepInstance, LaunchSpec

NO_PROVIDER = ("conformance suites need a machine: pytest --provider=qemu --image=IMAGE "
               "(see --help, group debian-cloud-tests)")


@dataclass
class RunState:
    """Everything the plugin knows about this run; lives in config.stash."""

    provider: Provider
    spec: LaunchSpec
    run_id: str
    keep: KeepInstance
    artifacts_dir: Path
    fleet: Fleet | None = None
    error: DCTError | None = None
    failed: bool = False
    kept: list[str] = field(default_factory=list)
    props: dict[str, str] = field(default_factory=dict)
    ready_at: float | None = None  # monotonic time the first machine became ready
    checks_done_at: float | None = None  # the last check's verdict
    torn_down_at: float | None = None  # the last check's teardown: the run's machines with it
    checks_run: int = 0
    boot_seconds: float | None = None
    probes: dict[str, Probe] = field(default_factory=dict)
    facts: Facts | None = None  # started when the first machine became ready


STATE = pytest.StashKey[RunState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def _say_error(exc: DCTError) -> int:
    print(f"debian-cloud-tests: error: {exc}", file=sys.stderr)
    return exc.exit_code


def _refuse_xdist(config: pytest.Config) -> None:
    """pytest-xdist's workers would each launch the machines and split one run's checks
    between them: several machines, a JUnit file per worker, none of them a whole run."""
    workers = config.getoption("numprocesses", None)
    if workers not in (None, 0, "0"):
        raise UsageError(f"-n {workers} (pytest-xdist) splits one run's checks between workers: "
                         "to test several machines at once use `debian-cloud-tests run --instances N` "
                         "(or --target for several images)")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Validate options before collection; bad input exits here with its own code."""
    if config.getoption("help") or config.getoption("version", 0):
        return None
    try:
        provider_name = options.value(config, "provider")
        if not provider_name:
            return None
        _refuse_xdist(config)
        run_id = new_run_id()
        spec = options.build_spec(config, run_id)
        provider = get_provider(provider_name)
        refuse_secure_boot(provider, spec)
        if spec.upgrade and spec.upgrade.directory and not provider.serves_local_repository:
            raise UsageError(f"--upgrade {spec.upgrade.directory}: {provider.name} machines cannot "
                             "reach a directory on this runner: publish the repository and give "
                             "--upgrade 'URL SUITE COMPONENT…'")
        spec = provider.validate(spec)
        keep = KeepInstance(options.value(config, "keep-instance"))
    except DCTError as exc:
        return _say_error(exc)
    # testinfra's own `host` fixture (the local machine by default) must never shadow ours.
    testinfra_plugin = config.pluginmanager.get_plugin("pytest11.testinfra")
    if testinfra_plugin is not None:
        config.pluginmanager.unregister(testinfra_plugin)
    config.stash[STATE] = RunState(provider, spec, run_id, keep,
                                   Path(options.value(config, "artifacts-dir")).resolve() / run_id)
    return None


def suites_dir() -> Path:
    return Path(str(resources.files("debian_cloud_tests.suites")))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "applies(provider=, arch=, firmware=, image_type=, release=, "
                            "secure_boot=): "
                            "where a check applies (see debian_cloud_tests.applicability)")
    config.addinivalue_line("markers", "late: reads a slow probe, so runs after the quick checks")
    state = config.stash.get(STATE, None)
    config.pluginmanager.register(
        completeness.Recorder(_suite_of, None if state is None else suites_dir(), _exit_status),
        "debian-cloud-tests-completeness")
    if state is None:
        return
    from . import fixtures  # the run's fixtures, in this session only

    config.pluginmanager.register(fixtures, "debian-cloud-tests-fixtures")
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args[:] = [str(suites_dir())]
    # SIGTERM (CI cancelling a job) must clean up like Ctrl-C does.
    interrupts.install()


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash.get(STATE, None)
    if state is None:  # a session that tests no image: the plugin says nothing
        return []
    s = state.spec
    return [f"debian-cloud-tests {__version__}: {state.provider.name}://{s.image} arch={s.arch.value} "
            f"firmware={s.firmware.value if s.firmware else '-'} run={state.run_id}"]


def _is_suite_item(item: pytest.Item) -> bool:
    try:
        item.path.relative_to(suites_dir())
    except ValueError:
        return False
    return True


def _suite_of(item: pytest.Item) -> str:
    """The suite an item belongs to; "" for a test outside the plugin's suites."""
    return item.path.relative_to(suites_dir()).parts[0] if _is_suite_item(item) else ""


def check_id(item: pytest.Item) -> str:
    """A stable id for the gate: '<suite>.<check>' whatever the install layout."""
    suite = item.path.relative_to(suites_dir()).parts[0]
    name = getattr(item, "originalname", item.name).removeprefix("test_")
    param = item.name[len(getattr(item, "originalname", item.name)):]
    return f"{suite}.{name}{param}"


#: suites that change the machine run last, after every other suite has read the first boot
RUN_LAST = ("network_perf", "uniqueness", "reboot", "upgrade")


#: checks that look back on the whole run (every machine's console) run after everything else
RUN_AT_END = ("test_console_clean_at_end",)


def _order(item: pytest.Item) -> int:
    """Normal checks, then `late` ones (they wait on a slow probe, which meanwhile runs beside
    the others), then the suites that change the machine, then the look back on the run."""
    if not _is_suite_item(item):
        return 0
    if getattr(item, "originalname", item.name) in RUN_AT_END:
        return len(RUN_LAST) + 2
    suite = item.path.relative_to(suites_dir()).parts[0]
    if suite in RUN_LAST:
        return RUN_LAST.index(suite) + 2
    return 1 if item.get_closest_marker("late") else 0


#: the console scan at the end of a run: where it lives
ADDED_FOR_THE_END = pytest.StashKey[bool]()
END_SCAN = ("bvt/test_bvt.py", "test_console_clean_at_end")


def _end_scan(items: list[pytest.Item]) -> list[pytest.Item]:
    """The console scan of every machine, for a run whose selection left it out: a panic or a
    failed unit during any check is reported whatever suites ran.

    It is collected under the same directory nodes as the suites' own items, so it belongs to
    the suites' package as they do (their check ids, their order)."""
    chain = [node for item in items for node in item.listchain()]
    by_path = {getattr(node, "path", None): node for node in chain}
    bvt = suites_dir() / Path(END_SCAN[0]).parent
    parent = by_path.get(bvt)
    if parent is None:
        anchor = by_path.get(suites_dir())
        if anchor is None:  # the suites were not collected from their directory: nothing to join
            return []
        parent = pytest.Package.from_parent(anchor, path=bvt)
    module = pytest.Module.from_parent(parent, path=suites_dir() / END_SCAN[0])
    found = [item for item in module.collect() if item.name == END_SCAN[1]]
    for item in found:
        item.stash[ADDED_FOR_THE_END] = True  # reads the console only: its module's probes stay out
    return found  # type: ignore[return-value]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    suite_items = [item for item in items if _is_suite_item(item)]
    if suite_items and not any(getattr(i, "originalname", i.name) in RUN_AT_END for i in suite_items):
        items.extend(_end_scan(suite_items))
    items.sort(key=_order)  # stable: order within each group is kept
    state = config.stash.get(STATE, None)
    for item in items:
        if not _is_suite_item(item):
            continue
        item.user_properties.append(("check_id", check_id(item)))
        if state is None:
            item.add_marker(pytest.mark.skip(reason=NO_PROVIDER))
            continue
        module = None if item.stash.get(ADDED_FOR_THE_END, False) else getattr(item, "module", None)
        for probe in (*probes.FOR_PROPERTIES, *getattr(module, "PROBES", ())):
            known = state.probes.setdefault(probe.name, probe)
            if known != probe:  # two suites reading different things under one name
                raise pytest.UsageError(f"probe {probe.name!r} is declared twice with different "
                                        f"commands ({item.path.name}): rename one")
        reason = applicability.not_applicable(item, state.provider.name, state.spec)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"not applicable: {reason}"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    state = item.config.stash.get(STATE, None)
    if state is not None:
        state.failed = state.failed or report.failed
        if _is_suite_item(item):
            # a check's verdict is its call, or its setup when that skipped or failed it; the
            # last teardown also destroys the machines, which is the run's cost, not the checks'
            if report.when == "call" or (report.when == "setup" and not report.passed):
                state.checks_run += 1
                state.checks_done_at = time.monotonic()
            elif report.when == "teardown":
                state.torn_down_at = time.monotonic()
    return report


def _close(state: RunState) -> None:
    if state.fleet is None:
        return
    fleet, state.fleet = state.fleet, None
    for inst in fleet.instances:
        artifacts.collect(inst, state.artifacts_dir, with_guest_logs=state.failed)
    for pending in fleet.pending_machines():
        artifacts.collect_console(pending, state.artifacts_dir)
    try:
        fleet.close(failed=state.failed)
    except DCTError as exc:
        state.error = state.error or exc
    state.kept = fleet.kept


#: what a check raises when the guest answered something it could not parse
UNREADABLE = (ValueError, KeyError, IndexError, TypeError, AttributeError)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    """A guest in a bad state (a file empty or garbled, a command printing something else) fails
    the check with one line naming what could not be read, never a traceback into our code."""
    if not _is_suite_item(pyfuncitem):
        return (yield)
    try:
        return (yield)
    except UNREADABLE as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        pytest.fail(f"the guest's answer could not be read ({type(exc).__name__}: {str(exc)[:200]}, "
                    f"in {Path(frame.filename).name}:{frame.lineno}): the guest is not in a state "
                    "this check understands; look at the probe's output in the guest", pytrace=False)


def _exit_status(session: pytest.Session) -> int:
    """The run's exit status: the plugin's own error code, or interrupted for a run stopped as
    it was ending (its interrupt landed in the teardown), since a cancelled CI job must not read
    as a passing run; else pytest's."""
    state = session.config.stash.get(STATE, None)
    if state is not None and state.error is not None:
        return state.error.exit_code
    if state is not None and interrupts.requested() and session.exitstatus == pytest.ExitCode.OK:
        return pytest.ExitCode.INTERRUPTED
    return session.exitstatus


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    _close(state)
    session.exitstatus = _exit_status(session)
    interrupts.record_exit_status(session.exitstatus)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    tr = terminalreporter
    for access in state.kept:
        tr.write_line(f"debian-cloud-tests: machine kept running: {access}", yellow=True)
    if state.error is not None:
        # the one line a script or CI log looks for, on stderr beside the exit code
        print(f"debian-cloud-tests: error: {state.error.message}", file=sys.stderr)
    if state.ready_at is not None and state.checks_done_at is not None:
        boot = state.boot_seconds
        notes = [f"boot to ssh {boot:.1f}s"] if boot is not None else []
        if state.torn_down_at is not None:
            notes.append(f"teardown {max(0.0, state.torn_down_at - state.checks_done_at):.2f}s")
        tr.write_line(f"debian-cloud-tests: {state.checks_run} checks in "
                      f"{state.checks_done_at - state.ready_at:.2f}s after ready"
                      + (f" ({'; '.join(notes)})" if notes else ""))
    xml = config.getoption("xmlpath", None)
    if xml:
        tr.write_line(f"debian-cloud-tests: JUnit: {xml}; artefacts: {state.artifacts_dir}")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        _close(state)
