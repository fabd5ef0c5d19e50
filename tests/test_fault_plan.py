"""The fault-injection benchmark's planner: every provider x phase x signal is aimed at (nothing runs)."""

from __future__ import annotations

import importlib.util
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "fault_injection.py"
SIX = ["qemu", "aws", "gce", "azure", "openstack", "vagrant"]


@pytest.fixture(scope="module")
def fi():
    spec = importlib.util.spec_from_file_location("fault_injection", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.mark.parametrize("seed", [0, 1, 7, 26, 3808672387])
@pytest.mark.parametrize(("kills", "providers"), [
    (30, ["qemu", "aws"]), (31, ["qemu", "aws"]), (45, ["qemu", "aws"]), (200, ["qemu", "aws"]),
    (30, ["qemu"]), (30, ["aws"]), (33, ["aws", "qemu"]),
    (90, SIX), (300, SIX), (301, SIX), (45, ["gce", "azure", "openstack"]), (15, ["vagrant"]),
])
def test_every_combination_is_aimed_at_first(fi, seed, kills, providers):
    targets = fi.split(kills, providers)
    assert sum(targets.values()) == kills
    aims = fi.plan(targets, random.Random(seed))
    assert len(aims) == kills
    assert Counter(p for p, _, _ in aims) == Counter(targets)
    every = {(p, ph, s) for p in providers for ph in fi.PHASES for s in fi.SIGNALS}
    assert len(every) == 15 * len(providers)
    assert set(aims) == every
    assert set(aims[:len(every)]) == every  # first: a run stopped early keeps the coverage
    for p in providers:  # the signals stay even on each provider
        sigs = Counter(s for q, _, s in aims if q == p)
        assert max(sigs.values()) - min(sigs.values()) <= 1


@pytest.mark.parametrize("per_provider", [15, 16, 100, 200])
def test_kills_per_provider(fi, per_provider):
    aims = fi.plan({"qemu": per_provider, "aws": per_provider}, random.Random(per_provider))
    assert Counter(p for p, _, _ in aims) == {"qemu": per_provider, "aws": per_provider}
    assert {(p, ph, s) for p, ph, s in aims} == {
        (p, ph, s) for p in ("qemu", "aws") for ph in fi.PHASES for s in fi.SIGNALS}


def test_every_provider_is_known(fi):
    assert list(fi.PROVIDERS) == SIX


def test_the_plan_follows_the_seed(fi):
    targets = fi.split(200, ["qemu", "aws"])
    assert fi.plan(targets, random.Random(5)) == fi.plan(targets, random.Random(5))
    assert fi.plan(targets, random.Random(5)) != fi.plan(targets, random.Random(6))


@pytest.mark.parametrize("n", range(1, 15))
def test_fewer_kills_than_combinations_are_distinct_and_spread(fi, n):
    aims = fi.plan({"qemu": n}, random.Random(n))
    assert len(set(aims)) == n
    assert len({ph for _, ph, _ in aims}) == min(n, len(fi.PHASES))
    sigs = Counter(s for _, _, s in aims)
    assert max(sigs[s] for s in fi.SIGNALS) - min(sigs[s] for s in fi.SIGNALS) <= 1


@pytest.mark.parametrize("names", [("overlay", "boot"), ("overlay", "boot", "ssh wait"), ("checks",)])
def test_only_the_phases_asked_for_are_aimed_at(fi, names):
    aimed = tuple(fi.Phase(n) for n in names)
    aims = fi.plan({"qemu": 40, "gce": 40}, random.Random(3), aimed)
    assert {ph for _, ph, _ in aims} == set(aimed)
    every = {(p, ph, s) for p in ("qemu", "gce") for ph in aimed for s in fi.SIGNALS}
    assert set(aims[:len(every)]) == every
