"""Hypothesis properties: inside the bound IC holds for any liars; outside, the search fails it."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from hil.verify import search
from tests.strategies import adversary, ic_inside_bound
from voter.core.values import ReadingDomain
from voter.testing import run_ic


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ic_inside_bound())
def test_agreement_and_validity_inside_the_bound(case: dict) -> None:  # type: ignore[type-arg]
    """Random clusters, traitor sets within the bound and strategies: IC1 and IC2 hold."""
    domain = ReadingDomain(3)
    traitors = {
        t: adversary(name, domain, case["seed"] + t) for t, name in case["traitors"].items()
    }
    run = run_ic(case["nodes"], case["m"], case["algorithm"], case["readings"], traitors)
    assert run.agreement()
    assert run.validity(case["readings"])
    outputs = {run.decisions[i].output for i in run.loyal()}
    assert 1 == len(outputs)


def test_outside_the_bound_the_checker_finds_violations() -> None:
    """The same checker does fail: N=3 OM(1) f=1, N=4 OM(1) f=2, N=4 SM(1) f=2."""
    for args in [(3, 1, "om", 1), (4, 1, "om", 2), (4, 1, "sm", 2), (6, 1, "om", 2)]:
        assert search(*args).holds is False, args
