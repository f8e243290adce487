"""Timing is part of the protocol: the driver's self-checks and clique avoidance, simulated.

Each safety mechanism is shown by the violation it prevents: the same seeded
scenario run with the mechanism switched off (`fail_silent=False`, or the
`immediate` publication mode) publishes disagreeing vectors, and with it on
publishes none. The simulator runs the daemon's own driver with modelled CPU
time, so these are the daemon's checks, not a copy.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from hil.checks import CheckResult, check
from hil.sim import SimConfig, SimResult, Simulator, simulate
from voter.faultmodel import Stall, parse_fault

TICKS = 300


def _run(faults: list[str] | None = None, **kw: object) -> tuple[SimResult, CheckResult]:
    cfg = SimConfig(ticks=TICKS, faults=[parse_fault(f, 4) for f in faults or []], **kw)  # type: ignore[arg-type]
    r = simulate(cfg)
    faulty = [f.node for f in cfg.faults if f.kind == "traitor" and f.node is not None]
    return r, check(r.logs, faulty, window=(0, TICKS - 1), period_us=1e6 / cfg.tick_hz)


def _withheld(r: SimResult, node: int | None = None) -> Counter[str]:
    return Counter(
        line.withheld
        for i, log in r.logs.items()
        if node is None or i == node
        for line in log.decisions.values()
        if line.withheld is not None
    )


def _published(r: SimResult, node: int) -> int:
    return sum(1 for line in r.logs[node].decisions.values() if line.published)


@pytest.mark.parametrize("algorithm", ["om", "sm"])
def test_no_fault_publishes_every_decision(algorithm: str) -> None:
    """A clean cluster: every decision published, the last one too (the boards run round 1
    of the tick after it, to confirm it, and decide nothing more)."""
    r, res = _run(algorithm=algorithm)
    assert res.agreement and res.validity and res.liveness and res.timeliness
    assert _withheld(r) == Counter()
    assert all(len(log.decisions) == TICKS for log in r.logs.values())
    line = r.logs[0].decisions[100]
    assert line.timing["decided_us"] is not None and line.published_us is not None
    assert line.timing["decided_us"] < 20_000 < line.published_us < 40_000
    precision = line.timing["precision_us"]
    assert precision is not None and precision < 1000


def test_stalled_board_withholds_instead_of_publishing_a_wrong_vector() -> None:
    """Board 2 freezes 5-55 ms three times a second: with the self-checks off it publishes
    disagreeing vectors; with them on it withholds those ticks and re-joins."""
    faults = ["stall:2:25ms/0.333s"]
    off, res_off = _run(faults, fail_silent=False, publish="immediate", seed=3)
    assert off.counters["stalls"] > 5
    assert not res_off.agreement  # the mechanism switched off: the violation is found
    on, res_on = _run(faults, seed=3)
    assert res_on.agreement and res_on.validity
    reasons = _withheld(on, 2)
    assert reasons["late-send"] + reasons["stall"] + reasons["late-decide"] > 0
    assert _published(on, 2) > 0.8 * TICKS  # it re-joins between stalls
    assert all(_published(on, i) >= TICKS - 10 for i in (0, 1, 3))


def test_confirmed_publication_masks_what_the_local_checks_cannot_see() -> None:
    """Two lossy links into board 0 (beyond the bound): a lost relay can leave board 0 with
    one entry different and nothing it could notice by itself. Immediate publication lets
    that out (and logs the minority a tick later); confirmed publication never does."""
    faults = ["link-drop:1>0:0.3", "link-drop:2>0:0.3"]
    imm, res_imm = _run(faults, publish="immediate")
    assert not res_imm.agreement
    assert any(e.get("event") == "minority" for e in imm.logs[0].events)
    conf, res_conf = _run(faults, publish="confirmed")
    assert res_conf.agreement and res_conf.validity
    assert _withheld(conf, 0)["minority"] > 0


@pytest.mark.parametrize("ms", [5, -5, -15, 12, 17, 21, 27, 35, -21, -27, -35, 45, -500, 300])
def test_clock_step_is_withheld_then_corrected(ms: int) -> None:
    """Board 1's clock jumps: it withholds while out of step, then steps back once the jump is
    confirmed by its size (or, from most of a period on, re-joins from its peers' round-1
    frames). Between one and two periods (21, 27, 35, -21, -27 ms at 50 Hz) neither path
    used to see the jump, and the board withheld every tick after it."""
    r, res = _run([f"clock-step:1:{ms}ms@100"])
    assert res.agreement and res.validity
    assert r.counters["clock_steps"] == 1
    fixes = [e for e in r.logs[1].events if e.get("event") in ("clock-step", "rejoin")]
    assert len(fixes) == 1 and abs(abs(fixes[0]["step_us"]) - abs(ms) * 1000) < 1000
    assert _published(r, 1) > TICKS - 30 - max(0, -ms) // 20


def test_link_jitter_on_one_link_stays_safe() -> None:
    r, res = _run(["link-jitter:0-1:6ms"])
    assert r.counters["link_jittered"] > 100
    assert res.agreement and res.validity


def test_timing_faults_are_deterministic() -> None:
    """Stalls, clock steps and jitter come from the seed: a rerun has the same history."""
    faults = [
        Stall(2, 30.0, rate_hz=2.0),
        parse_fault("clock-step:1:-4ms@50", 4),
        parse_fault("link-jitter:0-3:3ms", 4),
    ]
    cfg = SimConfig(ticks=150, seed=5, faults=faults)
    assert simulate(cfg).history_hash == simulate(cfg).history_hash


def test_stall_command_is_validated() -> None:
    """Bad stall / clock-step commands are refused with one line, never applied."""
    sim = Simulator(SimConfig(ticks=1))
    for cmd in (
        {"cmd": "stall", "ms": -1, "at_tick": 3},
        {"cmd": "stall", "ms": 10},
        {"cmd": "stall", "ms": 10, "at_tick": 3, "rate_hz": 1},
        {"cmd": "clock-step", "ms": 0, "at_tick": 3},
        {"cmd": "clock-step", "ms": 5, "at_tick": -1},
    ):
        with pytest.raises(ValueError) as err:
            sim.faults[0].apply(json.dumps(cmd).encode())
        assert "\n" not in str(err.value)
