"""The pure Board: one board's tick engine with late frames, drops, ECC and COM/MON."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voter.core import monitor, vote
from voter.core.adversary import Equivocate
from voter.core.board import Board, InconsistencyError, MemoryFault, TickReport
from voter.core.drops import Drop
from voter.core.frame import Frame, FrameSplitter, encode_frame
from voter.core.ic import ic_params
from voter.core.protocol import Algorithm
from voter.core.secded import CODE_BITS, EccStore, encode_word
from voter.core.values import ReadingDomain
from voter.testing import board_keys

READINGS = [(1.0 + i, 2.0, 3.0) for i in range(4)]


def cluster(alg: str = "om") -> list[Board]:
    params = ic_params(4, 1, Algorithm(alg), "t")
    keys = board_keys(4, "t")
    return [Board(params, i, 3, keys[i]) for i in range(4)]


def run_tick(boards: list[Board], tick: int, skip: set[tuple[int, int]] | None = None) -> list:
    """Deliver every frame through encode/decode; `skip` = (src, dst) links cut."""
    out = [b.begin_tick(tick, READINGS[i]) for i, b in enumerate(boards)]
    for _ in range(boards[0].params.rounds):
        for frames in out:
            for f in frames:
                if skip and (f.src, f.dst) in skip:
                    continue
                for item in FrameSplitter("t").feed(encode_frame(f)):
                    boards[f.dst].on_frame(f.src, item)
        out = [b.next_round() for b in boards]
    return [b.finish_tick() for b in boards]


def inbox(alg: str, tick: int = 1) -> list[list[Frame]]:
    """Per round, the frames board 0 receives in a fault-free tick of four loyal boards."""
    boards = cluster(alg)
    out = [b.begin_tick(tick, READINGS[i]) for i, b in enumerate(boards)]
    rounds: list[list[Frame]] = []
    for _ in range(boards[0].params.rounds):
        rounds.append([f for frames in out for f in frames if f.dst == 0])
        for frames in out:
            for f in frames:
                boards[f.dst].on_frame(f.src, f)
        out = [b.next_round() for b in boards]
    return rounds


def replay(
    alg: str,
    frames: list[list[Frame]],
    fault: MemoryFault | None = None,
    board: Board | None = None,
    tick: int = 1,
) -> TickReport:
    """A fresh board 0 given `frames` round by round, then its decision (with `fault`)."""
    b = board if board is not None else cluster(alg)[0]
    b.begin_tick(tick, READINGS[0])
    for round_frames in frames:
        for f in round_frames:
            b.on_frame(f.src, f)
        b.next_round()
    return b.finish_tick(fault)


@pytest.mark.parametrize("alg", ["om", "omh", "sm"])
def test_loyal_cluster_agrees_on_every_reading(alg: str) -> None:
    """Four loyal boards: same vector, every entry the board's own reading."""
    reports = run_tick(cluster(alg), 7)
    assert {tuple(READINGS)} == {r.decision.vector for r in reports}
    assert {(2.0, 2.0, 3.0)} == {r.decision.output for r in reports}


def test_frame_for_a_closed_round_is_late() -> None:
    """A round-1 frame arriving after round 1 closed is counted late, not used."""
    boards = cluster()
    frames = boards[1].begin_tick(3, READINGS[1])
    b0 = boards[0]
    b0.begin_tick(3, READINGS[0])
    b0.next_round()
    b0.on_frame(1, next(f for f in frames if f.dst == 0))
    report = b0.finish_tick()
    assert 1 == report.late


def test_early_frame_waits_for_its_round() -> None:
    """A peer ahead of us: its frame for the next tick is kept and used when the tick opens."""
    boards = cluster()
    ahead = boards[1].begin_tick(5, READINGS[1])
    boards[0].begin_tick(4, READINGS[0])
    boards[0].on_frame(1, next(f for f in ahead if f.dst == 0))
    boards[0].next_round()
    boards[0].finish_tick()
    boards[0].begin_tick(5, READINGS[0])
    assert 1 == boards[0]._driven.counters.received  # type: ignore[union-attr]


