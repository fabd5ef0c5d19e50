"""The run's fixtures: the machine under test and what checks read of it.

Registered as a plugin only in a session given --provider, and only there: a pytest session that
does not test an image keeps its own `host` and fixtures, and one that does defines each of these
once, so every test of the session (the suites' and the user's own) reads the same machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import applicability, artifacts, backoff, options, probes, progress
from . import facts as facts_mod
from .errors import DCTError
from .facts import Facts
from .instancetypes import InstanceTypeEntry, Table
from .lifecycle import Fleet, Instance
from .machine import Machine
from .plugin import NO_PROVIDER, STATE, RunState, _close, _is_suite_item
from .spec import release_from_os_release


@pytest.fixture(autouse=True)
def _release_from_the_guest(request: pytest.FixtureRequest) -> None:
    """Decide what only the guest can tell (its release) once it is up, before a check that
    depends on it runs: a fixture, so the guest's facts are reached the public way."""
    item = request.node
    state = item.config.stash.get(STATE, None)
    if state is None or not _is_suite_item(item):
        return
    if not applicability.pending_axes(item, state.provider.name, state.spec):
        return
    facts = state.facts or request.getfixturevalue("facts")
    os_release = facts[probes.OS_RELEASE.name]
    state.spec.release = release_from_os_release(artifacts.os_release_fields(os_release.stdout))
    if state.spec.release is None:
        pytest.skip("not applicable: the guest's Debian release is unknown (its os-release names "
                    "none); give --release")
    reason = applicability.not_applicable(item, state.provider.name, state.spec)
    if reason:
        pytest.skip(f"not applicable: {reason}")


@pytest.fixture(scope="session")
def dct_run(request: pytest.FixtureRequest, record_testsuite_property: Callable[[str, object], None]
            ) -> Iterator[RunState]:
    """The run's state, with its fleet of machines; destroys them all at the end."""
    state = request.config.stash.get(STATE, None)
    if state is None:
        pytest.skip(NO_PROVIDER)
    state.props.update(artifacts.run_properties(state.provider, state.spec, state.run_id))
    for key, val in state.props.items():
        record_testsuite_property(key, val)
    state.fleet = Fleet(state.provider, state.spec, state.keep)
    yield state
    if state.facts is not None:  # read by the gather the checks shared, done by now
        for key, val in artifacts.guest_properties(state.facts).items():
            record_testsuite_property(key, val)
    _close(state)
    for key, val in backoff.properties().items():
        record_testsuite_property(key, val)


@pytest.fixture(scope="session")
def instance_types(request: pytest.FixtureRequest) -> Table:
    """The run's instance-type table (shipped, plus --instance-types): read without booting, so
    a check that does not apply to the instance type is skipped before any machine starts."""
    state = request.config.stash.get(STATE, None)
    if state is None:
        pytest.skip(NO_PROVIDER)
    return state.spec.instance_types


@pytest.fixture(scope="session")
def instance_type_entry(request: pytest.FixtureRequest, instance_types: Table) -> InstanceTypeEntry | None:
    """What the table says this run's instance type promises (None: it is not in the table)."""
    state = request.config.stash[STATE]
    if not state.spec.instance_type:
        return None
    return instance_types.lookup(state.provider.name, state.spec.instance_type)


def _wanted(session: pytest.Session, fixtures: tuple[str, ...]) -> bool:
    """Whether a test that will run (not skipped as not applicable) uses one of *fixtures*."""
    return any(set(fixtures) & set(getattr(item, "fixturenames", ()))
               and not item.get_closest_marker("skip") for item in session.items)


def _peer_wanted(session: pytest.Session, state: RunState) -> bool:
    """The throughput check will run: selected, the provider can link two machines, and the
    instance type has a floor to hold."""
    entry = (state.spec.instance_types.lookup(state.provider.name, state.spec.instance_type)
             if state.spec.instance_type else None)
    return (_wanted(session, ("peer",)) and state.provider.peer_link_refused is None
            and entry is not None and entry.throughput_floor_mbps is not None)


def _spares_wanted(session: pytest.Session, state: RunState) -> int:
    """A second machine for the uniqueness or network_perf suite boots alongside the first when
    that suite will run: overlapping the boots saves one boot's wait (minutes on a cloud)."""
    return int(_wanted(session, ("twin",)) or _peer_wanted(session, state))


