"""The decision log: whole lines, flushed per line, rotated by size without losing lines."""

from __future__ import annotations

import json
from pathlib import Path

from voter.decision_log import DecisionLog


def test_rotation_keeps_whole_lines_and_the_newest_in_place(tmp_path: Path) -> None:
    """Writing past the limit rotates to .1, .2, .3; no line is cut or lost among the kept."""
    path = tmp_path / "node0.jsonl"
    log = DecisionLog(path, rotate_bytes=2000, keep=3)
    for k in range(200):
        log.event("tick", n=k, pad="x" * 20)
    log.close()
    files = [path, *(path.with_name(f"node0.jsonl.{k}") for k in (1, 2, 3))]
    assert all(f.exists() for f in files)
    assert not path.with_name("node0.jsonl.4").exists()
    numbers = []
    for f in reversed(files):
        for line in f.read_text().splitlines():
            numbers.append(json.loads(line)["n"])  # every line parses whole
    assert numbers == list(range(numbers[0], 200))  # contiguous up to the newest
    assert all(f.stat().st_size <= 2000 for f in files)


def test_lines_are_in_the_file_before_close(tmp_path: Path) -> None:
    """Each line is flushed when written: a reader (or a SIGKILL) sees it at once."""
    path = tmp_path / "n.jsonl"
    log = DecisionLog(path)
    log.event("start", node=1)
    assert '{"event":"start","node":1}' == path.read_text().strip()
    log.close()
