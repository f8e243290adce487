"""Frame strategies, byte builders and golden frames shared by the wire tests.

Used by test_frame, test_frame_fuzz, test_seal, test_slots and test_splitter.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from itertools import permutations

from hypothesis import strategies as st

from voter.core.cobs import cobs_decode
from voter.core.drops import Drop
from voter.core.frame import (
    CHANNELS_MAX,
    LABEL_MAX,
    ROUND_MAX,
    TICK_MAX,
    WIRE_VERSION,
    Frame,
    SyncBlock,
    decode_frame,
    encode_frame,
)
from voter.core.protocol import M_MAX, NODES_MAX, Entry
from voter.core.seal import CLUSTER_MAX, seal_payload

# -- strategies ----------------------------------------------------------------------

node_ids = st.integers(0, NODES_MAX - 1)
paths = st.lists(node_ids, min_size=1, max_size=M_MAX + 1).map(tuple)
labels = st.text(max_size=LABEL_MAX)
#: NaN is left out where frames are compared (NaN != NaN); it has its own test.
channels = st.one_of(st.none(), st.floats(allow_nan=False))
readings = st.lists(channels, min_size=1, max_size=CHANNELS_MAX).map(tuple)
values = st.one_of(st.none(), labels, readings)
signatures = st.binary(min_size=64, max_size=64)
clusters = st.text(max_size=CLUSTER_MAX)

om_entries = st.builds(Entry, paths, values)
sm_entries = paths.flatmap(
    lambda p: st.builds(
        Entry,
        st.just(p),
        values,
        st.lists(signatures, min_size=len(p), max_size=len(p)).map(tuple),
    )
)
#: Sizes chosen so that even the largest draws stay under FRAME_BYTES_MAX.
entry_lists = st.one_of(
    st.lists(om_entries, max_size=10),
    st.lists(sm_entries, max_size=3),
    st.lists(st.one_of(om_entries, sm_entries), max_size=4),
).map(tuple)


SYNC_US = st.integers(-(2**31 - 1), 2**31 - 1)
sync_blocks = st.one_of(
    st.builds(
        SyncBlock,
        st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
        st.just(0),
        st.one_of(st.none(), SYNC_US),
        st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    ),
    st.builds(
        SyncBlock,
        st.binary(min_size=4, max_size=4),
        st.integers(0, 2**NODES_MAX - 1),
        st.one_of(st.none(), SYNC_US),
        st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    ),
).filter(lambda b: b != SyncBlock())


@st.composite
def with_sync(draw: st.DrawFn, frame: Frame) -> Frame:
    """Round-1 frames get a timing block half of the time (rounds >= 2 never carry one)."""
    if frame.round != 1 or not draw(st.booleans()):
        return frame
    return replace(frame, sync=draw(sync_blocks))  # not __slots__: a compiled Frame has none


def frames_of(
    entries: st.SearchStrategy[tuple[Entry, ...]], cluster: st.SearchStrategy[str] = clusters
) -> st.SearchStrategy[Frame]:
    """Valid frames (any paths, so mostly the explicit form) whose entries come from `entries`."""
    return st.builds(
        Frame,
        st.just(WIRE_VERSION),
        cluster,
        node_ids,
        node_ids,
        st.integers(0, TICK_MAX),
        st.integers(1, ROUND_MAX),
        entries,
    ).flatmap(with_sync)


def loyal_slots(nodes: int, src: int, dst: int, round_no: int) -> list[tuple[int, ...]]:
    """What a loyal OM board relays src->dst in `round_no`, in the order it sends it (LSP)."""
    pool = [i for i in range(nodes) if i not in (src, dst)]
    return [(*sigma, src) for sigma in permutations(pool, round_no - 1)]


@st.composite
def slotted_frames(draw: st.DrawFn, cluster: st.SearchStrategy[str] = clusters) -> Frame:
    """OM frames whose paths are relay slots of some cluster, any subset in slot order.

    Dense subsets take the positional form, sparse ones the explicit form; a
    value may be nil, so "sent ERROR" and "not sent" must stay told apart.
    """
    nodes = draw(st.integers(2, 8))
    round_no = draw(st.integers(1, min(ROUND_MAX, nodes - 1, 4)))
    src, dst = draw(st.lists(st.integers(0, nodes - 1), min_size=2, max_size=2, unique=True))
    slots = loyal_slots(nodes, src, dst, round_no)[:60]
    chosen = draw(st.sets(st.integers(0, len(slots) - 1), min_size=1, max_size=len(slots)))
    entries = tuple(Entry(slots[i], draw(values)) for i in sorted(chosen))
    return Frame(
        WIRE_VERSION, draw(cluster), src, dst, draw(st.integers(0, TICK_MAX)), round_no, entries
    )


frames = st.one_of(frames_of(entry_lists), slotted_frames().flatmap(with_sync))
#: Small frames for the exhaustive bit-flip test (every bit of every example).
small_frames = st.one_of(
    frames_of(st.lists(st.one_of(om_entries, sm_entries), max_size=2).map(tuple)),
    slotted_frames().filter(lambda f: len(f.entries) <= 3),
)


def body(frame: Frame) -> bytes:
    """The encoded frame without its trailing 0x00."""
    wire = encode_frame(frame)
    assert wire[-1] == 0
    return wire[:-1]


def payload_of(frame: Frame) -> bytes:
    """The frame's payload: COBS undone, CRC cut off."""
    return cobs_decode(body(frame))[:-4]


