"""The live view: named readings, explained vectors, every violation since tick 0, "done"."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from io import StringIO
from pathlib import Path

from rich.console import Console

from firmware_sim.view import LiveView
from hil.scenario import Scenario
from tests.conftest import run_cli
from voter.faultmodel import parse_fault

#: boards 0-3 read 1..4 (one channel); the agreed vector and its lower-median vote
READINGS = [[1.0], [2.0], [3.0], [4.0]]


def _text(view: LiveView) -> str:
    out = StringIO()
    Console(file=out, width=200, color_system=None).print(view.render())
    return out.getvalue()


def _line(node: int, tick: int, vector: Sequence[object] = READINGS, **extra: object) -> str:
    record = {"tick": tick, "node": node, "local": READINGS[node], "vector": list(vector)}
    return json.dumps({**record, "output": [2.0], **extra})


def _feed(view: LiveView, tick: int, lines: dict[int, str]) -> None:
    for node, line in lines.items():
        view.add_line(node, line)
    view.judge(tick)


def test_a_withheld_disagreement_is_not_counted_a_published_one_is() -> None:
    """A board that withheld a different vector never output it; publishing it is a violation."""
    odd = [[1.0], None, None, [4.0]]
    view = LiveView(Scenario())
    _feed(view, 7, {**{i: _line(i, 7) for i in range(3)}, 3: _line(3, 7, odd, withheld="stall")})
    assert "no violation in ticks 0-7" in _text(view)
    view = LiveView(Scenario())
    _feed(view, 7, {**{i: _line(i, 7) for i in range(3)}, 3: _line(3, 7, odd)})
    assert view.verdict.counts["agreement"] == 1
    assert "violations since the start" in _text(view)


def test_a_past_violation_stays_counted() -> None:
    """One disagreement at tick 5, then 20 clean ticks: the headline still says so."""
    view = LiveView(Scenario(faults=(parse_fault("traitor:3:equivocate", 4),)))
    lied_to: list[object] = [*READINGS[:3], [9.0]]  # board 0 got a different value from traitor 3
    for tick in range(26):
        lines = {i: _line(i, tick) for i in range(4)}
        if tick == 5:
            lines[0] = _line(0, tick, lied_to)
        _feed(view, tick, lines)
    text = _text(view)
    assert "1 violation since the start in ticks 0-25 (agreement 1)" in text
    assert "first at tick 5: agreement" in text


def test_vector_entries_name_the_empty_ones() -> None:
    """Entries "3/4, ERROR: 3": three hold a value, board 3's is empty; a legend explains it."""
    view = LiveView(Scenario())
    view.add_line(0, _line(0, 0, [*READINGS[:3], None]))
    text = _text(view)
    assert "3/4, ERROR: 3" in text
    assert "vector entries: how many of the 4 boards' readings" in text


def test_live_run_names_channels_counts_like_the_checker_and_ends_done(tmp_path: Path) -> None:
    """A real firmware-sim run with a crash and a restart, drawn to a file: the columns carry the
    cluster config's channel names, the headline's count is run.json's, every board is "done"."""
    out = tmp_path / "run"
    proc = run_cli(
        "firmware-sim",
        "run",
        "--tick-hz",
        "25",
        "--ticks",
        "150",
        "--out",
        str(out),
        "--live",
        "--fault",
        "crash:1@60",
        env={**os.environ, "COLUMNS": "200"},
    )
    screen = proc.stdout
    assert (out / "run.json").exists(), proc.stderr
    for name in ("altitude_m", "airspeed_mps", "pitch_deg"):
        assert name in screen
    rows = [row for row in screen.splitlines() if re.match(r"│\s+\d+ │ (loyal|traitor)", row)]
    assert 4 == len(rows), screen
    assert all(" done " in row for row in rows), screen
    assert "restarting" not in screen
    check = json.loads((out / "run.json").read_text())["check"]
    total = sum(check["violation_counts"].values())
    if total == 0:
        assert "no violation in ticks 0-149" in screen, screen
    else:
        assert f"{total} violation" in screen, screen


def test_demo_banner_states_the_rate_it_runs(tmp_path: Path) -> None:
    """The demo's first line names the rate and length firmware-sim runs, not a fixed 50 Hz."""
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_sim.demo", "--tick-hz", "20", "--ticks", "40", "--live"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
    )
    banner = proc.stdout.splitlines()[0]
    assert banner.startswith("voter demo: 4 boards, OM(1) at 20 Hz for 2 s (asked)"), proc.stdout
    assert "OM(1) at 20 Hz, 40 ticks" in proc.stdout  # the live view's headline agrees
    assert (tmp_path / "runs" / "demo" / "run.json").exists(), proc.stderr
