"""The fault-bound monitor and the planned switch (voter.core.mode), the Board's wrong-algorithm
drop, the checker's mode comparison and the [degrade] config: pure parts, no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.isolation import IsolationLedger
from tests.test_board import READINGS, run_tick
from tests.test_config import cluster_text, write
from voter.config import ConfigFileError, dump_cluster, load_cluster
from voter.core.board import DROP_MODE, Board
from voter.core.ic import ic_params
from voter.core.mode import (
    AGREED,
    PEERS,
    Census,
    DegradeConfig,
    ModeMonitor,
    census,
    margin,
    parse_degrade,
    plan,
)
from voter.core.protocol import Algorithm
from voter.testing import board_keys

OM, OMH, SM = Algorithm.OM, Algorithm.OMH, Algorithm.SM
R = (1.0, 2.0, 3.0)


def test_census_counts_error_entries_and_isolated_peers_apart() -> None:
    """ERROR entries of peers not isolated are manifest; isolated peers count once, as isolated."""
    assert census([R, None, R, None], isolated=()) == Census(manifest=2, isolated=0)
    assert census([R, None, R, None], isolated=(3,)) == Census(manifest=1, isolated=1)


@pytest.mark.parametrize(
    ("algorithm", "manifest", "expected"),
    [
        (OM, 0, 1),  # N = 4 >= 3f + 1 with f = 1
        (OM, 1, 0),  # one silent board uses the whole bound
        (OM, 2, -1),  # two: OM(1) is already outside it
        (OMH, 1, 0),  # 4 > 2a + b + 1: b = 1 leaves no room for a liar
        (OMH, 2, 0),  # ... but two crashes are still inside (Lincoln-Rushby)
        (OMH, 3, -1),
        (SM, 0, 1),  # SM(1): one liar (m = 1) ...
        (SM, 1, 1),  # ... also next to a silent board (it signs nothing)
        (SM, 2, 0),  # N >= f + 2
        (SM, 3, -1),
    ],
)
def test_margin_is_the_bound_of_each_algorithm(
    algorithm: str, manifest: int, expected: int
) -> None:
    """How many more arbitrary faults each algorithm tolerates at N = 4, m = 1."""
    assert margin(algorithm, 4, 1, Census(manifest, 0)) == expected


def test_plan_degrades_when_one_more_fault_would_break_the_bound_and_comes_back() -> None:
    assert plan(OM, SM, 4, 1, Census(0, 0)) == OM
    assert plan(OM, SM, 4, 1, Census(1, 0)) == SM
    assert plan(OM, SM, 4, 1, Census(0, 1)) == SM
    assert plan(OM, None, 4, 1, Census(1, 0)) == OM  # off: never switches


def _monitor() -> ModeMonitor:
    return ModeMonitor(0, 4, 1, OM, SM)


def test_switch_takes_effect_two_ticks_after_the_confirmed_vector() -> None:
    """Vector 10 shows board 3 missing; confirmed in round 1 of 11; tick 12 opens under SM."""
    mon = _monitor()
    for t in range(10):
        mon.open(t)
        mon.observe(t, [R, R, R, R], ())
        mon.confirm(t)
    mon.open(10)
    events = mon.observe(10, [R, R, R, None], ())
    assert [(e["event"], e["margin"]) for e in events] == [("bound", 0)]
    mon.open(11)
    mon.confirm(10)
    mon.observe(11, [R, R, R, None], ())
    assert mon.algorithm_at(11) == OM
    switch = mon.open(12)
    assert [(e["event"], e["tick"], e["algorithm"], e["why"]) for e in switch] == [
        ("mode", 12, "sm", AGREED)
    ]
    assert mon.sure_of(12)
    assert "mode sm margin" in mon.status()


def test_an_unconfirmed_vector_plans_nothing_and_the_tick_is_not_vouched_for() -> None:
    """A board whose vector the cluster did not confirm keeps its algorithm and must withhold."""
    mon = _monitor()
    for t in range(4):
        mon.open(t)
        mon.observe(t, [R, R, R, None], ())
    assert mon.open(4) == [] and mon.running == OM
    assert not mon.sure_of(4)


def test_a_board_that_lost_track_follows_f_plus_one_peers() -> None:
    """f + 1 = 2 peers' frames of the other algorithm: from the next tick, this board runs it."""
    mon = _monitor()
    mon.open(50)
    mon.lost(50, peers=1, threshold=2)  # one peer could be the liar: ignored
    assert mon.algorithm_at(51) == OM
    mon.lost(50, peers=2, threshold=2)
    events = mon.open(51)
    assert [(e["algorithm"], e["why"]) for e in events] == [("sm", PEERS)]
    assert not mon.sure_of(51)


def test_a_confirmed_plan_wins_over_the_peers_rule() -> None:
    mon = _monitor()
    mon.open(9)
    mon.observe(9, [R, R, R, R], ())
    mon.confirm(9)  # plans OM for 11
    mon.open(10)
    mon.lost(10, peers=3, threshold=2)
    assert mon.algorithm_at(11) == OM


