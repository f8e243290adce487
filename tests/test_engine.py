"""The OM(m) and SM(m) state machines: exact counts, rounds, signatures, rejections."""

from __future__ import annotations

import pytest

from voter.core.adversary import RoundNode
from voter.core.crypto import signed_bytes
from voter.core.ic import make_node
from voter.core.om import OMNode
from voter.core.protocol import Algorithm, Entry, Params, Rejected
from voter.core.rounds import run_tick
from voter.core.sm import SMNode
from voter.core.values import LabelDomain, ReadingDomain
from voter.testing import cluster_keys, run_ic

DOMAIN = LabelDomain(("attack", "retreat"))


def om_messages(n: int, m: int) -> int:
    """LSP's closed form M(N,0) = N-1, M(N,m) = (N-1) + (N-1) M(N-1, m-1)."""
    return n - 1 if m == 0 else (n - 1) + (n - 1) * om_messages(n - 1, m - 1)


def single_commander(n: int, m: int, algorithm: str) -> tuple[int, int, dict[int, object]]:
    params = Params(n, m, Algorithm(algorithm), (0,), "retreat")
    keys, _ = cluster_keys(n, [])
    nodes: dict[int, RoundNode] = {
        i: make_node(params, i, DOMAIN, "attack" if i == 0 else None, 0, keys) for i in range(n)
    }
    run = run_tick(nodes, params.rounds)
    return run.messages, run.rounds, {i: d[0] for i, d in run.decisions.items()}


def test_om1_n4_sends_nine_messages() -> None:
    """OM(1), N=4: 3 + 3*2 = 9 messages counted by the engine, 2 rounds."""
    assert (9, 2) == single_commander(4, 1, "om")[:2]


def test_om2_n7_sends_156_messages() -> None:
    """OM(2), N=7: 156 messages counted by the engine, 3 rounds."""
    assert (156, 3) == single_commander(7, 2, "om")[:2]


@pytest.mark.parametrize(("n", "m"), [(3, 1), (4, 1), (5, 2), (6, 1), (7, 2), (8, 3)])
def test_om_counts_match_closed_form(n: int, m: int) -> None:
    """The engine's count equals LSP's recursion for several N, m."""
    assert om_messages(n, m) == single_commander(n, m, "om")[0]


@pytest.mark.parametrize(("n", "m"), [(3, 1), (4, 1), (4, 2), (5, 3)])
def test_sm_no_traitor_count(n: int, m: int) -> None:
    """SM(m) without traitors: (N-1) + (N-1)(N-2) messages; later rounds relay nothing new."""
    assert (n - 1) + (n - 1) * (n - 2) == single_commander(n, m, "sm")[0]


def test_ic_om1_n4_per_node_messages() -> None:
    """IC with OM(1), N=4: each node sends 9 and receives 9 value messages (18 in the log)."""
    readings = {i: (float(i), 2.0, 3.0) for i in range(4)}
    run = run_ic(4, 1, "om", readings)
    assert {18} == {d.messages for d in run.decisions.values()}
    assert 36 == run.messages
    assert run.agreement() and run.validity(readings)


def _sm_node(me: int, tick: int, cluster: str = "voter") -> SMNode:
    params = Params(4, 1, "sm", (0, 1, 2, 3), None, cluster)
    keys, _ = cluster_keys(4, [])
    return SMNode(params, me, ReadingDomain(1), keys, (1.0,), tick)


def _signed_entry(node: SMNode, path: tuple[int, ...], value: tuple[float, ...]) -> Entry:
    p = node.params
    keys, _ = cluster_keys(4, [])
    sigs = tuple(
        keys.sign(path[k], signed_bytes(p.cluster, node.tick, path[: k + 1], value))
        for k in range(len(path))
    )
    return Entry(path, value, sigs)


def test_sm_accepts_a_valid_chain() -> None:
    """Control case for the replay tests: a correct chain of tick 5 is accepted at tick 5."""
    receiver = _sm_node(2, tick=5)
    assert [] == receiver.receive(2, 1, [_signed_entry(_sm_node(0, 5), (0, 1), (7.0,))])
    assert [(7.0,)] == receiver.accepted(0)


def test_signature_replayed_into_another_tick_is_rejected() -> None:
    """A chain signed for tick 5 does not verify at tick 6."""
    old = _signed_entry(_sm_node(0, tick=5), (0, 1), (7.0,))
    receiver = _sm_node(2, tick=6)
    assert ["bad signature"] == [r.reason for r in receiver.receive(2, 1, [old])]
    assert [] == receiver.accepted(0)


