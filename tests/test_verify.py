"""`hil verify`: the adversary search proves the bounds and finds the impossibilities."""

from __future__ import annotations

import json

import pytest

from hil.verify import search
from tests.conftest import run_cli


def verify(*args: str) -> dict[str, object]:
    proc = run_cli("hil", "verify", *args, "--json", timeout=600)
    assert 0 == proc.returncode, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_n3_om1_one_traitor_counterexample() -> None:
    """N=3, OM(1), 1 traitor: the exhaustive search prints a counterexample (impossibility)."""
    out = verify("--nodes", "3", "--m", "1", "--algorithm", "om", "--traitors", "1")
    assert out["holds"] is False and out["exhaustive"] is True
    ce = out["counterexample"]
    assert isinstance(ce, dict)
    assert ce["agreement"] is False or ce["validity"] is False
    assert 1 == len(ce["messages"])  # minimal: one lie is enough


def test_n4_om1_two_traitors_counterexample() -> None:
    """N=4, OM(1), 2 traitors: beyond N > 3f, a violation is found."""
    out = verify("--nodes", "4", "--m", "1", "--algorithm", "om", "--traitors", "2")
    assert out["holds"] is False


def test_n4_om1_one_traitor_holds_exhaustively() -> None:
    """N=4, OM(1), 1 traitor: every placement and every message choice keeps IC1 and IC2."""
    out = verify("--nodes", "4", "--m", "1", "--algorithm", "om", "--traitors", "1")
    assert out["holds"] is True and out["exhaustive"] is True
    assert out["checked"] == out["space"] == 81


def test_n3_sm1_one_traitor_holds_exhaustively() -> None:
    """N=3, SM(1), 1 traitor: signatures make three generals enough."""
    out = verify("--nodes", "3", "--m", "1", "--algorithm", "sm", "--traitors", "1")
    assert out["holds"] is True and out["exhaustive"] is True
    assert out["checked"] == out["space"]


def test_n4_sm2_two_traitors_holds_sampled() -> None:
    """N=4, SM(2), 2 colluding traitors: 4,000 sampled cases (of 442,368) keep agreement."""
    out = verify(
        "--nodes",
        "4",
        "--m",
        "2",
        "--algorithm",
        "sm",
        "--traitors",
        "2",
        "--max-runs",
        "0",
        "--samples",
        "4000",
    )
    assert out["holds"] is True and out["exhaustive"] is False
    assert 4000 == out["checked"]


def test_n7_om2_two_traitors_holds_sampled() -> None:
    """N=7, OM(2), 2 traitors: 1,500 sampled cases of a 2e25 space keep agreement and validity."""
    out = verify(
        "--nodes", "7", "--m", "2", "--algorithm", "om", "--traitors", "2", "--samples", "1500"
    )
    assert out["holds"] is True and out["exhaustive"] is False
    assert 1500 == out["checked"]


def test_n4_sm1_two_traitors_violates() -> None:
    """N=4, SM(1), 2 traitors: f > m, so a colluding pair splits the lieutenants."""
    r = search(4, 1, "sm", 2)
    assert r.holds is False


def test_sampled_violation_is_shrunk() -> None:
    """A sampled search shrinks its counterexample to a few deviating messages."""
    r = search(4, 1, "om", 2, max_runs=0, samples=200, seed=3)
    assert r.holds is False and r.counterexample is not None
    assert r.counterexample.deviations() <= 3


def test_human_output_states_the_count() -> None:
    """The human output says how many cases were checked and how."""
    proc = run_cli(
        "hil", "verify", "--nodes", "4", "--m", "1", "--algorithm", "om", "--traitors", "1"
    )
    assert 0 == proc.returncode
    assert "exhaustive: all 81 cases" in proc.stdout and "holds" in proc.stdout


@pytest.mark.parametrize("args", [["--nodes", "1"], ["--nodes", "4", "--traitors", "9"]])
def test_bad_arguments_are_one_line(args: list[str]) -> None:
    """Impossible parameters: one line on stderr, exit 2."""
    base = {"--nodes": "4", "--m": "1", "--algorithm": "om", "--traitors": "1"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    proc = run_cli("hil", "verify", *flat)
    assert 2 == proc.returncode and "Traceback" not in proc.stderr
    assert 1 == len(proc.stderr.strip().splitlines())
