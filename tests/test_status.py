"""`voter cluster status`: a board's health read from the end of its decision log."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hil.cluster import ProcessCluster
from tests.conftest import run_cli
from voter.core.record import DecisionRecord
from voter.status import TAIL_BYTES, read_status


def _line(tick: int, node: int, vector: list, **kw: object) -> str:
    rec = DecisionRecord(tick, node, "om", [1.0], vector, [1.0], sync=True, **kw)  # type: ignore[arg-type]
    return json.dumps(rec.to_json())


def test_a_live_cluster_is_ok_and_agrees(tmp_path: Path) -> None:
    """Four real voterd deciding: every board ok, the published vectors agree, exit 0."""
    c = ProcessCluster(tmp_path / "run", tick_hz=25.0)
    c.setup()
    try:
        c.start(until_tick=None)
        time.sleep(3.0)
        proc = run_cli("voter", "cluster", "status", str(c.config_path))
    finally:
        c.stop()
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert all(f"node {i}: ok" in lines[i] for i in range(4)), proc.stdout
    assert "agree" in lines[-1] and "DIFFER" not in lines[-1]
    after = run_cli("voter", "cluster", "status", str(c.config_path))
    assert 1 == after.returncode and after.stdout.count(": stopped") == 4  # stopped boards


def test_a_board_that_differs_or_withholds_is_named(tmp_path: Path) -> None:
    """Collected logs: board 2 published another vector, board 1 withholds; exit 1."""
    c = ProcessCluster(tmp_path / "run")
    c.setup()
    c.stop()
    logs = tmp_path / "collected"
    logs.mkdir()
    for node in range(4):
        vec = [[1.0], [2.0], [3.0], [4.0]] if node != 2 else [[1.0], [2.0], [3.0], [9.0]]
        lines = [_line(t, node, vec) for t in range(10)]
        if node == 1:
            lines += [_line(10, node, vec, withheld="clock")]
        (logs / f"node{node}.jsonl").write_text("\n".join(lines) + "\n")
    (logs / "node3.jsonl").unlink()
    proc = run_cli("voter", "cluster", "status", str(c.config_path), "--logs", str(logs))
    assert 1 == proc.returncode
    out = proc.stdout.splitlines()
    assert "node 1: withholding" in out[1] and "withheld: clock 1" in out[1]
    assert out[3].startswith("node 3: missing")
    assert "DIFFER at 10 (first tick 0)" in out[-1]


def test_only_the_tail_is_read(tmp_path: Path) -> None:
    """A log bigger than TAIL_BYTES: the status comes from its end, the cut line is skipped."""
    path = tmp_path / "node0.jsonl"
    line = _line(0, 0, [[1.0]])
    count = TAIL_BYTES // len(line) * 3
    path.write_text("".join(_line(t, 0, [[1.0]]) + "\n" for t in range(count)))
    st = read_status(path, 0)
    assert st.last is not None and st.last.tick == count - 1
    assert 0 < st.decided < count / 2


def test_no_logs_is_one_line(tmp_path: Path) -> None:
    c = ProcessCluster(tmp_path / "run")
    c.setup()
    c.stop()
    proc = run_cli("voter", "cluster", "status", str(c.config_path), "--logs", str(tmp_path))
    assert 2 == proc.returncode
    assert [
        f"voter: error: no decision log in {tmp_path} (node<ID>.jsonl); on a ground "
        "machine, give --logs DIR"
    ] == proc.stderr.splitlines()
