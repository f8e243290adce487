"""Tests of the frame codec (voter.core.frame): round trips, golden bytes, forms, limits, drops."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings

from tests.frames import (
    ABSENT,
    GOLDEN_OM,
    GOLDEN_OM_HEX,
    GOLDEN_POS,
    GOLDEN_POS_HEX,
    GOLDEN_SM,
    GOLDEN_SM_HEX,
    GOLDEN_SYNC,
    GOLDEN_SYNC_HEX,
    NIL,
    SIG,
    TWO,
    V1_OM_HEX,
    V2_OM_HEX,
    body,
    decode,
    frames,
    is_positional,
    payload,
    payload_of,
    sealed,
    uvarint,
)
from tests.strategies import STRATEGY_NAMES, adversary
from voter.budget import one_tick_frames
from voter.core.adversary import Choices, Option, Traitor, Withhold
from voter.core.board import Board, TickReport
from voter.core.cobs import cobs_decode, cobs_encode
from voter.core.drops import (
    ALL_DROP_REASONS,
    DETAIL_MAX,
    DROP_CLUSTER,
    DROP_COBS,
    DROP_CRC,
    DROP_LINK,
    DROP_SCHEMA,
    DROP_STALE,
    DROP_TOO_LONG,
    DROP_VERSION,
    Drop,
    drop,
)
from voter.core.frame import (
    CHANNELS_MAX,
    ENTRIES_MAX,
    LABEL_MAX,
    ROUND_MAX,
    TICK_MAX,
    WIRE_VERSION,
    Frame,
    FrameSplitter,
    SyncBlock,
    check_frame,
    decode_frame,
    encode_frame,
    encoded_size,
    wire_size,
)
from voter.core.ic import ic_params
from voter.core.om import OMNode
from voter.core.protocol import M_MAX, NODES_MAX, Algorithm, Entry
from voter.core.seal import CLUSTER_MAX, seal_payload
from voter.core.splitter import FRAME_BYTES_MAX
from voter.core.values import ReadingDomain
from voter.testing import board_keys

# -- round trips and golden bytes ----------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(frames)
def test_round_trip(frame: Frame) -> None:
    """Random valid frames (OM, SM, labels, readings with nil, relay slots) decode equal (400)."""
    wire = encode_frame(frame)
    assert 0 == wire[:-1].count(0)
    assert len(wire) == encoded_size(frame)
    assert frame == decode(wire[:-1], frame.cluster)


@settings(max_examples=600, deadline=None)
@given(frames)
def test_sizes_are_exact(frame: Frame) -> None:
    """encoded_size and the unchecked wire_size equal the encoding's length (OM, SM, sync; 600)."""
    assert len(encode_frame(frame)) == encoded_size(frame) == wire_size(frame)


@pytest.mark.parametrize(("alg", "nodes", "m"), [("om", 4, 1), ("sm", 4, 1), ("om", 7, 2)])
def test_wire_size_of_a_ticks_frames(alg: Algorithm, nodes: int, m: int) -> None:
    """Every frame of a tick (long SM frames too, whose COBS overhead hangs on their bytes)."""
    for round_frames in one_tick_frames(nodes, m, alg, 3):
        for f in round_frames:
            assert len(encode_frame(f)) == wire_size(f)


@pytest.mark.parametrize(
    ("frame", "hex_bytes", "positional"),
    [
        (GOLDEN_OM, GOLDEN_OM_HEX, False),
        (GOLDEN_POS, GOLDEN_POS_HEX, True),
        (GOLDEN_SM, GOLDEN_SM_HEX, False),
        (GOLDEN_SYNC, GOLDEN_SYNC_HEX, True),
    ],
)
def test_golden_bytes(frame: Frame, hex_bytes: str, positional: bool) -> None:
    """Known frames encode to hard-coded bytes, so the wire format cannot drift silently."""
    assert hex_bytes == encode_frame(frame).hex()
    assert frame == decode(bytes.fromhex(hex_bytes)[:-1])
    assert positional == is_positional(frame)