def test_monitor_only_never_switches_or_logs() -> None:
    mon = ModeMonitor(0, 4, 1, OM, None)
    mon.open(0)
    assert mon.observe(0, [R, None, None, R], ()) == []
    mon.confirm(0)
    assert mon.open(2) == [] and mon.sure_of(2)
    assert mon.status() == "mode om margin -1 (manifest 2, isolated 0)"


def test_parse_degrade_accepts_only_oral_to_sm() -> None:
    assert parse_degrade(OM, "sm") == DegradeConfig(SM)
    assert parse_degrade(OMH, "sm") == DegradeConfig(SM)
    with pytest.raises(ValueError, match="to must be"):
        parse_degrade(OM, "om")
    with pytest.raises(ValueError, match="needs algorithm"):
        parse_degrade(SM, "sm")


def _boards(alg: Algorithm, checked: bool) -> list[Board]:
    keys = board_keys(4, "t")
    boards = [Board(ic_params(4, 1, alg, "t"), i, 3, keys[i]) for i in range(4)]
    for b in boards:
        b.mode_checked = checked
    return boards


def test_frames_of_the_other_algorithm_are_counted_drops() -> None:
    """Board 0 still on OM while its peers run SM: their signed frames are `mode` drops and it
    names the peers; with the check off (no [degrade]) the same frames are taken."""
    boards = _boards(SM, checked=True)
    boards[0].set_algorithm(OM)
    reports = run_tick(boards, 1)
    assert reports[0].reasons.get(DROP_MODE, 0) > 0
    assert reports[0].mode_peers == frozenset({1, 2, 3})
    assert reports[0].decision.vector[1] is None
    # peers drop board 0's unsigned frames the same way, and agree among themselves
    assert all(r.mode_peers == frozenset({0}) for r in reports[1:])
    assert reports[1].decision.vector == reports[2].decision.vector
    assert reports[1].decision.vector[1] == READINGS[1]
    off = _boards(SM, checked=False)
    off[0].set_algorithm(OM)
    assert DROP_MODE not in run_tick(off, 1)[0].reasons


def test_checker_flags_a_switch_not_logged_by_every_loyal_board() -> None:
    """The mode property shares the isolation ledger: same algorithm, same tick, every board."""
    ledger = IsolationLedger([0, 1, 2])
    for i in (0, 1, 2):
        ledger.event(i, {"event": "mode", "node": i, "tick": 22, "algorithm": "sm"})
    for i in (0, 1):
        ledger.event(i, {"event": "mode", "node": i, "tick": 203, "algorithm": "om"})
    ledger.event(2, {"event": "mode", "node": 2, "tick": 204, "algorithm": "om"})
    summary, problems = ledger.verdict({0: 259, 1: 259, 2: 259})
    assert summary["modes"][0] == {"algorithm": "sm", "tick": 22}
    assert [(t, nodes) for t, nodes, _ in problems] == [(203, [2]), (204, [0, 1])]
    assert "switch to om not logged by boards [2]" in problems[0][2]


def test_degrade_table_in_the_cluster_file(tmp_path: Path) -> None:
    """[degrade] to = "sm" loads, dumps back the same, and is refused on an SM cluster."""
    cfg = load_cluster(write(tmp_path, cluster_text() + '\n[degrade]\nto = "sm"\n'))
    assert cfg.degrade == DegradeConfig(SM)
    again = tmp_path / "again"
    again.mkdir()
    assert load_cluster(write(again, dump_cluster(cfg))).degrade == cfg.degrade
    assert load_cluster(write(tmp_path, cluster_text())).degrade is None
    bad = cluster_text(algorithm="sm") + '\n[degrade]\nto = "sm"\n'
    with pytest.raises(ConfigFileError, match="degrade: needs algorithm"):
        load_cluster(write(tmp_path, bad))


def test_bad_degrade_in_a_campaign_is_one_clear_error(tmp_path: Path) -> None:
    """A campaign's `degrade` is checked like the cluster file's: the scenario and the problem."""
    from hil.campaign import CampaignError, load_campaign

    path = tmp_path / "c.toml"
    body = '[campaign]\nname = "c"\n[[scenario]]\nname = "s"\nalgorithm = "{}"\ndegrade = {}\n'
    path.write_text(body.format("om", '{ to = "sm" }'))
    assert load_campaign(path).scenarios[0].degrade == DegradeConfig(SM)
    path.write_text(body.format("sm", '{ to = "sm" }'))
    with pytest.raises(CampaignError, match="scenario 's': degrade: needs algorithm"):
        load_campaign(path)
    path.write_text(body.format("om", '"sm"'))
    with pytest.raises(CampaignError, match="degrade must be"):
        load_campaign(path)


def test_firmware_sim_degrade_on_sm_is_one_line() -> None:
    """`firmware-sim run --degrade sm` on an SM cluster: one line, exit 2, no traceback."""
    import subprocess
    import sys

    args = ["run", "--algorithm", "sm", "--degrade", "sm", "--ticks", "5", "--out", "/nonexistent"]
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_sim.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith('error: --degrade: needs algorithm "om" or "omh" (got \'sm\')')
