"""PBFT (voter.core.pbft) in the command-log simulator: counts, view changes, checkpoints, input."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from hil.smr_checks import check_log
from hil.smr_sim import SmrConfig, SmrRun, simulate
from tests.strategies import command_log_inside_bound
from voter.core.adversary import Strategy
from voter.core.crypto import deterministic_seeds, keyring_from_seeds
from voter.core.pbft import (
    Checkpoint,
    PbftConfig,
    PbftReplica,
    Prepare,
    Prepared,
    PrePrepare,
    Segment,
    ViewChange,
    reproposals,
)
from voter.core.smr import Request, Service, digest, sign
from voter.faultmodel import Fault, LinkDrop, LinkSelector, Traitor, Window


def run(nodes: int, commands: int, *faults: Fault, **kw: object) -> tuple[SmrRun, bool]:
    cfg = SmrConfig("pbft", nodes, commands, faults=faults, **kw)  # type: ignore[arg-type]
    r = simulate(cfg)
    traitors = [f.node for f in faults if isinstance(f, Traitor)]
    return r, check_log(r.logs, nodes, traitors).holds


@pytest.mark.parametrize("nodes", [4, 7])
def test_normal_case_is_exactly_2n_squared_messages_per_decision(nodes: int) -> None:
    """Request N, pre-prepare N-1, prepare (N-1)^2, commit N(N-1), reply N: 32 (N=4), 98 (N=7)."""
    commands = 10  # below the checkpoint interval: the normal case alone
    r, holds = run(nodes, commands, window=1)
    assert holds
    n = nodes
    per = {k: v / commands for k, v in r.messages.items()}
    assert per == {
        "Request": n,
        "PrePrepare": n - 1,
        "Prepare": (n - 1) ** 2,
        "Commit": n * (n - 1),
        "Reply": n,
    }
    assert sum(per.values()) == 2 * n * n
    f = (n - 1) // 3
    # one signature per message, however many receive it: request, pre-prepare, N-1 prepares,
    # N commits, N replies
    assert r.signs / commands == 3 * n + 1
    # each receiver checks each: N requests, N-1 pre-prepares, (N-1)^2, N(N-1), f+1 replies
    assert r.verifies / commands == n + (n - 1) + (n - 1) ** 2 + n * (n - 1) + f + 1


@pytest.mark.parametrize(
    "strategy", [Strategy.EQUIVOCATE, Strategy.SILENT, Strategy.LATE, Strategy.WITHHOLD]
)
def test_a_faulty_primary_is_replaced_and_every_log_is_the_same(strategy: Strategy) -> None:
    """Silent, slow, equivocating or withholding primary: a view change, then all committed."""
    r, holds = run(4, 80, Traitor(0, strategy))
    assert holds
    assert len(r.accepted) == 80
    if strategy != Strategy.WITHHOLD:  # withholding to one backup: 2f+1 others still commit
        assert min(r.view_changes[i] for i in (1, 2, 3)) >= 1
    logs = [[e["command"] for e in r.logs[i].events if e["event"] == "commit"] for i in (1, 2, 3)]
    assert logs[0] == logs[1] == logs[2]
    assert len([c for c in logs[0] if c is not None]) == 80


def test_a_primary_silent_from_a_tick_is_replaced_then() -> None:
    r, holds = run(4, 200, Traitor(0, Strategy.SILENT, window=Window(from_tick=30)))
    assert holds
    views = [e for e in r.logs[1].events if e["event"] == "view"]
    assert views and views[0]["tick"] > 30


def test_a_replica_lying_in_prepare_and_commit_is_outvoted() -> None:
    r, holds = run(4, 60, Traitor(2, Strategy.LIE))
    assert holds and len(r.accepted) == 60


def test_two_faulty_of_four_break_agreement_and_the_checker_finds_where() -> None:
    """Beyond the bound (f=2 > 1): colluding equivocators make loyal 2 and 3 commit different."""
    faults = (Traitor(0, Strategy.EQUIVOCATE), Traitor(1, Strategy.EQUIVOCATE))
    r = simulate(SmrConfig("pbft", 4, 40, faults=faults, ticks_max=1500))
    c = check_log(r.logs, 4, [0, 1])
    assert not c.agreement
    bad = next(v for v in c.violations if v.prop == "agreement")
    assert bad.nodes == [2, 3]


def test_f_plus_1_matching_replies_are_what_keeps_a_liar_out_of_the_client() -> None:
    """With the mechanism off (the first reply accepted) the checker finds a mismatched reply."""
    liar = Traitor(0, Strategy.LIE)
    _, holds = run(4, 30, liar)
    assert holds
    _, holds_off = run(4, 30, liar, reply_quorum=1)
    assert not holds_off


def test_checkpoints_bound_the_log() -> None:
    """Every K=8, stable at 2f+1: slots, certificates and checkpoints below it are gone."""
    cfg = SmrConfig("pbft", 4, 200, checkpoint_every=8)
    from hil.smr_sim import Simulation

    sim = Simulation(cfg)
    sim.run()
    for rep in sim.replicas:
        assert isinstance(rep, PbftReplica)
        assert rep.last_exec == 200
        assert rep.stable == 200  # 200 is a multiple of 8
        assert all(s > rep.stable for s in rep.slots) and len(rep.slots) <= 16
        assert len(rep.certs) <= 16 and min(rep.checkpoints, default=200) >= 200


def test_a_committed_request_survives_a_view_change() -> None:
    """The new view re-proposes, per sequence number, the certificate of the highest view."""
    seeds = deterministic_seeds(5, b"t")
    keys = keyring_from_seeds(seeds, range(5))
    cfg = PbftConfig(4, (4,))
    req = Request(4, 0, "arm")
    req = replace(req, sig=sign(keys, 4, req, "voter"))
    pp = PrePrepare(0, 1, digest(req), req)
    pp = replace(pp, sig=sign(keys, 0, pp, "voter"))
    preps = tuple(
        replace(p, sig=sign(keys, p.node, p, "voter"))
        for p in (Prepare(0, 1, pp.digest, 1), Prepare(0, 1, pp.digest, 2))
    )
    with_cert = ViewChange(1, 0, (), (Prepared(pp, preps),), 1)
    without = [ViewChange(1, 0, (), (), n) for n in (2, 3)]
    out = reproposals(1, (with_cert, *without))
    assert [(p.seq, p.request) for p in out] == [(1, req)]
    rep = PbftReplica(3, cfg, keyring_from_seeds(seeds, [3]))
    signed = replace(with_cert, sig=sign(keys, 1, with_cert, "voter"))
    assert rep._valid_view_change(signed)
    short = replace(signed, prepared=(Prepared(pp, preps[:1]),))
    assert not rep._valid_view_change(replace(short, sig=sign(keys, 1, short, "voter")))


def test_bad_input_is_a_counted_refusal_never_an_exception() -> None:
    seeds = deterministic_seeds(5, b"t")
    keys = keyring_from_seeds(seeds, range(5))
    rep = PbftReplica(1, PbftConfig(4, (4,)), keyring_from_seeds(seeds, [1]))
    req = Request(4, 0, "x")
    forged_pp = PrePrepare(0, 1, digest(req), req, b"\x00" * 64)  # unsigned request, bad sig
    wrong_sender = replace(
        Prepare(0, 1, b"d" * 32, 2), sig=sign(keys, 2, Prepare(0, 1, b"d" * 32, 2), "voter")
    )
    cp = Checkpoint(5, b"s", 2)  # not a multiple of K
    for src, msg in [(0, "junk"), (0, forged_pp), (3, wrong_sender), (2, cp), (0, None), (4, req)]:
        assert rep.receive(src, msg, 0) == []
    assert rep.refused == 6


def test_a_replica_cut_off_catches_up_after_the_partition() -> None:
    """Board 0 (the primary) isolated for 100 ticks: a view change, then it fetches what it
    missed and executes every command too (liveness after stabilisation)."""
    cut = tuple(
        LinkDrop(LinkSelector((0, j)), 1.0, Window(from_tick=20, to_tick=120)) for j in (1, 2, 3)
    )
    r, holds = run(4, 400, *cut)
    assert holds
    logs = [[e["command"] for e in r.logs[i].events if e["event"] == "commit"] for i in range(4)]
    assert logs[0] == logs[1] == logs[2] == logs[3]
    assert r.messages.get("Segment", 0) > 0  # board 0 did catch up by fetching


def test_a_fetched_segment_is_executed_only_if_it_replays_to_the_certified_state() -> None:
    seeds = deterministic_seeds(5, b"t")
    keys = keyring_from_seeds(seeds, range(5))
    cfg = PbftConfig(4, (4,), checkpoint_every=2)
    reqs = [Request(4, k, f"op{k}") for k in range(2)]
    honest = Service()
    for k, req in enumerate(reqs):
        honest.apply(k + 1, req)
    proof = tuple(
        replace(c, sig=sign(keys, c.node, c, "voter"))
        for c in (Checkpoint(2, honest.state, n) for n in (1, 2, 3))
    )
    rep = PbftReplica(0, cfg, keyring_from_seeds(seeds, [0]))
    for c in proof:
        out = rep.receive(c.node, c, 5)
    assert rep.fetching is not None and [s.dst for s in out] == [1, 2, 3]  # it asks the signers
    forged = Segment(1, ((0, reqs[1]), (0, reqs[0])), 1)  # the same commands, swapped
    assert rep.receive(1, forged, 6) == [] and rep.last_exec == 0
    assert rep.receive(2, Segment(1, ((0, reqs[0]), (0, reqs[1])), 2), 7) == []
    assert rep.last_exec == 2 and rep.stable == 2 and rep.service.state == honest.state
    assert [e.request for e in rep.executed] == reqs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_log_inside_bound())
def test_inside_the_bound_every_log_is_the_same_and_complete(case: dict[str, Any]) -> None:
    """Any one faulty PBFT replica (with lossy links), or a crash or bad link under crash-only:
    the checker finds every property held (a shrunk failure prints the faults and the seed)."""
    cfg = SmrConfig(
        case["protocol"],
        case["nodes"],
        80,
        case["seed"],
        case["faults"],
        ticks_max=6000,
        tick_ms=20.0,
    )
    r = simulate(cfg)
    traitors = [f.node for f in case["faults"] if isinstance(f, Traitor)]
    result = check_log(r.logs, case["nodes"], traitors)
    assert result.holds, result.violations[:3]


def test_n7_tolerates_two_faulty_primaries_in_a_row() -> None:
    """f=2: the primaries of views 0 and 1 both equivocate; view 2's primary is loyal."""
    faults = (Traitor(0, Strategy.EQUIVOCATE), Traitor(1, Strategy.EQUIVOCATE))
    r, holds = run(7, 60, *faults)
    assert holds and len(r.accepted) == 60
    assert min(r.view_changes[i] for i in range(2, 7)) >= 2