def test_golden_positional_layout() -> None:
    """The positional golden frame, byte by byte: header, one absent slot, a gappy reading."""
    assert payload(
        ABSENT + b"\x82\x02" + struct.pack(">2d", 1.5, -0.25),
        round_no=2,
        src=1,
        dst=0,
        tick=300,
        positional=True,
    ) == payload_of(GOLDEN_POS)


def test_loyal_om_frames_are_positional_and_carry_no_paths() -> None:
    """Every frame of a loyal OM tick (N=4 and N=7, m=2) takes the positional form.

    Its payload is the 3-byte header (tick 1), the timing flags in round 1, then one tag and
    24 value bytes per label.
    """
    for nodes in (4, 7):
        for sent in one_tick_frames(nodes, 2, "om", 3):
            for f in sent:
                assert is_positional(f)
                # (round 1: plus the timing block's flags byte, 0 when it has none)
                sync = 1 if f.round == 1 else 0
                assert 3 + sync + 25 * len(f.entries) == len(payload_of(f))
                assert f == decode(body(f), f.cluster)


def test_sm_frames_stay_explicit() -> None:
    """Signed entries always take the explicit form (relays are sparse; signatures vary)."""
    for sent in one_tick_frames(4, 1, "sm", 3):
        for f in sent:
            assert not is_positional(f)
            assert f == decode(body(f), f.cluster)


def test_a_signed_entry_is_encoded_once_and_checked_again_once_changed() -> None:
    """One Entry object relayed in several frames encodes as a fresh equal one does; changed
    behind its frozen front it is validated again, and the cache of encoded entries stays
    bounded."""
    from voter.core import frame as codec

    sig = bytes(range(64))
    e = Entry((0, 2), (1.5, -2.0), (sig, sig))
    for dst in (1, 3, 1):
        frame = Frame(WIRE_VERSION, "c", 2, dst, 7, 2, (e, Entry((1, 2), None, (sig, sig))))
        twin = Frame(
            WIRE_VERSION,
            "c",
            2,
            dst,
            7,
            2,
            (Entry((0, 2), (1.5, -2.0), (sig, sig)), Entry((1, 2), None, (sig, sig))),
        )
        assert encode_frame(frame) == encode_frame(twin)
        assert decode(body(frame), "c") == twin
    object.__setattr__(e, "sigs", (sig, sig[:63]))
    with pytest.raises(ValueError, match="signature"):
        encode_frame(Frame(WIRE_VERSION, "c", 2, 1, 7, 2, (e,)))
    object.__setattr__(e, "sigs", (sig, sig))
    object.__setattr__(e, "value", (1, 2))
    with pytest.raises(ValueError, match="float64"):
        encode_frame(Frame(WIRE_VERSION, "c", 2, 1, 7, 2, (e,)))
    for k in range(3 * codec._SIGNED_ENTRIES_MAX):
        encode_frame(Frame(WIRE_VERSION, "c", 0, 1, k, 1, (Entry((0,), (float(k),), (sig,)),)))
        assert len(codec._SIGNED_ENTRIES) <= codec._SIGNED_ENTRIES_MAX


def test_absent_slot_and_nil_value_stay_different() -> None:
    """A slot the sender left out is not an entry; a slot it filled with ERROR is (exactness)."""
    relayed = Entry((3, 1), (1.0,))
    left_out = Frame(WIRE_VERSION, "voter", 1, 0, 5, 2, (relayed,))
    sent_nil = Frame(WIRE_VERSION, "voter", 1, 0, 5, 2, (Entry((2, 1), None), relayed))
    assert is_positional(left_out) and is_positional(sent_nil)
    assert (left_out, sent_nil) == (decode(body(left_out)), decode(body(sent_nil)))
    assert left_out.entries == decode(body(left_out)).entries  # type: ignore[union-attr]


def test_sparse_or_unordered_entries_take_the_explicit_form() -> None:
    """A single label out of 182 slots, or slots out of order, or a duplicate: explicit form."""
    one = Frame(WIRE_VERSION, "c", 1, 0, 0, 3, (Entry((15, 14, 1), None),))
    swapped = Frame(WIRE_VERSION, "c", 1, 0, 0, 2, (Entry((3, 1), None), Entry((2, 1), None)))
    twice = Frame(WIRE_VERSION, "c", 1, 0, 0, 2, (Entry((2, 1), None), Entry((2, 1), None)))
    for frame in (one, swapped, twice):
        assert not is_positional(frame)
        assert frame == decode(body(frame), "c")


