"""Timing on real processes: voterd on ptys, a board frozen mid-tick, the checker over published.

The same mechanism as tests/test_timing.py shows in the simulator, here with real
`voterd` processes (the HIL `stall` command makes a board sleep before or after it
writes round 1, like SIGSTOP or a GC pause): with fail-silence switched off the
stalled board publishes vectors the others do not hold; with it on it withholds
them and nothing wrong is published.
"""

from __future__ import annotations

import json
from pathlib import Path

from hil.pty_run import run
from hil.scenario import Scenario
from voter.faultmodel import parse_fault

TICKS = 150
HZ = 25.0


def _run(out: Path, fail_silent: bool) -> tuple[object, list[dict[str, object]]]:
    spec = Scenario(
        tick_hz=HZ,
        ticks=TICKS,
        seed=4,
        faults=(parse_fault("stall:2:70ms/0.8s", 4),),
        fail_silent=fail_silent,
    )
    res = run(spec, out)
    lines = [json.loads(x) for x in (out / "node2.jsonl").read_text().splitlines()]
    return res, lines


def test_stalled_board_publishes_wrong_vectors_only_without_fail_silence(tmp_path: Path) -> None:
    off, off_lines = _run(tmp_path / "off", fail_silent=False)
    stalls = [x for x in off_lines if x.get("event") == "stall"]
    assert len(stalls) >= 3, "the stall command must have fired"
    assert not off.check.agreement  # type: ignore[attr-defined]

    on, on_lines = _run(tmp_path / "on", fail_silent=True)
    assert [x for x in on_lines if x.get("event") == "stall"]
    c = on.check  # type: ignore[attr-defined]
    assert c.agreement and c.validity and c.integrity
    withheld = {x["withheld"] for x in on_lines if "withheld" in x}
    assert withheld & {"stall", "late-send", "late-decide", "minority", "unconfirmed"}
    assert c.availability()[2] > 0.5  # it re-joined between stalls
    events = {x.get("event") for x in on_lines}
    assert "admission" in events  # voterd measured its timing budget at start
    published = [x for x in on_lines if "vector" in x and "withheld" not in x]
    assert published and all("published_us" in x and "precision_us" in x for x in published)
