"""The board's command-log port: four of them wired by in-memory links (real Ed25519, codec)."""

from __future__ import annotations

from typing import Any

import pytest

from voter.budget import view_timeout_ticks
from voter.core.crypto import deterministic_seeds, keyring_from_seeds
from voter.core.pbft import PbftConfig, PbftReplica
from voter.core.smr_port import SLOT_BYTES_MIN, SmrPort
from voter.core.smr_wire import Fragment, LinkSplitter, SmrFrame

CLUSTER = "port-test"
N = 4


def ports(bytes_per_tick: int, timeout_ticks: int = 10) -> list[SmrPort]:
    seeds = deterministic_seeds(N)
    cfg = PbftConfig(
        N, tuple(range(N)), timeout_ticks=timeout_ticks, checkpoint_every=4, cluster=CLUSTER
    )
    return [
        SmrPort(
            i,
            PbftReplica(i, cfg, keyring_from_seeds(seeds, [i])),
            CLUSTER,
            tuple(j for j in range(N) if j != i),
            bytes_per_tick,
        )
        for i in range(N)
    ]


def run(
    ps: list[SmrPort],
    ticks: range,
    dead: set[int] = frozenset(),  # type: ignore[assignment]
) -> tuple[dict[int, list[dict[str, Any]]], dict[tuple[int, int], int]]:
    """Step every live port once a tick; the wire bytes go through a splitter per link."""
    splitters = {(i, j): LinkSplitter(CLUSTER) for i in range(N) for j in range(N) if i != j}
    commits: dict[int, list[dict[str, Any]]] = {i: [] for i in range(N)}
    wire: dict[tuple[int, int], int] = {}
    for t in ticks:
        for p in ps:
            if p.me in dead:
                continue
            sends, lines = p.step(t)
            commits[p.me] += lines
            for dst, data in sends:
                wire[(p.me, dst)] = max(wire.get((p.me, dst), 0), 0) + len(data)
                for item in splitters[(p.me, dst)].feed(data):
                    assert isinstance(item, SmrFrame | Fragment)
                    if dst not in dead:
                        ps[dst].on_item(p.me, item)
    return commits, wire


def same_log(commits: dict[int, list[dict[str, Any]]], boards: list[int]) -> list[Any]:
    logs = [[(c["seq"], c["command"]) for c in commits[i]] for i in boards]
    assert all(log == logs[0] for log in logs)
    return logs[0]


def test_commands_commit_in_the_same_order_and_are_answered() -> None:
    """Commands from two boards: the same (seq, command) on every board, each answered once."""
    ps = ports(600)
    for k in range(3):
        ps[1].submit(f"arm {k}", 0)
        ps[2].submit(f"mode {k}", 0)
    commits, _ = run(ps, range(1, 40))
    log = same_log(commits, [0, 1, 2, 3])
    ops = sorted(c["op"] for _, c in log if c is not None)
    assert sorted([f"arm {k}" for k in range(3)] + [f"mode {k}" for k in range(3)]) == ops
    got = ps[1].answered() + ps[2].answered()
    assert 6 == len(got) and all(a.result is not None for a in got)


def test_a_small_slot_fragments_and_stays_within_its_budget() -> None:
    """A slot smaller than a signed pre-prepare: messages go in fragments, never over budget."""
    budget = SLOT_BYTES_MIN + 40
    ps = ports(budget)
    ps[3].submit("abort", 0)
    splitter_bytes: list[int] = []
    for t in range(1, 200):
        for p in ps:
            sends, _ = p.step(t)
            per_peer: dict[int, int] = {}
            for dst, data in sends:
                per_peer[dst] = per_peer.get(dst, 0) + len(data)
                for item in LinkSplitter(CLUSTER).feed(data):
                    ps[dst].on_item(p.me, item)  # type: ignore[arg-type]
            splitter_bytes += per_peer.values()
        if ps[3].answered():
            break
    else:
        pytest.fail("the command was never answered")
    assert max(splitter_bytes) <= budget
    assert all(p.replica.last_exec >= 1 for p in ps)


def test_a_silent_primary_is_replaced() -> None:
    """Board 0 (view 0's primary) never runs: a view change, then every command commits."""
    ps = ports(800)
    for k in range(4):
        ps[2].submit(f"cmd {k}", 0)
    commits, _ = run(ps, range(1, 120), dead={0})
    log = same_log(commits, [1, 2, 3])
    assert {f"cmd {k}" for k in range(4)} == {c["op"] for _, c in log if c is not None}
    assert all(c["view"] >= 1 for c in commits[1])
    assert 4 == len(ps[2].answered())


def test_frames_on_the_wrong_link_are_counted_drops() -> None:
    """A frame naming another sender is not taken (the oral-messages assumption)."""
    ps = ports(600)
    ps[0].on_item(2, SmrFrame(1, 0, ()))
    assert {"link": 1} == ps[0].drops


@pytest.mark.parametrize("scaled", [False, True])
def test_the_view_timer_must_outlast_a_fragmented_view_change(scaled: bool) -> None:
    """On a 184-byte slot (50 Hz, 921,600 baud) a 10-tick timer gives up on every view before
    its messages arrive and nothing commits; the timer scaled to the slot commits them all."""
    slot = 184
    ps = ports(slot, view_timeout_ticks(slot) if scaled else 10)
    for k in range(40):  # queues long enough that a pre-prepare waits more than 10 ticks
        ps[1 + k % 3].submit(f"c{k}", 0)
    run(ps, range(1, 600))
    done = [p.replica.last_exec for p in ps]
    assert (min(done) >= 40) == scaled, done


@pytest.mark.parametrize("fresh_numbers", [False, True])
def test_a_restarted_board_must_not_reuse_its_request_numbers(fresh_numbers: bool) -> None:
    """Board 1 restarts (a new port and an empty replica) and sends another command. Numbered
    from 1 again, the replicas take it for the first one repeated and answer that one's
    result: the command never runs. Numbered afresh (voterd: the wall clock), it runs."""
    ps = ports(800)
    ps[1].submit("arm", 0)
    run(ps, range(1, 30))
    first = ps[1].answered()[0]
    restarted = ports(800)[1]
    if fresh_numbers:
        restarted.next_req = 1_000_000
    ps[1] = restarted
    ps[1].submit("abort", 30)
    commits, _ = run(ps, range(31, 80))
    (second,) = ps[1].answered()
    ops = [c["command"]["op"] for c in commits[2] if c["command"]]
    assert ("abort" in ops) == fresh_numbers
    assert (second.seq == first.seq) != fresh_numbers