def test_traitor_frames_round_trip_exactly() -> None:
    """Skipped slots (positional) and duplicates out of order (explicit) arrive exactly as sent."""
    params = ic_params(7, 2, "om", "t")
    domain = ReadingDomain(3)
    table: dict[tuple[tuple[int, ...], int], Option] = {
        ((5, 3), 1): "both",
        ((0, 3), 1): "v0",
        ((3,), 1): "v1",
        ((0, 3), 2): "silent",
    }
    forms: set[bool] = set()
    for plan in (Withhold(), Choices(table, ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0)))):
        traitor = Traitor(OMNode(params, 3, domain, (1.0, 2.0, 3.0), 9), plan)
        for round_no in (1, 2, 3):
            for dst, entries in traitor.outgoing(round_no).items():
                frame = Frame(WIRE_VERSION, "t", 3, dst, 9, round_no, tuple(entries))
                assert frame == decode(body(frame), "t")
                forms.add(is_positional(frame))
    assert {True, False} == forms


def run_ticks(alg: str, nodes: int, m: int, strategy: str, wire: bool) -> list[TickReport]:
    """Three ticks of a cluster with one traitor, frames handed over in memory or as wire bytes."""
    params = ic_params(nodes, m, Algorithm(alg), "t")
    keys = board_keys(nodes, "t")
    boards = [Board(params, i, 3, keys[i]) for i in range(nodes)]
    boards[1].adversary = adversary(strategy, ReadingDomain(3), seed=5)
    splitters = {(i, j): FrameSplitter("t") for i in range(nodes) for j in range(nodes)}
    reports: list[TickReport] = []
    for tick in (1, 2, 3):
        out = [b.begin_tick(tick, (1000.0 + i, 60.0 - i, None)) for i, b in enumerate(boards)]
        for _ in range(params.rounds):
            for sent in out:
                for f in sent:
                    items = splitters[f.src, f.dst].feed(encode_frame(f)) if wire else [f]
                    for item in items:
                        boards[f.dst].on_frame(f.src, item)
            out = [b.next_round() for b in boards]
        reports += [b.finish_tick() for b in boards]
    return reports


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
@pytest.mark.parametrize(("alg", "nodes", "m"), [("om", 7, 2), ("sm", 4, 1)])
def test_the_wire_changes_nothing_a_board_sees(alg: str, nodes: int, m: int, strategy: str) -> None:
    """Every traitor strategy: decisions, message counts and rejection reasons are the same
    whether frames go through the codec or are handed over as objects."""
    assert run_ticks(alg, nodes, m, strategy, True) == run_ticks(alg, nodes, m, strategy, False)


def test_floats_are_always_float64_big_endian() -> None:
    """A reading channel is 8 bytes of IEEE float64, big-endian, whatever its value."""
    frame = Frame(WIRE_VERSION, "c", 0, 1, 0, 1, (Entry((0,), (0.5,)),))
    assert payload_of(frame).endswith(b"\x40\x3f\xe0\x00\x00\x00\x00\x00\x00")


def test_nan_and_infinities_pass_the_codec() -> None:
    """Any float64 decodes, NaN and ±inf included (the value domain rejects them, not the codec)."""
    frame = Frame(WIRE_VERSION, "c", 0, 1, 0, 1, (Entry((0,), (math.nan, math.inf, -math.inf)),))
    decoded = decode(body(frame), "c")
    assert isinstance(decoded, Frame)
    value = decoded.entries[0].value
    assert isinstance(value, tuple)
    assert (True, math.inf, -math.inf) == (math.isnan(value[0]), value[1], value[2])


def test_negative_zero_keeps_its_sign() -> None:
    """-0.0 travels as its own bytes (values agree exactly, down to the sign bit)."""
    frame = Frame(WIRE_VERSION, "c", 0, 1, 0, 1, (Entry((0,), (-0.0,)),))
    decoded = decode(body(frame), "c")
    assert isinstance(decoded, Frame)
    assert math.copysign(1.0, decoded.entries[0].value[0]) == -1.0  # type: ignore[index]


