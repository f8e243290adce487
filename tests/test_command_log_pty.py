"""The replicated command log on real voterd processes: four boards on ptys, `voter command`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from hil.campaign import run_scenario
from hil.checks import read_run
from hil.cluster import ProcessCluster
from hil.scenario import Scenario
from hil.smr_checks import check_log
from tests.conftest import BIN
from voter.config import ReplicationConfig
from voter.core.adversary import Strategy
from voter.faultmodel import Traitor, Window

TEST_HZ = 20.0
REPLICATION = ReplicationConfig(timeout_ticks=10, checkpoint_every=4)


def commits(c: ProcessCluster, node: int) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in c.log_path(node).read_text().splitlines()]
    return [x for x in lines if x.get("event") == "commit"]


def send(
    c: ProcessCluster, node: int, op: str, timeout_s: float = 20.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "voter"),
            "command",
            "send",
            "--config",
            str(c.config_path),
            "--node",
            str(node),
            "--timeout",
            str(timeout_s),
            "--json",
            *op.split(),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout_s + 30,
    )


def test_commands_sent_through_two_boards_commit_alike_everywhere(tmp_path: Path) -> None:
    """4 voterd, 6 commands through boards 1 and 2: each answered on f+1 matching replies, and
    every board's log has the same commits at the same sequence numbers."""
    c = ProcessCluster(tmp_path / "run", tick_hz=TEST_HZ, replication=REPLICATION)
    c.setup()
    try:
        c.start()
        answers = []
        for k in range(3):
            for node in (1, 2):
                r = send(c, node, f"mode {node} {k}")
                assert 0 == r.returncode, r.stderr
                answers.append(json.loads(r.stdout))
    finally:
        c.stop()
    logs = {i: [(x["seq"], x["command"]) for x in commits(c, i)] for i in range(4)}
    shortest = min(len(v) for v in logs.values())
    assert shortest >= 6
    assert all(v[:shortest] == logs[0][:shortest] for v in logs.values())
    ops = {x["op"] for _, x in logs[0] if x is not None}
    assert {f"mode {n} {k}" for k in range(3) for n in (1, 2)} == ops
    by_op = {x["command"]["op"]: x for x in commits(c, 0) if x["command"] is not None}
    for a in answers:
        assert a["ok"] and a["result"] in {x["result"] for x in by_op.values()}


def test_a_silent_primary_on_pty_boards_is_replaced(tmp_path: Path) -> None:
    """`--mode pty` runs a command-log scenario: view 0's primary falls silent mid-run, the
    loyal boards change view, and the checker finds every command committed alike."""
    sc = Scenario(
        name="silent-primary",
        nodes=4,
        replication="pbft",
        commands=60,
        ticks=3000,
        seed=3,
        faults=(Traitor(0, Strategy.SILENT, window=Window(from_tick=40)),),
    )
    result = run_scenario(sc, "pty", tmp_path)
    assert result.skipped is None
    assert result.check.holds, result.check.violations
    log = result.extra["command_log"]
    assert 60 == log["accepted"] and log["view_changes"] >= 1


def test_the_checker_sees_a_command_log_pty_run_that_lost_commands(tmp_path: Path) -> None:
    """The same run judged against a client log that claims one more request: a liveness
    violation (the checker reads the boards' logs, it does not trust the runner)."""
    sc = Scenario(name="normal", nodes=4, replication="pbft", commands=10, ticks=2000, seed=4)
    result = run_scenario(sc, "pty", tmp_path)
    assert result.check.holds, result.check.violations
    run = tmp_path / "runs" / "normal"
    with (run / "node4.jsonl").open("a") as fh:
        fh.write(json.dumps({"event": "request", "node": 4, "tick": 5, "client": 1, "req": 99}))
        fh.write("\n")
    res = check_log(read_run(run, 5), 4, [])
    assert ["liveness"] == sorted({v.prop for v in res.violations})


def test_unsupported_command_log_faults_are_skipped_with_a_reason(tmp_path: Path) -> None:
    """A late primary is acted out by the simulator only (its network delays): one line."""
    sc = Scenario(
        name="late",
        nodes=4,
        replication="pbft",
        commands=10,
        faults=(Traitor(0, Strategy.LATE),),
    )
    result = run_scenario(sc, "pty", tmp_path)
    assert result.skipped is not None and "simulator only" in result.skipped


def test_a_killed_primary_is_replaced_and_commands_still_commit(tmp_path: Path) -> None:
    """kill -9 of board 0 (view 0's primary): `voter command send` through board 2 still gets
    its answers (after a view change), and boards 1-3 log the same commits."""
    c = ProcessCluster(tmp_path / "run", tick_hz=TEST_HZ, replication=ReplicationConfig())
    c.setup()
    try:
        c.start()
        c.kill(0)
        for k in range(3):
            r = send(c, 2, f"abort {k}", timeout_s=60.0)
            assert 0 == r.returncode, r.stderr
    finally:
        c.stop()
    logs = {i: [(x["seq"], x["command"]) for x in commits(c, i)] for i in (1, 2, 3)}
    shortest = min(len(v) for v in logs.values())
    assert all(v[:shortest] == logs[1][:shortest] for v in logs.values())
    assert {f"abort {k}" for k in range(3)} <= {x["op"] for _, x in logs[2] if x is not None}
    assert all(x["view"] >= 1 for x in commits(c, 2))
