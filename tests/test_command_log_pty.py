"""The replicated command log on real voterd processes: four boards on ptys, `voter command`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from hil.cluster import ProcessCluster
from tests.conftest import BIN
from voter.config import ReplicationConfig

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