def test_entries_max_minimal_entries_fit() -> None:
    """ENTRIES_MAX of the smallest entries fit in one frame and round-trip."""
    frame = Frame(
        WIRE_VERSION, "voter", 1, 0, TICK_MAX, ROUND_MAX, (Entry((1,), None),) * ENTRIES_MAX
    )
    assert frame == decode(body(frame))


def test_body_of_exactly_frame_bytes_max_decodes() -> None:
    """A frame whose body is exactly FRAME_BYTES_MAX bytes is encoded and decoded."""
    # Full entries step the size by ~260 bytes, the last entry's channels by 8, the
    # label of one more entry by 1: together they reach every size near the limit.
    full = Entry((0, 1), tuple(float(i) + 0.1 for i in range(CHANNELS_MAX)))
    for n_full in range(1, 20):
        for n_channels in range(1, CHANNELS_MAX + 1):
            last = Entry((2, 1), tuple(float(i) + 0.1 for i in range(n_channels)))
            for pad in range(LABEL_MAX + 1):
                frame = Frame(
                    WIRE_VERSION,
                    "c",
                    1,
                    2,
                    3,
                    2,
                    (full,) * n_full + (last, Entry((3, 1), "x" * pad)),
                )
                if encoded_size(frame) == FRAME_BYTES_MAX + 1:
                    assert frame == decode(body(frame), "c")
                    return
    pytest.fail("no frame of exactly FRAME_BYTES_MAX body bytes found")


