"""The crash-only command log ([replication] protocol = "paxos") on real voterd processes:
three boards on ptys, `voter command send`, a leader killed and restarted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hil.campaign import run_scenario
from hil.checks import read_run
from hil.cluster import ProcessCluster
from hil.scenario import Scenario
from tests.test_command_log_pty import TEST_HZ, commits, send
from voter.config import ReplicationConfig
from voter.faultmodel import Crash

PAXOS = ReplicationConfig(protocol="paxos", timeout_ticks=10)


def events(c: ProcessCluster, node: int, kind: str) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in c.log_path(node).read_text().splitlines()]
    return [x for x in lines if x.get("event") == kind]


def test_commands_commit_alike_on_three_paxos_boards(tmp_path: Path) -> None:
    """3 voterd (2f+1, SM agreement), 4 commands through boards 1 and 2: each answered (the
    leader's reply), every board logs the same commits, and the stop line counts Paxos
    messages and no signature."""
    c = ProcessCluster(
        tmp_path / "run", nodes=3, algorithm="sm", tick_hz=TEST_HZ, replication=PAXOS
    )
    c.setup()
    try:
        c.start()
        answers = []
        for k in range(2):
            for node in (1, 2):
                r = send(c, node, f"arm {node} {k}")
                assert 0 == r.returncode, r.stderr
                answers.append(json.loads(r.stdout))
    finally:
        c.stop()
    logs = {i: [(x["seq"], x["command"]) for x in commits(c, i)] for i in range(3)}
    assert 4 == len(logs[0]) and logs[0] == logs[1] == logs[2]
    assert [1, 2, 3, 4] == sorted(a["seq"] for a in answers)
    results = {x["seq"]: x["result"] for x in commits(c, 0)}
    assert all(results[a["seq"]] == a["result"] for a in answers)
    stop = events(c, 0, "command-log")[-1]
    assert "paxos" == stop["protocol"] and 0 == stop["signatures"] == stop["verifies"]
    assert 8 == stop["messages"]["Accept"] and 4 == stop["messages"]["Reply"]


def test_a_killed_leader_restarts_as_a_learner_and_logs_the_same_commands(
    tmp_path: Path,
) -> None:
    """`--mode pty` runs a crash-only scenario: the rig SIGKILLs board 0 (view 0's leader) at
    tick 40 and restarts it; boards 1 and 2 change view and go on, the restarted board
    recovers as a learner, and the checker finds one log on all three: the restarted
    board's file holds each sequence number once (before the kill, and after recovery)."""
    sc = Scenario(
        name="leader-crash",
        nodes=3,
        replication="crash",
        commands=300,
        ticks=3000,
        seed=5,
        faults=(Crash(0, at_tick=40),),
    )
    result = run_scenario(sc, "pty", tmp_path)
    assert result.skipped is None
    assert result.check.holds, result.check.violations
    log = result.extra["command_log"]
    assert 300 == log["accepted"] and log["view_changes"] >= 1
    assert 1 == result.counters["restarts"] == result.counters["crashes"]
    run = tmp_path / "runs" / "leader-crash"
    seqs = {
        i: [e["seq"] for e in read_run(run, 3)[i].events if e.get("event") == "commit"]
        for i in range(3)
    }
    assert list(range(1, 301)) == seqs[0] == seqs[1] == seqs[2]
    rec = [e for e in read_run(run, 3)[0].events if e.get("event") == "command-log-recovered"]
    assert 1 == len(rec) and rec[0]["view"] >= 1