@pytest.mark.parametrize("bound", [True, False])
def test_a_flooding_client_is_refused_past_its_share_and_others_are_served(
    monkeypatch: pytest.MonkeyPatch, bound: bool
) -> None:
    """A faulty client signs 200 more fresh request numbers than PENDING_PER_CLIENT: a replica
    keeps that many and counts the rest refused, and another client's request still gets
    in. Without the bound (switched off) every one stays in memory until it is ordered."""
    from voter.core import smr

    if not bound:
        monkeypatch.setattr(smr, "PENDING_PER_CLIENT", 10**9)
    seeds = deterministic_seeds(6, b"t")
    keys = keyring_from_seeds(seeds, range(6))
    rep = PbftReplica(1, PbftConfig(4, (4, 5)), keyring_from_seeds(seeds, [1]))
    flood = smr.PENDING_PER_CLIENT + 200 if bound else 1224
    for n in range(flood):
        req = Request(4, n, "x")
        assert [] == rep.receive(4, replace(req, sig=sign(keys, 4, req, "voter")), 0)
    other = Request(5, 0, "y")
    rep.receive(5, replace(other, sig=sign(keys, 5, other, "voter")), 0)
    kept = sum(1 for client, _ in rep.pending if client == 4)
    assert other.key in rep.pending
    if bound:
        assert (smr.PENDING_PER_CLIENT, 200) == (kept, rep.refused)
    else:
        assert (flood, 0) == (kept, rep.refused)