def test_wrong_link_cluster_and_garbage_are_counted_drops() -> None:
    """Frames naming another link or cluster, and undecodable bytes, are drops with reasons."""
    b = cluster()[0]
    b.begin_tick(1, READINGS[0])
    b.on_frame(2, Frame(1, "t", 1, 0, 1, 1, ()))  # says src 1 on the link from 2
    b.on_frame(1, Frame(1, "other", 1, 0, 1, 1, ()))
    for item in FrameSplitter("t").feed(b"\x05garbage\x00"):
        b.on_frame(1, item)
    b.next_round()
    report = b.finish_tick()
    assert {"link": 1, "cluster": 1} == {
        k: v for k, v in report.reasons.items() if k not in {"cobs", "crc"}
    }
    assert 3 == report.dropped


@cache
def clean(alg: str) -> tuple[list[list[Frame]], TickReport]:
    """Board 0's inbox in a fault-free tick 1, and its report for it."""
    frames = inbox(alg)
    return frames, replay(alg, frames)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    """Random bytes on board 1's link before each of its frames: each item they make is a
    counted drop, none is taken as a frame, and the decision is the fault-free one."""
    frames, want = clean("om")
    b = cluster()[0]
    b.begin_tick(1, READINGS[0])
    splitter = FrameSplitter("t")
    garbage = 0
    for round_frames in frames:
        for c in [*chunks, b"\x00"]:  # the 0x00 ends any partial garbage before the real frame
            for item in splitter.feed(c):
                assert isinstance(item, Drop)
                garbage += 1
                b.on_frame(1, item)
        for f in round_frames:
            for item in splitter.feed(encode_frame(f)) if f.src == 1 else [f]:
                b.on_frame(f.src, item)
        b.next_round()
    report = b.finish_tick()
    assert want.decision == report.decision
    assert want.dropped + garbage == report.dropped
    assert garbage == sum(report.reasons.values())
    assert sum(map(len, frames)) == b.totals.frames_in


def test_traitor_board_equivocates_but_loyal_boards_agree() -> None:
    """Board 3 with an Equivocate adversary: loyal vectors agree, entry 3 is ERROR."""
    boards = cluster()
    boards[3].adversary = Equivocate(ReadingDomain(3))
    reports = run_tick(boards, 1)
    loyal = {reports[i].decision.vector for i in range(3)}
    assert 1 == len(loyal)
    assert next(iter(loyal))[3] is None


def flip(bits: list[int]):  # type: ignore[no-untyped-def]
    def inject(store: EccStore) -> None:
        for bit in bits:
            store.flip_bit("table", bit)

    return inject


@pytest.mark.parametrize("alg", ["om", "omh", "sm"])
def test_single_memory_bit_flip_is_corrected_and_counted(alg: str) -> None:
    """One flipped bit anywhere in the message table (every 11th, data and check bits):
    corrected, counted, the table read back as written, and the same decision."""
    frames, want = clean(alg)
    table_bits = EccStore()
    table_bits.put_obj("table", _table_of(alg, frames))
    for bit in range(0, table_bits.bit_count("table"), 11):
        b = cluster(alg)[0]
        report = replay(alg, frames, flip([bit]), board=b)
        assert (1, 1) == (report.corrected, b.totals.corrected), bit
        assert _table_of(alg, frames) == b.store.get_obj("table"), bit
        assert want.decision == report.decision, bit


def _table_of(alg: str, frames: list[list[Frame]]) -> object:
    """The message table board 0 stores for `frames`, as it reads back from the store."""
    b = cluster(alg)[0]
    replay(alg, frames, board=b)
    return b.store.get_obj("table")


def test_double_memory_bit_flip_stops_the_board() -> None:
    """Two flipped bits in one word: detected, InconsistencyError (the board stops)."""
    b = cluster()[0]
    b.begin_tick(1, READINGS[0])
    b.next_round()
    with pytest.raises(InconsistencyError, match="memory"):
        b.finish_tick(flip([80, 81]))


