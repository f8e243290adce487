"""Planned degradation end to end: OM(1) at N = 4 switches to SM(1) at the same tick on every loyal
board when one board goes silent, survives a second (lying) board, and comes back to OM(1) once the
silent board reappears; in the simulator and with real voterd processes on ptys. Switched off,
the same two faults break OM(1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.checks import CheckResult, NodeLog
from hil.outcome import judge
from hil.pty_run import run as pty_run
from hil.scenario import Scenario
from hil.sim import SimRunner
from hil.verdict import summary
from voter.core.adversary import Strategy
from voter.core.mode import DegradeConfig, ModeMonitor
from voter.core.protocol import Algorithm
from voter.faultmodel import Crash, Fault, Traitor, Window

ON = DegradeConfig(Algorithm.SM)
#: board 3 silent from tick 20 to 200; board 2 lies (to all, in all it relays) from 60 to 140
TWO_FAULTS = (
    Traitor(3, Strategy.SILENT, window=Window(20, 200)),
    Traitor(2, Strategy.LIE, window=Window(60, 140)),
)


def _scenario(faults: tuple[Fault, ...], degrade: DegradeConfig | None, **kw: object) -> Scenario:
    return Scenario(
        name="degrade",
        algorithm=Algorithm.OM,
        faults=faults,
        degrade=degrade,
        **kw,  # type: ignore[arg-type]
    )


def _sim(sc: Scenario, out: Path) -> tuple[CheckResult, dict[int, NodeLog]]:
    outcome = SimRunner().run(sc, out)
    return judge(sc, outcome.logs), outcome.logs


def _modes(log: NodeLog) -> list[tuple[int, str]]:
    return [(e["tick"], e["algorithm"]) for e in log.events if e.get("event") == "mode"]


def test_sim_switch_holds_where_om1_breaks(tmp_path: Path) -> None:
    """Publishing every decision: with the switch, every loyal board runs SM(1) from tick 22 to
    202 and the run is safe; without it, OM(1) with two faulty boards of four is not."""
    kw = {"ticks": 260, "seed": 17, "fail_silent": False}
    on, logs = _sim(_scenario(TWO_FAULTS, ON, **kw), tmp_path / "on")
    assert on.safe, on.violations[:3]
    assert on.isolation["modes"] == [
        {"algorithm": "sm", "tick": 22},
        {"algorithm": "om", "tick": 203},
    ]
    for i in (0, 1):
        assert _modes(logs[i]) == [(22, "sm"), (203, "om")]
        algs = {t: str(d.algorithm) for t, d in logs[i].decisions.items()}
        assert algs[21] == "om" and algs[22] == "sm" and algs[202] == "sm" and algs[203] == "om"
    off, off_logs = _sim(_scenario(TWO_FAULTS, None, **kw), tmp_path / "off")
    assert not off.safe
    assert {v.prop for v in off.violations} & {"agreement", "validity"}
    assert not [e for e in off_logs[0].events if e.get("event") in ("mode", "bound")]


def test_sim_shipped_boards_switch_together_and_withhold_rather_than_diverge(
    tmp_path: Path,
) -> None:
    """Fail-silent boards: the same agreed switch; while two boards are faulty the N - f
    confirmations fail and the loyal pair withholds (safe), then publishes again."""
    check, logs = _sim(_scenario(TWO_FAULTS, ON, ticks=260, seed=17), tmp_path)
    assert check.holds, check.violations[:3]
    for i in (0, 1):
        assert _modes(logs[i]) == [(22, "sm"), (203, "om")]
        published = [t for t, d in logs[i].decisions.items() if d.withheld is None]
        assert 150 in published and 250 in published


def test_sim_restarted_board_follows_its_peers_into_sm(tmp_path: Path) -> None:
    """Board 1 crashes while the cluster runs SM(1): it restarts under OM(1), sees f + 1 peers'
    signed frames, runs SM(1) from the next tick, and withholds until a confirmed vector."""
    faults = (Traitor(3, Strategy.SILENT, window=Window(20, 200)), Crash(1, 80))
    check, logs = _sim(_scenario(faults, ON, ticks=160, seed=17), tmp_path)
    assert check.safe, check.violations[:3]
    back = [e for e in logs[1].events if e.get("event") == "mode" and e["tick"] > 80]
    assert [(e["algorithm"], e["why"]) for e in back] == [("sm", "peers")]
    rejoined = back[0]["tick"]
    assert logs[1].decisions[rejoined - 1].withheld is not None
    assert str(logs[1].decisions[rejoined + 5].algorithm) == "sm"
    assert logs[1].decisions[rejoined + 5].withheld is None


def test_pty_voterd_processes_switch_at_the_same_tick_and_back(tmp_path: Path) -> None:
    """Real voterd processes on ptys (cluster file with [degrade]): board 3 silent from tick 4 to
    12; every loyal board logs the switch to SM and back at the same ticks."""
    faults = (Traitor(3, Strategy.SILENT, window=Window(4, 12)),)
    out = pty_run(_scenario(faults, ON, ticks=24, seed=3, tick_hz=25.0), tmp_path)
    assert '[degrade]\nto = "sm"' in (tmp_path / "cluster.toml").read_text()
    check = out.check
    assert check.safe, check.violations
    modes = check.isolation["modes"]
    assert [m["algorithm"] for m in modes] == ["sm", "om"], modes
    assert not [v for v in check.violations if v.prop == "isolation"]
    assert "mode switches (agreed by every loyal board): sm from tick" in summary(out)


def test_sim_without_the_peers_rule_a_restarted_board_never_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catch-up rule switched off: the restarted board stays on OM(1) among SM(1) peers, its
    vectors are never confirmed, and it withholds to the end (safe, but lost for good)."""
    monkeypatch.setattr(ModeMonitor, "lost", lambda self, tick, peers, threshold: None)
    faults = (Traitor(3, Strategy.SILENT, window=Window(20, 200)), Crash(1, 80))
    check, logs = _sim(_scenario(faults, ON, ticks=160, seed=17), tmp_path)
    assert check.safe, check.violations[:3]
    after = [d for t, d in logs[1].decisions.items() if t > 100]
    assert after and all(d.withheld is not None for d in after)
    assert all(str(d.algorithm) == "om" for d in after)
