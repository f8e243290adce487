"""Command-log traitors on real voterd processes: the board told to be the traitor (--hil)
rewrites its own replica's sends with `voter.smr_faults`, the simulator's code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.campaign import run_scenario
from hil.checks import read_run
from hil.scenario import Scenario
from voter.core.adversary import Strategy
from voter.faultmodel import Traitor


def stop_lines(run: Path, nodes: int) -> dict[int, dict[str, Any]]:
    logs = read_run(run, nodes)
    return {
        i: next(e for e in logs[i].events if e.get("event") == "command-log") for i in range(nodes)
    }


def test_an_equivocating_pbft_primary_on_pty_boards_is_replaced(tmp_path: Path) -> None:
    """Board 0, view 0's primary, sends each backup another pre-prepare for the same number:
    nobody prepares, the backups change view, every command commits alike on boards 1-3."""
    sc = Scenario(
        name="equivocating",
        nodes=4,
        replication="pbft",
        commands=40,
        ticks=3000,
        seed=6,
        faults=(Traitor(0, Strategy.EQUIVOCATE),),
    )
    result = run_scenario(sc, "pty", tmp_path)
    assert result.skipped is None
    assert result.check.holds, result.check.violations
    log = result.extra["command_log"]
    assert 40 == log["accepted"] and log["view_changes"] >= 1


def test_a_lying_pbft_replica_on_pty_boards_is_outvoted(tmp_path: Path) -> None:
    """Board 3 prepares, commits, checkpoints and replies wrong, signing every lie (more
    signatures than a loyal board): outvoted, every command committed alike."""
    sc = Scenario(
        name="lying",
        nodes=4,
        replication="pbft",
        commands=30,
        ticks=3000,
        seed=7,
        faults=(Traitor(3, Strategy.LIE),),
    )
    result = run_scenario(sc, "pty", tmp_path)
    assert result.check.holds, result.check.violations
    assert 30 == result.extra["command_log"]["accepted"]
    stops = stop_lines(tmp_path / "runs" / "lying", 4)
    assert stops[3]["signatures"] > stops[1]["signatures"] + 30


def test_an_equivocating_crash_only_leader_on_pty_boards_breaks_the_log(tmp_path: Path) -> None:
    """The seed's argument on real boards: 3 boards, Paxos, leader 0 sends each follower
    another request for the same number; both accept, both execute: the checker reports
    that boards 1 and 2 disagree (an agreement violation), where PBFT above held."""
    sc = Scenario(
        name="crash-equivocating",
        nodes=3,
        replication="crash",
        commands=30,
        ticks=600,
        seed=8,
        faults=(Traitor(0, Strategy.EQUIVOCATE),),
        expect="violation",
    )
    result = run_scenario(sc, "pty", tmp_path)
    assert result.skipped is None and "violation" == result.outcome
    assert not result.check.agreement
    bad = [v for v in result.check.violations if v.prop == "agreement"]
    assert bad and sorted(bad[0].nodes) == [1, 2]
