"""The streaming checker judges as check(), and the streaming simulator as the kept one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.campaign import load_campaign
from hil.checks import CheckResult, NodeLog, check, read_run
from hil.faultspec import faulty_nodes
from hil.outcome import judge
from hil.scenario import Scenario
from hil.sim import SimResult, Simulator, sim_config
from hil.streamcheck import StreamCheck, StreamOrderError
from voter.faultmodel import parse_fault

CAMPAIGNS = Path(__file__).resolve().parent.parent / "campaigns"
#: long enough for the shipped faults to act (crashes, stalls, clock steps), short for a test
TICKS_MAX = 250


def _shipped() -> list[Scenario]:
    out = []
    for path in sorted(CAMPAIGNS.glob("*.toml")):
        for sc in load_campaign(path).scenarios:
            if sc.replication is not None:  # a command log: no ticks to stream (hil.smr_checks)
                continue
            out.append(dataclasses.replace(sc, ticks=min(sc.ticks, TICKS_MAX)))
    return out


def _same(batch: CheckResult, stream: CheckResult) -> None:
    assert batch.violations == stream.violations  # the first N, in the batch order
    assert batch.to_json() == stream.to_json()
    assert batch == stream


SHIPPED = _shipped()


@pytest.mark.parametrize("sc", SHIPPED, ids=[f"{s.name}" for s in SHIPPED])
def test_stream_judges_as_batch_on_shipped_scenarios(sc: Scenario) -> None:
    """Fed as the simulator makes the lines, the streaming checker returns check()'s result."""
    r = Simulator(sim_config(sc), stream_check=True).run()
    assert r.check is not None
    _same(judge(sc, r.logs), r.check)


def _scenario(faults: list[str], ticks: int = 160, seed: int = 5) -> Scenario:
    return Scenario(
        name="t", faults=tuple(parse_fault(f, 4) for f in faults), ticks=ticks, seed=seed
    )


def test_streaming_simulator_keeps_nothing_and_hashes_alike(tmp_path: Path) -> None:
    """keep_logs=False: same history hash and counters, no lines in memory, files on disk."""
    sc = _scenario(["traitor:3:equivocate", "crash:1@40", "stall:2:60ms@90"])
    kept = Simulator(sim_config(sc)).run()
    Simulator(sim_config(sc), keep_logs=False, log_dir=tmp_path).run()  # a run to overwrite
    streamed = Simulator(sim_config(sc), keep_logs=False, log_dir=tmp_path).run()
    assert kept.history_hash == streamed.history_hash
    assert kept.counters == streamed.counters
    assert all(not log.decisions and not log.events for log in streamed.logs.values())
    assert streamed.timeline == {}
    assert streamed.check is not None
    _same(judge(sc, kept.logs), streamed.check)
    on_disk = read_run(tmp_path, sc.nodes)
    for i, log in kept.logs.items():
        assert log.decisions == on_disk[i].decisions
        assert log.events == on_disk[i].events


def _kept(sc: Scenario) -> SimResult:
    return Simulator(sim_config(sc)).run()


def test_window_and_faulty_match_batch() -> None:
    """A window inside the run and a traitor left out: same verdict as check()."""
    sc = _scenario(["traitor:0:equivocate", "crash:2@30", "stall:3:50ms@60"], ticks=120)
    window, faulty, period_us = (17, 83), faulty_nodes(sc.faults), 1e6 / sc.tick_hz
    sim = Simulator(sim_config(sc), stream_check=True)
    # the same checker with a window: re-fed the join lines the simulator wrote at start
    sim.stream = StreamCheck(range(sc.nodes), faulty, window, period_us)
    for i in range(sc.nodes):
        sim.stream.event(i, sim.logs[i].events[0])
    r = sim.run()
    assert r.check is not None
    _same(check(r.logs, faulty, window, period_us), r.check)


def test_a_line_behind_the_judged_ticks_is_refused() -> None:
    """A writer that goes back in time is a broken invariant, not a quiet verdict change."""
    sc = _scenario([], ticks=30)
    r = _kept(sc)
    s = StreamCheck(range(sc.nodes), [])
    for i in range(sc.nodes):
        s.event(i, {"event": "joined", "tick": 0})
    for t in range(5):
        for i in range(sc.nodes):
            s.record(i, r.logs[i].decisions[t])
    with pytest.raises(StreamOrderError):
        s.record(0, r.logs[0].decisions[2])


_CLEAN = Simulator(sim_config(_scenario([], ticks=40))).run()


@settings(max_examples=60, deadline=None)
@given(
    dropped=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 39)), max_size=40),
    skip=st.tuples(st.integers(0, 3), st.integers(0, 39), st.integers(1, 8)),
    rejoin=st.tuples(st.integers(0, 3), st.integers(1, 39)),
    window=st.one_of(st.none(), st.tuples(st.integers(0, 20), st.integers(15, 45))),
    faulty=st.sets(st.integers(0, 3), max_size=1),
)
def test_missing_ticks_skips_and_rejoins_match_batch(
    dropped: list[tuple[int, int]],
    skip: tuple[int, int, int],
    rejoin: tuple[int, int],
    window: tuple[int, int] | None,
    faulty: set[int],
) -> None:
    """Lines missing while up (liveness), a skip event, a second join: same as check()."""
    gone = set(dropped)
    logs = {i: NodeLog(i) for i in range(4)}
    s = StreamCheck(range(4), faulty, window, 1e6 / 50)
    for i in range(4):
        for log_or_stream in (logs[i].events.append, lambda ev, i=i: s.event(i, ev)):
            log_or_stream({"event": "joined", "node": i, "tick": 0})
    for t in range(40):  # tick by tick: an order every board's writer keeps
        for i in range(4):
            events = []
            if (i, t) == skip[:2]:
                events.append({"event": "skip", "node": i, "tick": t, "to": t + skip[2]})
            if (i, t) == rejoin:
                events.append({"event": "crash", "node": i, "tick": t})
                events.append({"event": "joined", "node": i, "tick": t + 1})
            for ev in events:
                logs[i].events.append(ev)
                s.event(i, ev)
            if (i, t) in gone or ((i, t) == rejoin):
                continue
            line = _CLEAN.logs[i].decisions[t]
            logs[i].decisions[t] = line
            s.record(i, line)
    _same(check(logs, faulty, window, 1e6 / 50), s.result())