def is_positional(frame: Frame) -> bool:
    return bool(payload_of(frame)[0] & 0x08)


def decode(data: bytes | bytearray | memoryview, cluster: str = "voter") -> Frame | Drop:
    return decode_frame(data, cluster)


def uvarint(v: int) -> bytes:
    out = bytearray()
    while v > 0x7F:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def payload(
    body: bytes = b"",
    *,
    round_no: int = 2,
    src: int = 1,
    dst: int = 2,
    tick: int = 7,
    positional: bool = False,
    version: int = WIRE_VERSION,
    sync: bytes | None = None,
) -> bytes:
    """A hand-built version-3 payload (no CRC), to reach the layout checks.

    Round 1 gets an empty timing block (flags 0) unless `sync` gives one.
    """
    first = version << 4 | (0x08 if positional else 0) | round_no
    if sync is None:
        sync = b"\x00" if round_no == 1 else b""
    return bytes((first, src << 4 | dst)) + uvarint(tick) + sync + body


def sealed(raw: bytes, cluster: str = "voter") -> bytes:
    """A well-framed body (valid COBS and CRC for `cluster`) around a raw payload."""
    return seal_payload(raw, cluster)[:-1]


def reading(*xs: float) -> bytes:
    """A full reading value: tag 0x40|k-1, then k big-endian float64."""
    return bytes((0x40 | len(xs) - 1,)) + struct.pack(f">{len(xs)}d", *xs)


NIL = b"\x01"
ABSENT = b"\x00"
SIG = bytes(range(64))

#: Explicit form: a path through the receiver (2) and an order no loyal board uses.
GOLDEN_OM = Frame(
    WIRE_VERSION,
    "voter",
    1,
    2,
    7,
    2,
    (Entry((0, 1), (1.5, None)), Entry((3, 1), "attack"), Entry((2, 1), None)),
)
GOLDEN_OM_HEX = "0532120702060181023ff8010101010114020301020661747461636b02020101a4dd1e2700"
#: Positional form: slot (2, 1) absent, slot (3, 1) a reading with a nil channel.
GOLDEN_POS = Frame(WIRE_VERSION, "voter", 1, 0, 300, 2, (Entry((3, 1), (1.5, None, -0.25)),))
GOLDEN_POS_HEX = "053a10ac020582023ff8010101010103bfd0010101010105d9da2ade00"
GOLDEN_SM = Frame(WIRE_VERSION, "voter", 0, 3, 42, 1, (Entry((0,), (-0.25,), (SIG,)),))
GOLDEN_SM_HEX = (
    "0431032a02090440bfd0010101010101440102030405060708090a0b0c0d0e0f1011121314"
    "15161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738"
    "393a3b3c3d3e3f64c905cd00"
)
#: A round-1 frame with its timing block: digest, heard {0, 1, 3}, echo -1.5 ms, lag 240 us.
GOLDEN_SYNC = Frame(
    WIRE_VERSION,
    "voter",
    2,
    0,
    1000,
    1,
    (Entry((2,), (1.5, 2.0, -0.25)),),
    SyncBlock(bytes.fromhex("a1b2c3d4"), 0b1011, -1500, 240),
)
GOLDEN_SYNC_HEX = (
    "123920e80707a1b2c3d40bb717f001423ff80101010101024001010101010103bfd0010101010105261edf8500"
)
#: The same OM frame as version 2 wrote it (no timing block), before wire v3.
V2_OM_HEX = "0522120702060181023ff8010101010114020301020661747461636b02020101372e562000"
#: A version-1 frame (msgpack, CRC over the payload alone) as voterd 0.x sent it.
V1_OM_HEX = (
    "109701a5766f74657201020702939292060192cb3ff8010101010116c092920301a661"
    "747461636b92920201c0fd9bd25700"
)


TWO = reading(1.0, 2.0)