# -- rejections ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (payload(b"\x02\x01\x00" + TWO, version=1), DROP_VERSION),
        (payload(b"\x02\x01\x00" + TWO, version=0), DROP_VERSION),
        (payload(b"\x02\x01\x00" + TWO, version=15), DROP_VERSION),
        (payload(b"\x02\x01\x00" + TWO, version=2), DROP_VERSION),
        (b"\x30", DROP_SCHEMA),  # header cut short
        (b"\x32\x12", DROP_SCHEMA),  # no tick
        # the round-1 timing block
        (payload(round_no=1, sync=b""), DROP_SCHEMA),  # no flags byte
        (payload(round_no=1, sync=b"\x08"), DROP_SCHEMA),  # unknown flag
        (payload(round_no=1, sync=b"\x01\xa1\xb2\xc3"), DROP_SCHEMA),  # digest cut short
        (payload(round_no=1, sync=b"\x01\xa1\xb2\xc3\xd4"), DROP_SCHEMA),  # no heard
        (payload(round_no=1, sync=b"\x01" + b"\x00" * 4 + b"\x80\x00"), DROP_SCHEMA),  # 0x80 0
        (payload(round_no=1, sync=b"\x01" + b"\x00" * 4 + uvarint(2**16)), DROP_SCHEMA),
        (payload(round_no=1, sync=b"\x02"), DROP_SCHEMA),  # echo missing
        (payload(round_no=1, sync=b"\x02" + uvarint(2**32)), DROP_SCHEMA),  # echo too big
        (payload(round_no=1, sync=b"\x04" + uvarint(2**31)), DROP_SCHEMA),  # lag too big
        (payload(round_no=0), DROP_SCHEMA),
        (payload()[:2] + b"\x80\x00", DROP_SCHEMA),  # tick not minimal
        (payload()[:2] + b"\x87", DROP_SCHEMA),  # tick cut short
        (payload(tick=2**63), DROP_SCHEMA),
        (payload()[:2] + b"\xff" * 10 + b"\x01", DROP_SCHEMA),  # tick longer than 10 bytes
        # explicit entries
        (payload(b"\x00" + TWO), DROP_SCHEMA),  # path length 0
        (payload(b"\x08" + TWO), DROP_SCHEMA),  # signed, path length 0
        (payload(b"\x12\x00\x01" + TWO), DROP_SCHEMA),  # unknown head bit
        (payload(b"\x02\x00"), DROP_SCHEMA),  # path cut short
        (payload(b"\x02\x00\x10" + TWO), DROP_SCHEMA),  # node id 16
        (payload(b"\x02\x00\x01"), DROP_SCHEMA),  # no value
        (payload(b"\x02\x00\x01" + ABSENT), DROP_SCHEMA),  # absent outside positional
        (payload(b"\x02\x00\x01\x03"), DROP_SCHEMA),  # unknown tag
        (payload(b"\x02\x00\x01\x20"), DROP_SCHEMA),  # unknown tag
        (payload(b"\x02\x00\x01\xc0"), DROP_SCHEMA),  # unknown tag
        (payload(b"\x02\x00\x01" + TWO[:-1]), DROP_SCHEMA),  # reading cut short
        (payload(b"\x02\x00\x01\x81\x00" + TWO[1:]), DROP_SCHEMA),  # gap bitmap empty
        (payload(b"\x02\x00\x01\x81\x04" + TWO[1:]), DROP_SCHEMA),  # gap beyond channel 2
        (payload(b"\x02\x00\x01\x81\x01" + TWO[1:-9]), DROP_SCHEMA),  # gappy reading short
        (payload(b"\x02\x00\x01\x02\x41" + b"x" * 65), DROP_SCHEMA),  # 65-char label
        (payload(b"\x02\x00\x01\x02\x81\x02" + b"x" * 257), DROP_SCHEMA),  # 257-byte label
        (payload(b"\x02\x00\x01\x02\x02\xff\xfe"), DROP_SCHEMA),  # not UTF-8
        (payload(b"\x02\x00\x01\x02\x05abc"), DROP_SCHEMA),  # label cut short
        (payload(b"\x0a\x00\x01" + NIL + SIG), DROP_SCHEMA),  # one signature for two nodes
        (payload(b"\x01\x01\x01" * (ENTRIES_MAX + 1)), DROP_SCHEMA),  # too many entries
        # positional bodies
        (payload(positional=True), DROP_SCHEMA),  # no slots
        (payload(round_no=3, positional=True), DROP_SCHEMA),  # no slots (3 nodes have none)
        (payload(NIL * 4, round_no=3, positional=True), DROP_SCHEMA),  # no cluster has 4
        (payload(NIL, src=2, dst=2, positional=True), DROP_SCHEMA),  # link to itself
        (payload(NIL * 2, round_no=1, positional=True), DROP_SCHEMA),  # round 1 has one slot
        (payload(NIL * (ENTRIES_MAX + 1), round_no=2, positional=True), DROP_SCHEMA),
        (payload(NIL + b"\x03", positional=True), DROP_SCHEMA),  # unknown tag in a slot
        (payload(NIL + TWO[:-3], positional=True), DROP_SCHEMA),
    ],
)
def test_layout_rejections(raw: bytes, reason: str) -> None:
    """Well-framed payloads that break the layout are dropped with the right reason."""
    result = decode(sealed(raw))
    assert isinstance(result, Drop)
    assert (reason, True) == (result.reason, len(result.detail) <= 120)


def test_hand_built_payloads_decode() -> None:
    """The layout as documented: hand-assembled explicit and positional payloads decode."""
    explicit = payload(b"\x02\x00\x01" + TWO + b"\x01\x01" + NIL, tick=2**40)
    # src 1 -> dst 2 in round 3 of a 5-node cluster: pool (0, 3, 4), six slots.
    positional = payload(ABSENT * 5 + TWO, round_no=3, positional=True)
    assert Frame(
        WIRE_VERSION, "voter", 1, 2, 2**40, 2, (Entry((0, 1), (1.0, 2.0)), Entry((1,), None))
    ) == decode(sealed(explicit))
    assert Frame(WIRE_VERSION, "voter", 1, 2, 7, 3, (Entry((4, 3, 1), (1.0, 2.0)),)) == decode(
        sealed(positional)
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DROP_COBS),
        (b"\x02\x00", DROP_COBS),
        (b"\x09\x01", DROP_COBS),
        (cobs_encode(b"\x21\x12"), DROP_CRC),  # shorter than payload + CRC
        (cobs_encode(b"\x21\x12\x00\x00\x00\x00\x00"), DROP_CRC),
        (cobs_encode(cobs_decode(body(GOLDEN_OM))[:-1]), DROP_CRC),  # truncated
        (body(Frame(WIRE_VERSION, "other", 1, 2, 7, 2, ())), DROP_CRC),  # another cluster
        (body(Frame(WIRE_VERSION, "Voter", 1, 2, 7, 2, ())), DROP_CRC),
        (bytes.fromhex(V1_OM_HEX)[:-1], DROP_VERSION),  # the msgpack layout of version 1
        (bytes.fromhex(V2_OM_HEX)[:-1], DROP_VERSION),  # version 2: no timing block
        (b"\x01" * (FRAME_BYTES_MAX + 1), DROP_TOO_LONG),
    ],
)
def test_framing_rejections(data: bytes, reason: str) -> None:
    """Bodies broken below the layout (COBS, CRC, cluster, version 1, length) drop right."""
    result = decode(data)
    assert isinstance(result, Drop)
    assert reason == result.reason


