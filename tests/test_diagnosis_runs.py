"""Diagnosis end to end: an SM equivocator isolated by every loyal board at the same tick, in the
simulator and with real voterd processes on ptys; switched off, the liar is never shut out."""

from __future__ import annotations

from pathlib import Path

from hil.checks import CheckResult, NodeLog
from hil.outcome import judge
from hil.pty_run import run as pty_run
from hil.scenario import Scenario
from hil.sim import SimRunner
from hil.verdict import summary
from voter.core.adversary import Strategy
from voter.core.diagnosis import DiagnosisConfig
from voter.core.protocol import Algorithm
from voter.faultmodel import Fault, Traitor, Window

ON = DiagnosisConfig(probation_ticks=30)


def _scenario(
    faults: tuple[Fault, ...], diagnosis: DiagnosisConfig | None, **kw: object
) -> Scenario:
    return Scenario(
        name="diag",
        algorithm=Algorithm.SM,
        faults=faults,
        diagnosis=diagnosis,
        **kw,  # type: ignore[arg-type]
    )


def _sim(sc: Scenario, out: Path) -> tuple[CheckResult, dict[int, NodeLog]]:
    outcome = SimRunner().run(sc, out)
    return judge(sc, outcome.logs), outcome.logs


def _isolations(check: CheckResult) -> list[tuple[int, int]]:
    return [(x["peer"], x["tick"]) for x in check.isolation["isolations"]]


def test_sim_equivocator_isolated_by_all_within_two_ticks(tmp_path: Path) -> None:
    """First equivocation at tick 10: every loyal board logs evidence, all isolate board 3 at the
    same tick (the checker compares them), at most 2 ticks later; no loyal board is isolated."""
    faults = (Traitor(3, Strategy.EQUIVOCATE, window=Window(10, 20)),)
    check, logs = _sim(_scenario(faults, ON, ticks=120, seed=5), tmp_path)
    assert check.safe and check.isolated_ok
    assert _isolations(check) == [(3, 12)]
    assert check.isolation["detection_latency"] == {"3": 2}
    assert check.isolation["false_isolations"] == 0
    # probation: 30 clean ticks after the last accusation (evidence of tick 20, carried in 21)
    assert [(x["peer"], x["tick"]) for x in check.isolation["readmissions"]] == [(3, 52)]
    for i in (0, 1, 2):
        events = [e for e in logs[i].events if e.get("event") == "isolate"]
        assert [(e["peer"], e["tick"], e["reason"]) for e in events] == [(3, 12, "equivocation")]


def test_sim_switched_off_the_proven_liar_keeps_its_say(tmp_path: Path) -> None:
    """Board 3 equivocates at ticks 10-11, then tells every board the same lie. With diagnosis its
    entry stays ERROR through probation; switched off, its lie is in every agreed vector and no
    board ever isolates it."""
    faults = (
        Traitor(3, Strategy.EQUIVOCATE, window=Window(10, 11)),
        Traitor(3, Strategy.LIE, window=Window(12)),
    )
    ticks = range(14, 40)
    on, on_logs = _sim(_scenario(faults, ON, ticks=60, seed=5), tmp_path / "on")
    assert _isolations(on) == [(3, 12)]
    off, off_logs = _sim(_scenario(faults, None, ticks=60, seed=5), tmp_path / "off")
    assert _isolations(off) == []
    for i in (0, 1, 2):
        assert all(on_logs[i].decisions[t].vector[3] is None for t in ticks)
        assert all(off_logs[i].decisions[t].vector[3] is not None for t in ticks)
        assert not [e for e in off_logs[i].events if e.get("event") in ("isolate", "evidence")]


def test_sim_no_false_isolation_without_faults(tmp_path: Path) -> None:
    """Fault-free, diagnosis on: no evidence, no isolation (10^5 ticks: docs/performance.md)."""
    check, logs = _sim(_scenario((), ON, ticks=400, seed=9), tmp_path)
    assert check.holds
    assert check.isolation["isolations"] == []
    assert all(
        e.get("event") not in ("evidence", "isolate") for log in logs.values() for e in log.events
    )


def test_pty_equivocator_isolated_by_all_voterd_processes(tmp_path: Path) -> None:
    """Real voterd processes on ptys (cluster file with [diagnosis]): the same agreed isolation."""
    faults = (Traitor(3, Strategy.EQUIVOCATE, window=Window(8)),)
    out = pty_run(_scenario(faults, ON, ticks=24, seed=3, tick_hz=25.0), tmp_path)
    assert "[diagnosis]" in (tmp_path / "cluster.toml").read_text()
    check = out.check
    assert check.safe, check.violations
    isolations = _isolations(check)
    assert [p for p, _ in isolations] == [3]
    first = check.isolation["first_evidence"]["3"]
    assert isolations[0][1] - first <= 2
    assert check.isolation["false_isolations"] == 0
    assert "isolated (agreed by every loyal board): board 3 at tick" in summary(out)
