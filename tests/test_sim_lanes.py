"""The simulator's fast lane (Frame objects on fault-free links) decides as the byte path."""

from __future__ import annotations

import pytest

from hil.checks import check
from hil.faultspec import faulty_nodes
from hil.sim import SimConfig, SimResult, Simulator, simulate
from voter.core.protocol import Algorithm
from voter.faultmodel import parse_fault

SCENARIOS = {
    "clean-om": ("om", []),
    "clean-sm": ("sm", []),
    "liar-and-noisy-link": ("om", ["traitor:3:equivocate", "link-bitflip:3-0:1e-3"]),
    "forger-drop-delay": ("sm", ["traitor:2:forge", "link-drop:2>1:0.2", "link-delay:0-3:30ms"]),
    "memory-and-crash": ("om", ["memory-bitflip:2:10/s", "memory-bitflip:0:2/s:2", "crash:1@40"]),
    "late-garbage-drift": ("om", ["traitor:3:late", "traitor:1:garbage", "clock-drift:2:400"]),
    "replayer": ("sm", ["traitor:0:replay"]),
    "sm-equivocator": ("sm", ["traitor:1:equivocate"]),
}

TICKS = 120


def _run(alg: str, faults: list[str], fast: bool) -> SimResult:
    cfg = SimConfig(
        algorithm=Algorithm(alg),
        ticks=TICKS,
        seed=11,
        faults=[parse_fault(f, 4) for f in faults],
        fast_lane=fast,
    )
    return simulate(cfg)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fast_lane_changes_nothing(name: str) -> None:
    """Decision logs, events, counters, coverage, timeline and history hash are identical,
    and in both lanes the loyal boards' published vectors agree and are valid."""
    alg, faults = SCENARIOS[name]
    fast, full = _run(alg, faults, True), _run(alg, faults, False)
    # Lane equality alone passes a bug both lanes share: judge each lane on its own too.
    traitors = faulty_nodes([parse_fault(f, 4) for f in faults])
    for lane in (fast, full):
        verdict = check(lane.logs, traitors, window=(0, TICKS - 1))
        assert (True, True, True) == (verdict.agreement, verdict.validity, verdict.integrity), (
            verdict.violations[:3]
        )
        assert verdict.published >= 100  # judged on published lines, not on withheld ones
    for i in full.logs:
        assert full.logs[i].decisions == fast.logs[i].decisions, i
        assert full.logs[i].events == fast.logs[i].events, i
    assert full.counters == fast.counters
    assert full.coverage == fast.coverage
    assert full.timeline == fast.timeline
    assert full.history_hash == fast.history_hash
    # The scenarios must exercise what they claim: decisions, and their faults' outcomes.
    assert all(len(log.decisions) > 50 for log in full.logs.values())
    if any(f.startswith("link-bitflip") for f in faults):
        assert full.coverage.link_corrupted > 0
    if any(f.startswith("memory") for f in faults):
        assert full.coverage.memory_single + full.coverage.memory_double > 0


def test_fast_lane_is_taken_only_on_fault_free_links() -> None:
    """Links with a link fault, and every link of a frame-level traitor, keep the byte path."""
    cfg = SimConfig(
        ticks=1,
        faults=[parse_fault("link-bitflip:0-1:1e-3", 4), parse_fault("traitor:2:garbage", 4)],
    )
    sim = Simulator(cfg)
    slow = {link for link, fast in sim.fast.items() if not fast}
    assert slow == {(0, 1), (1, 0), (2, 0), (2, 1), (2, 3)}
    assert not any(Simulator(SimConfig(ticks=1, fast_lane=False)).fast.values())