def test_decode_accepts_read_buffers() -> None:
    """A bytearray or memoryview body (a read buffer) decodes like bytes."""
    good = body(GOLDEN_OM)
    assert [GOLDEN_OM, GOLDEN_OM] == [decode(bytearray(good)), decode(memoryview(good))]


def test_drop_reasons_are_distinct() -> None:
    """Every drop reason constant is listed once in ALL_DROP_REASONS."""
    reasons = {
        DROP_COBS,
        DROP_TOO_LONG,
        DROP_CRC,
        DROP_SCHEMA,
        DROP_VERSION,
        DROP_CLUSTER,
        DROP_LINK,
        DROP_STALE,
    }
    assert sorted(reasons) == sorted(ALL_DROP_REASONS)


def test_drop_detail_is_bounded() -> None:
    """A peer's detail text is cut to DETAIL_MAX characters before it reaches a log."""
    assert Drop(DROP_SCHEMA, "x" * DETAIL_MAX) == drop(DROP_SCHEMA, "x" * 1000)


# -- encode refuses our own bugs ---------------------------------------------------------

OK = Entry((0, 1), (1.0,))
V = WIRE_VERSION


@pytest.mark.parametrize(
    "frame",
    [
        Frame(1, "c", 1, 2, 0, 2, ()),
        Frame(True, "c", 1, 2, 0, 2, ()),
        Frame(V, "x" * (CLUSTER_MAX + 1), 1, 2, 0, 2, ()),
        Frame(V, b"c", 1, 2, 0, 2, ()),  # type: ignore[arg-type]
        Frame(V, ["c"], 1, 2, 0, 2, ()),  # type: ignore[arg-type]
        Frame(V, "\ud800", 1, 2, 0, 2, ()),
        Frame(V, "c", NODES_MAX, 2, 0, 2, ()),
        Frame(V, "c", True, 2, 0, 2, ()),
        Frame(V, "c", 1, -1, 0, 2, ()),
        Frame(V, "c", 1, 2, -1, 2, ()),
        Frame(V, "c", 1, 2, TICK_MAX + 1, 2, ()),
        Frame(V, "c", 1, 2, 0, 0, ()),
        Frame(V, "c", 1, 2, 0, ROUND_MAX + 1, ()),
        Frame(V, "c", 1, 2, 0, 2, [OK]),  # type: ignore[arg-type]
        Frame(V, "c", 1, 2, 0, 2, (OK,) * (ENTRIES_MAX + 1)),
        Frame(V, "c", 1, 2, 0, 2, (((0, 1), 1.0),)),  # type: ignore[arg-type]
        Frame(V, "c", 1, 2, 0, 2, (Entry((), None),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry(tuple(range(M_MAX + 2)), None),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry([0, 1], None),)),  # type: ignore[arg-type]
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, NODES_MAX), None),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, True), None),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), 5),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), b"attack"),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), "x" * (LABEL_MAX + 1)),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), "\ud800"),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), ()),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), [1.0]),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), (1.0,) * (CHANNELS_MAX + 1)),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), (1.0, 2)),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), (1.0, True)),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), None, (SIG,)),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), None, (SIG, SIG[:63])),)),
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), None, (SIG, "x" * 64)),)),  # type: ignore[arg-type]
        Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), (1.5,) * CHANNELS_MAX),) * 20),  # too big
    ],
)
def test_encode_refuses_frames_beyond_limits(frame: Frame) -> None:
    """Encoding a frame that breaks a limit raises ValueError (our bug, not a peer's)."""
    with pytest.raises(ValueError):
        encode_frame(frame)


