"""The `mutate` traitor: small-scope mutations happen, stay inside the bound, and replay."""

from __future__ import annotations

import json
import random

import pytest

from hil.checks import check
from hil.sim import SimConfig, SimResult, Simulator
from voter.core.adversary import Strategy
from voter.core.frame import WIRE_VERSION, Frame, encode_frame
from voter.core.mutation import MUTATIONS, Mutator
from voter.core.protocol import Entry
from voter.core.values import ReadingDomain
from voter.faultmodel import Traitor, fault_from_table, parse_fault
from voter.faults import FaultState

TICKS = 100


def _frames(tick: int, round_no: int, sigs: bool = False) -> list[Frame]:
    """Board 3's honest frames of one round in a 4-board cluster (OM(1) shapes)."""
    sig = (bytes(64),) if sigs else ()
    out = []
    for dst in range(3):
        if round_no == 1:
            entries: tuple[Entry, ...] = (Entry((3,), (float(tick), 1.0), sig),)
        else:
            entries = tuple(
                Entry((c, 3), (float(tick), float(c)), sig * 2) for c in range(3) if c != dst
            )
        out.append(Frame(WIRE_VERSION, "c", 3, dst, tick, round_no, entries))
    return out


def _run(mutator: Mutator, seed: int, ticks: int = 40, sigs: bool = False) -> list[Frame]:
    rng = random.Random(seed)
    sent: list[Frame] = []
    for k in range(ticks):
        for r in (1, 2):
            sent += mutator.mutate(_frames(k, r, sigs), rng)
    return sent


def test_every_kind_of_mutation_happens_and_each_frame_still_encodes() -> None:
    """Over a run each kind is made at least once, and every frame is a valid wire frame."""
    om, sm = Mutator(), Mutator()
    sent = _run(om, 1) + _run(sm, 1, sigs=True)
    assert all(om.counts[k] > 0 for k in MUTATIONS if k != "stale-chain"), om.counts
    assert sm.counts["stale-chain"] > 0 and sm.counts["stale"] == 0, sm.counts
    for f in sent:
        encode_frame(f)  # raises on a field out of its limits


def test_a_mutation_is_small() -> None:
    """A stale entry is the previous tick's; a re-addressed relay goes to another peer;
    round and tick move by exactly one; entries are neither made up nor lost."""
    m = Mutator(p_frame=0.5, p_stale=0.3, p_readdress=0.3)
    rng = random.Random(5)
    m.mutate(_frames(0, 1), rng)
    m.mutate(_frames(0, 2), rng)
    honest = _frames(1, 2)
    sent = m.mutate(honest, rng)
    assert {f.dst for f in sent} == {0, 1, 2}
    assert all(abs(f.tick - 1) <= 1 and abs(f.round - 2) <= 1 for f in sent)
    previous = {e for f in _frames(0, 2) for e in f.entries}
    now = {e for f in honest for e in f.entries}
    got = [e for f in sent for e in f.entries]
    assert len(got) == sum(len(f.entries) for f in honest)
    assert set(got) <= now | previous


def test_no_stale_value_without_the_previous_tick() -> None:
    """After a gap of ticks there is nothing of the tick before to send."""
    m = Mutator(p_frame=0.0, p_stale=1.0)
    rng = random.Random(2)
    m.mutate(_frames(3, 1), rng)
    sent = m.mutate(_frames(5, 1), rng)
    assert sent == _frames(5, 1) and m.counts["stale"] == 0


def test_mutations_are_deterministic_under_a_seed() -> None:
    """Same seed, same frames, same counts."""
    a, b = Mutator(), Mutator()
    assert _run(a, 9) == _run(b, 9) and a.counts == b.counts


def test_mutate_is_a_strategy_everywhere() -> None:
    """`--fault`, a campaign table and a control command all name it."""
    assert Strategy.MUTATE.frame_level
    assert Traitor(3, Strategy.MUTATE) == parse_fault("traitor:3:mutate", 4)
    table = {"kind": "traitor", "node": 3, "strategy": "mutate"}
    assert Traitor(3, Strategy.MUTATE) == fault_from_table(table, 4)
    st = FaultState(ReadingDomain(3), random.Random(1), 0.02, node=3)
    st.apply(json.dumps({"cmd": "traitor", "strategy": "mutate"}).encode())
    assert Strategy.MUTATE == st.traitor(0) and st.adversary(0) is None


def _sim(alg: str, seed: int, traitor: int) -> tuple[SimResult, Mutator | None]:
    cfg = SimConfig(
        algorithm=alg,  # type: ignore[arg-type]
        ticks=TICKS,
        seed=seed,
        faults=[parse_fault(f"traitor:{traitor}:mutate", 4)],
    )
    sim = Simulator(cfg)
    result = sim.run()
    return result, sim.boards[traitor].driver.mutator


@pytest.mark.parametrize("alg", ["om", "sm"])
def test_inside_the_bound_loyal_boards_agree_over_many_seeds(alg: str) -> None:
    """OM(1)/SM(1), N=4, one mutating traitor (each board in turn): agreement and validity
    hold on every seed, loyal boards publish, and the mutations really happened."""
    totals = dict.fromkeys(MUTATIONS, 0)
    for seed in range(8):
        traitor = seed % 4
        result, mutator = _sim(alg, seed, traitor)
        verdict = check(result.logs, [traitor], window=(0, TICKS - 1))
        assert (True, True, True) == (verdict.agreement, verdict.validity, verdict.integrity), (
            seed,
            verdict.violations[:3],
        )
        assert verdict.published >= 3 * (TICKS - 10), seed
        assert mutator is not None
        for k, n in mutator.counts.items():
            totals[k] += n
    stale = "stale-chain" if alg == "sm" else "stale"
    assert all(totals[k] > 0 for k in (stale, "readdress", "round", "tick")), totals


def test_a_mutating_run_replays_from_its_seed() -> None:
    """Same seed twice: the same history hash; another seed: another."""
    first, _ = _sim("om", 4, 2)
    again, _ = _sim("om", 4, 2)
    other, _ = _sim("om", 5, 2)
    assert first.history_hash == again.history_hash != other.history_hash