def test_com_mon_disagreement_stops_the_board(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the MON path decides differently from COM, the board stops."""
    b = cluster()[0]
    b.begin_tick(1, READINGS[0])
    b.next_round()
    real = monitor.om_decisions

    def wrong(*args, **kw):  # type: ignore[no-untyped-def]
        out = real(*args, **kw)
        out[2] = (9.0, 9.0, 9.0)
        return out

    monkeypatch.setattr(monitor, "om_decisions", wrong)
    with pytest.raises(InconsistencyError, match="COM/MON"):
        b.finish_tick()


def test_monitor_matches_engine_on_random_traitors() -> None:
    """MON's iterative EIG equals COM's recursive one on OM(2), N=7 with lying boards."""
    import random

    from voter.core.adversary import RandomLies
    from voter.core.ic import make_node
    from voter.core.rounds import run_tick as drive

    params = ic_params(7, 2, "om")
    domain = ReadingDomain(1)
    for seed in range(20):
        rng = random.Random(seed)
        nodes = {i: make_node(params, i, domain, (float(i),), 0) for i in range(7)}
        driven = dict(nodes)
        from voter.core.adversary import Traitor

        for t in rng.sample(range(7), 2):
            driven[t] = Traitor(nodes[t], RandomLies(domain, rng))  # type: ignore[assignment]
        drive(driven, params.rounds)  # type: ignore[arg-type]
        for i in range(7):
            table = monitor.om_table(nodes[i].received_values())  # type: ignore[union-attr]
            assert nodes[i].decide() == monitor.om_decisions(params, i, (float(i),), table)


def test_com_mon_disagreement_on_the_voted_output_stops_the_board(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """COM's vote taking the upper median (MON keeps the lower one): the board stops."""
    monkeypatch.setattr(vote, "mid_value", lambda xs: sorted(xs)[len(xs) // 2])
    frames, _ = clean("om")
    with pytest.raises(InconsistencyError, match="voted output"):
        replay("om", frames)


class FaultyStore(EccStore):
    """An ECC store whose `key` takes a hit between each write and the read-back."""

    def __init__(self, key: str, bits: list[int]) -> None:
        super().__init__()
        self.key, self.bits = key, bits

    def put(self, key: str, blob: bytes) -> None:
        super().put(key, blob)
        if key == self.key:
            for bit in self.bits:
                self.flip_bit(key, bit)


def stored_vector_hit(bits: list[int]) -> tuple[Board, list[list[Frame]]]:
    b = cluster("om")[0]
    b.store = FaultyStore("vector", bits)
    return b, clean("om")[0]


def test_vector_changed_in_the_store_stops_the_board() -> None:
    """4 bits that turn a word of the stored vector into another valid codeword (entry 0's
    1.0 becomes 1.0000000000000002): the ECC cannot see it, the read-back check stops the board."""
    word, data_bit = 2, 16  # blob byte 10: the last byte of entry 0's first float
    code = encode_word(1 << data_bit)
    b, frames = stored_vector_hit([word * CODE_BITS + p for p in range(CODE_BITS) if code >> p & 1])
    with pytest.raises(InconsistencyError, match="agreed vector changed"):
        replay("om", frames, board=b)
    assert (0, 0) == (b.store.corrected, b.store.detected)
    assert 1.0000000000000002 == b.store.get_obj("vector")[0][0]  # type: ignore[index]


def test_double_flip_in_the_stored_vector_stops_the_board() -> None:
    """Two flips in one word of the stored vector: detected, and the board stops."""
    b, frames = stored_vector_hit([2 * CODE_BITS + 3, 2 * CODE_BITS + 40])
    with pytest.raises(InconsistencyError, match="memory: double-bit error in 'vector'"):
        replay("om", frames, board=b)


def test_single_flip_in_the_stored_vector_is_corrected_and_counted() -> None:
    """One flip in the stored vector: corrected, counted in the tick's report, same decision."""
    b, frames = stored_vector_hit([2 * CODE_BITS + 40])
    report = replay("om", frames, board=b)
    assert (1, 1) == (report.corrected, b.totals.corrected)
    assert clean("om")[1].decision == report.decision


# --- round_complete ------------------------------------------------------------


def test_round_complete_needs_a_frame_from_every_peer() -> None:
    """False before a tick opens, with 0, 1 and 2 of the 3 peers heard; True with all 3."""
    frames, _ = clean("om")
    b = cluster()[0]
    assert not b.round_complete()
    b.begin_tick(1, READINGS[0])
    assert not b.round_complete()
    for heard, f in enumerate(frames[0], start=1):
        b.on_frame(f.src, f)
        assert (heard == 3) == b.round_complete(), heard
    assert frozenset({1, 2, 3}) == b.heard()


def test_round_complete_ignores_repeats_drops_strangers_and_late_frames() -> None:
    """A repeat from peer 1, peer 2's frame on peer 3's link, a decoder drop, another
    cluster's frame, and a frame of the closed round: none of them completes round 2."""
    frames, _ = clean("om")
    r1, r2 = frames
    b = cluster()[0]
    b.begin_tick(1, READINGS[0])
    for f in r1[:2]:
        b.on_frame(f.src, f)
    b.next_round()
    by_src = {f.src: f for f in r2}
    b.on_frame(1, by_src[1])
    b.on_frame(1, by_src[1])  # the same peer twice
    b.on_frame(3, by_src[2])  # names src 2 on the link from 3: a link drop
    b.on_frame(2, Drop("crc"))
    b.on_frame(3, Frame(1, "other", 3, 0, 1, 2, ()))
    b.on_frame(3, r1[2])  # peer 3's round-1 frame, after round 1 closed: late
    assert not b.round_complete()
    assert frozenset({1}) == b.heard()
    b.on_frame(2, by_src[2])
    b.on_frame(3, by_src[3])
    assert b.round_complete()


def test_round_complete_starts_over_each_round_and_ends_with_the_tick() -> None:
    """A complete round 1 says nothing about round 2; a decided tick is never complete."""
    frames, _ = clean("om")
    b = cluster()[0]
    b.begin_tick(1, READINGS[0])
    for f in frames[0]:
        b.on_frame(f.src, f)
    assert b.round_complete()
    b.next_round()
    assert not b.round_complete()
    for f in frames[1]:
        b.on_frame(f.src, f)
    assert b.round_complete()
    b.next_round()
    b.finish_tick()
    assert not b.round_complete()


def test_round_complete_counts_frames_that_waited_for_their_round() -> None:
    """Round-2 frames that came during round 1 complete round 2 the moment it opens."""
    frames, _ = clean("om")
    b = cluster()[0]
    b.begin_tick(1, READINGS[0])
    for f in [*frames[0], *frames[1]]:
        b.on_frame(f.src, f)
    b.next_round()
    assert b.round_complete()


def test_round_complete_counts_empty_frames() -> None:
    """A loyal peer with nothing to relay sends an empty frame; it is heard all the same."""
    b = cluster()[0]
    b.begin_tick(1, READINGS[0])
    for peer in (1, 2, 3):
        b.on_frame(peer, Frame(1, "t", peer, 0, 1, 1, ()))
    assert b.round_complete()


def test_sm_chain_one_signature_short_in_a_frame_object_is_a_counted_drop() -> None:
    """Board 1's relay of commander 3 with its own signature cut off, handed over as a Frame
    object (the fast lane, past the encoder's check): one counted drop with its reason, even
    though V already holds the value, and the fault-free vector."""
    frames, want = clean("sm")
    r1, r2 = frames
    f = next(f for f in r2 if f.src == 1)
    entries = tuple(replace(e, sigs=e.sigs[:-1]) if e.path == (3, 1) else e for e in f.entries)
    short = replace(f, entries=entries)
    with pytest.raises(ValueError, match="signature"):
        encode_frame(short)  # the byte path could not even carry it
    report = replay("sm", [r1, [short if g is f else g for g in r2]])
    assert {"signature count != path length": 1} == report.reasons
    assert (want.dropped + 1, 1) == (report.dropped, report.decision.rejected)
    assert (want.decision.vector, want.decision.output) == (
        report.decision.vector,
        report.decision.output,
    )


@pytest.mark.parametrize("alg", ["om", "sm"])
def test_multi_bit_memory_hits_stop_the_board_or_change_nothing(alg: str) -> None:
    """3 to 6 flips in one word of the table (seeded, 200 hits): the fault-free decision or
    InconsistencyError, never another exception, including where the read-back does not unpack."""
    import random

    rng = random.Random(70)
    frames, want = clean(alg)
    unpack_stops = 0

    def hit(store: EccStore) -> None:
        word = rng.randrange(store.bit_count("table") // CODE_BITS)
        for bit in rng.sample(range(CODE_BITS), rng.randint(3, 6)):
            store.flip_bit("table", word * CODE_BITS + bit)

    for trial in range(200):
        try:
            report = replay(alg, frames, hit)
        except InconsistencyError as e:
            unpack_stops += "does not unpack" in str(e)
        else:
            assert want.decision == report.decision, trial
    assert unpack_stops > 0