def test_encoded_size_reports_oversize_without_raising() -> None:
    """encoded_size measures a too-big frame so a caller can tell it does not fit."""
    frame = Frame(V, "c", 1, 2, 0, 2, (Entry((0, 1), (1.5,) * CHANNELS_MAX),) * 20)
    assert encoded_size(frame) > FRAME_BYTES_MAX + 1


# -- per-link checks ----------------------------------------------------------------------

LINK = {"cluster": "voter", "src": 1, "dst": 2}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({}, None),
        ({"tick": 7, "round_no": 2}, None),
        ({"cluster": "other"}, DROP_CLUSTER),
        ({"cluster": "other", "src": 3}, DROP_CLUSTER),
        ({"src": 3}, DROP_LINK),
        ({"dst": 3}, DROP_LINK),
        ({"src": 2, "dst": 1}, DROP_LINK),
        ({"tick": 6}, DROP_STALE),
        ({"tick": 8}, DROP_STALE),
        ({"round_no": 1}, DROP_STALE),
        ({"tick": 7, "round_no": 3}, DROP_STALE),
    ],
)
def test_check_frame(kwargs: dict[str, object], reason: str | None) -> None:
    """Per-link checks: wrong cluster (in memory), src/dst not this link's, other tick/round."""
    result = check_frame(GOLDEN_OM, **{**LINK, **kwargs})  # type: ignore[arg-type]
    assert reason == (result.reason if result is not None else None)


@pytest.mark.parametrize(
    ("round_no", "sync"),
    [
        (2, SyncBlock(echo_us=5)),  # only round 1 carries timing
        (1, SyncBlock()),  # an empty block is written as sync=None
        (1, SyncBlock(b"abc")),  # digest of 3 bytes
        (1, SyncBlock(None, 3)),  # heard without a digest
        (1, SyncBlock(b"abcd", 1 << NODES_MAX)),  # heard names node 16
        (1, SyncBlock(echo_us=2**31)),
        (1, SyncBlock(lag_us=-1)),
    ],
)
def test_encoder_refuses_a_timing_block_no_decoder_returns(round_no: int, sync: SyncBlock) -> None:
    """One meaning per payload: what would not decode back equal is our bug, a ValueError."""
    frame = Frame(WIRE_VERSION, "c", 0, 1, 5, round_no, (Entry((0,), None),), sync)
    with pytest.raises(ValueError):
        encode_frame(frame)


def test_every_cut_of_a_signed_entry_names_the_field_that_runs_past_the_end() -> None:
    """A signed entry cut short anywhere (re-sealed, so the CRC passes) is a schema drop that
    names the field cut: the path, the value tag, the reading (read inline for signed
    entries) or the signatures; whole, it decodes to itself."""
    frame = Frame(
        WIRE_VERSION, "voter", 1, 2, 7, 2, (Entry((0, 1), (1.5, -2.0, 3.25), (SIG, SIG)),)
    )
    payload = cobs_decode(encode_frame(frame)[:-1])[:-4]
    header = 3  # first byte, src/dst, tick 7
    # head at 3, path at 4-5, value tag at 6, 3 floats at 7-30, 2 signatures at 31-158
    fields = [
        (header + 3, "path runs past the end"),
        (header + 4, "value runs past the end"),
        (header + 4 + 24, "reading runs past the end"),
        (len(payload), "signatures run past the end"),
    ]
    for cut in range(header + 1, len(payload)):
        got = decode_frame(seal_payload(payload[:cut], "voter")[:-1], "voter")
        assert isinstance(got, Drop) and DROP_SCHEMA == got.reason, cut
        want = next(text for end, text in fields if cut < end)
        assert want == got.detail, cut
    assert frame == decode_frame(seal_payload(payload, "voter")[:-1], "voter")