@pytest.fixture(scope="session")
def instance(dct_run: RunState, request: pytest.FixtureRequest,
             record_testsuite_property: Callable[[str, object], None]) -> Instance:
    """The machine under test, booted and reachable (launched on first use)."""
    if dct_run.error is not None:
        pytest.fail(f"no machine: {dct_run.error.message}", pytrace=False)
    assert dct_run.fleet is not None
    try:
        inst = dct_run.fleet.launch_with_spares(
            _spares_wanted(request.session, dct_run),
            progress.for_pytest(request.config, dct_run.provider.name),
            **({"peer_network": True} if _peer_wanted(request.session, dct_run) else {}))
    except DCTError as exc:
        dct_run.error = exc
        request.session.shouldstop = f"no machine to test: {exc.message}"
    if dct_run.error is not None:  # outside the except: no chained traceback in the report
        pytest.fail(str(dct_run.error), pytrace=False)
    dct_run.ready_at = dct_run.ready_at or time.monotonic()
    dct_run.boot_seconds = dct_run.boot_seconds or inst.ready.boot_seconds
    if inst.host is not None and dct_run.probes:
        dct_run.facts = dct_run.facts or facts_mod.start(inst.host.backend.client,
                                                          dct_run.probes.values())
    for key, val in artifacts.instance_properties(inst, dct_run.artifacts_dir).items():
        record_testsuite_property(key, val)
    return inst


@pytest.fixture(scope="session")
def machine(instance: Instance) -> Machine:
    """The machine as the platform describes it: facts, console, reboot."""
    return instance.machine


#: a shell's exit status when it could not run the command at all (missing, not executable)
CANNOT_RUN = (126, 127)


class CheckedFacts:
    """The gathered facts as checks read them: a probe whose command the guest lacks fails the
    check that reads it, saying so, instead of reading as "nothing found"."""

    def __init__(self, facts: Facts) -> None:
        self._facts = facts

    def __getitem__(self, name: str) -> facts_mod.Output:
        out = self._facts[name]
        if out.rc in CANNOT_RUN:
            pytest.fail(f"the guest cannot run what this check reads ({out.why()}): a command "
                        "the image is expected to have is missing or not executable", pytrace=False)
        return out

    def __contains__(self, name: str) -> bool:
        return name in self._facts

    def wait(self) -> CheckedFacts:
        self._facts.wait()
        return self


class NoLogin:
    """Stands for the guest when the login was refused: every check that reads the guest fails,
    saying why, instead of erroring in its setup (the machine is up; the image refuses us)."""

    def __init__(self, why: str) -> None:
        self._why = why

    def _refuse(self) -> None:
        pytest.fail(f"cannot log in to the machine, so this cannot be checked: {self._why} "
                    "(see bvt.ssh_login_default_user)", pytrace=False)

    def __getitem__(self, name: str) -> Any:
        self._refuse()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    def __contains__(self, name: str) -> bool:
        return True

    def wait(self) -> NoLogin:
        return self


@pytest.fixture(scope="session")
def facts(instance: Instance, dct_run: RunState) -> CheckedFacts | NoLogin:
    """Every collected suite's probes, run once in a few round trips."""
    if instance.host is None:
        return NoLogin(str(instance.ready.login_error))
    if dct_run.facts is None:
        dct_run.facts = facts_mod.start(instance.host.backend.client, dct_run.probes.values())
    return CheckedFacts(dct_run.facts)


@pytest.fixture(scope="session")
def boot_budget(request: pytest.FixtureRequest, machine: Machine, dct_run: RunState) -> float:
    """Seconds to SSH-ready the image may take here: --boot-budget, else the platform's (by
    provider, and by acceleration where the machine is emulated)."""
    given = options.value(request.config, "boot-budget")
    if given:
        try:
            return float(given)
        except ValueError:
            pytest.fail(f"--boot-budget {given!r}: give seconds", pytrace=False)
    return dct_run.provider.boot_budget(machine)


@pytest.fixture(scope="session")
def host(instance: Instance) -> Any:
    """testinfra Host on the machine's one verified SSH connection."""
    if instance.host is None:
        return NoLogin(str(instance.ready.login_error))
    return instance.host