def test_signature_replayed_into_another_position_is_rejected() -> None:
    """Node 1's signature for path 0->1 does not verify as the last link of 0->3->1."""
    src = _sm_node(0, tick=5)
    good = _signed_entry(src, (0, 1), (7.0,))
    at_3 = _signed_entry(src, (0, 3), (7.0,))
    moved = Entry((0, 3, 1), (7.0,), (at_3.sigs[0], at_3.sigs[1], good.sigs[1]))
    receiver = _sm_node(2, tick=5)
    assert ["bad signature"] == [r.reason for r in receiver.receive(3, 1, [moved])]


def test_signature_replayed_into_another_cluster_is_rejected() -> None:
    """A chain signed in cluster 'voter' does not verify in cluster 'other'."""
    old = _signed_entry(_sm_node(0, tick=5), (0, 1), (7.0,))
    receiver = _sm_node(2, tick=5, cluster="other")
    assert ["bad signature"] == [r.reason for r in receiver.receive(2, 1, [old])]


def test_om_rejects_structurally_wrong_entries() -> None:
    """Wrong round, wrong sender, own id on the path, duplicates, bad values: counted drops."""
    params = Params(4, 1, "om", (0, 1, 2, 3), None)
    node = OMNode(params, 2, ReadingDomain(1), (1.0,))
    entries = [
        Entry((0,), (1.0,)),  # round-1 path in round 2
        Entry((0, 3), (1.0,)),  # claims to come from 3 on the link from 1
        Entry((2, 1), (1.0,)),  # contains the receiver
        Entry((0, 1), (1.0,)),  # fine
        Entry((0, 1), (9.0,)),  # duplicate label
        Entry((3, 1), ("x",)),  # value outside the domain
        Entry((3, 1), (float("nan"),)),  # NaN is not a reading
    ]
    reasons = [r.reason for r in node.receive(2, 1, entries)]
    assert [
        "path length != round",
        "path does not end at the link's peer",
        "path contains receiver",
        "duplicate label",
        "value outside domain",
        "value outside domain",
    ] == reasons
    assert 6 == node.counters.rejected and 1 == node.counters.received


def test_missing_messages_take_the_default() -> None:
    """A commander heard by nobody is ERROR in every loyal vector, never a number."""
    readings = {i: (float(i),) for i in range(4)}

    def cut(r: int, src: int, dst: int, entries: list[Entry]) -> list[Entry]:
        return [] if src == 3 else entries

    run = run_ic(4, 1, "om", readings, channels=1, link=cut)
    assert {(readings[0], readings[1], readings[2], None)} == {
        run.decisions[i].vector for i in range(3)
    }
    assert (1.0,) == run.decisions[0].output


SHORT = "signature count != path length"


def test_sm_chain_one_signature_short_is_a_counted_drop() -> None:
    """A round-2 chain 0->1 carrying only the commander's signature, handed over in memory:
    rejected for its count (not as a bad signature), counted, not accepted."""
    full = _signed_entry(_sm_node(0, 5), (0, 1), (7.0,))
    receiver = _sm_node(2, tick=5)
    short = Entry(full.path, full.value, full.sigs[:1])
    assert [Rejected(2, 1, SHORT, 0)] == receiver.receive(2, 1, [short])
    assert (1, 0, {SHORT: 1}) == (
        receiver.counters.rejected,
        receiver.counters.received,
        receiver.counters.reasons,
    )
    assert [] == receiver.accepted(0)


def test_sm_unsigned_round_1_value_is_dropped_and_not_relayed() -> None:
    """A commander's round-1 value with no signature at all: a counted drop, nothing relayed."""
    receiver = _sm_node(2, tick=5)
    assert [SHORT] == [r.reason for r in receiver.receive(1, 0, [Entry((0,), (7.0,))])]
    assert [] == receiver.accepted(0)
    assert not any(receiver.outgoing(2).values())


def test_sm_chain_one_signature_short_is_dropped_even_for_a_known_value() -> None:
    """V already holds 7.0 from the commander: a short chain for 7.0 in round 2 is still a
    counted drop, not a duplicate received unchecked."""
    commander = _sm_node(0, 5)
    receiver = _sm_node(2, tick=5)
    assert [] == receiver.receive(1, 0, [_signed_entry(commander, (0,), (7.0,))])
    full = _signed_entry(commander, (0, 1), (7.0,))
    rejected = receiver.receive(2, 1, [Entry(full.path, full.value, full.sigs[:1])])
    assert [SHORT] == [r.reason for r in rejected]
    assert (1, 1) == (receiver.counters.rejected, receiver.counters.received)
