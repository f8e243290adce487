"""One scenario, three ways to run it: the simulator, real processes on ptys, a serial rig.

A traitor, a noisy link and memory flips on a loyal board. Whatever runs it, the
verdict is the same and the counters have the same names and the same meanings
(hil.outcome.Counters): a link fault is the same channel in every mode
(hil.channel), a memory flip the same fault agent on the board (voter.faults),
and the judge is the same checker. Values differ where the modes really differ
(which bits the noise hits); the relations between them may not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hil.campaign import run_scenario
from hil.outcome import COUNTER_NAMES
from hil.rig import load_rig
from hil.scenario import Scenario
from tests.nullmodem_rig import HZ, N, nullmodem_rig
from voter.faultmodel import fault_from_table

TICKS = 250
FAULTS = (
    {"kind": "traitor", "node": 3, "strategy": "equivocate"},
    {"kind": "link-bitflip", "link": "3-0", "ber": 1e-3},
    {"kind": "memory-bitflip", "node": 1, "rate_hz": 2.0, "bits": 1},
)
SCENARIO = Scenario(
    name="traitor-noisy-link-memory-flips",
    nodes=N,
    faults=tuple(fault_from_table(t, N) for t in FAULTS),
    ticks=TICKS,
    seed=11,
    tick_hz=HZ,
)


def _run(mode: str, tmp_path: Path) -> dict[str, Any]:
    if mode != "serial":
        r = run_scenario(SCENARIO, mode, tmp_path / mode)
        return {"passed": r.passed, "outcome": r.outcome, **r.counters}
    with nullmodem_rig(tmp_path) as rig_file:
        r = run_scenario(SCENARIO, mode, tmp_path / mode, rig=load_rig(rig_file))
    assert r.skipped is None, r.skipped
    return {"passed": r.passed, "outcome": r.outcome, **r.counters}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {m: _run(m, tmp_path_factory.mktemp(m)) for m in ("sim", "pty", "serial")}


def test_same_verdict_in_every_mode(runs: dict[str, dict[str, Any]]) -> None:
    assert {m: (r["passed"], r["outcome"]) for m, r in runs.items()} == {
        m: (True, "safe") for m in runs
    }


def test_same_counter_names_in_every_mode(runs: dict[str, dict[str, Any]]) -> None:
    for r in runs.values():
        assert set(r) - {"passed", "outcome"} == set(COUNTER_NAMES)


@pytest.mark.parametrize("mode", ["sim", "pty", "serial"])
def test_counters_mean_the_same_in_every_mode(runs: dict[str, dict[str, Any]], mode: str) -> None:
    c = runs[mode]
    assert c["published"] + c["withheld"] == c["decided"]
    assert c["decided"] >= 3 * TICKS  # every loyal board decided every tick
    assert c["link_corrupted"] > 0 and c["flipped_bits"] >= c["link_corrupted"]
    # Every frame the channel corrupted is one the receiving board refused: the channel's
    # count and the boards' count name the same frames (the rig's boards run a tick or two
    # past the end, so a few frames fall outside the decisions counted).
    assert abs(c["frames_dropped"] - c["link_corrupted"]) <= 0.05 * c["link_corrupted"] + 5
    sim = runs["sim"]["frames_sent"]
    assert abs(c["frames_sent"] - sim) <= 0.01 * sim  # 24 frames a tick at OM(1), N=4
    assert c["corrected"] > 0  # board 1's SECDED corrected its flips
    assert c["stops"] == c["memory_stops"] == c["crashes"] == c["restarts"] == 0
