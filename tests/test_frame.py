"""Tests of the wire codec (voter.core.frame): round trips, golden bytes, COBS, fuzz, limits."""

from __future__ import annotations

import math

import crc32c
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voter.core.frame import (
    ALL_DROP_REASONS,
    CHANNELS_MAX,
    CLUSTER_MAX,
    DROP_CLUSTER,
    DROP_COBS,
    DROP_CRC,
    DROP_LINK,
    DROP_MSGPACK,
    DROP_SCHEMA,
    DROP_STALE,
    DROP_TOO_LONG,
    DROP_VERSION,
    ENTRIES_MAX,
    FRAME_BYTES_MAX,
    LABEL_MAX,
    ROUND_MAX,
    TICK_MAX,
    WIRE_VERSION,
    Drop,
    Frame,
    FrameSplitter,
    check_frame,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode_frame,
    encoded_size,
    seal_payload,
)
from voter.core.protocol import M_MAX, NODES_MAX, Entry

# -- shared strategies ---------------------------------------------------------------

node_ids = st.integers(0, NODES_MAX - 1)
paths = st.lists(node_ids, min_size=1, max_size=M_MAX + 1).map(tuple)
labels = st.text(max_size=LABEL_MAX)
#: NaN is left out where frames are compared (NaN != NaN); it has its own test.
channels = st.one_of(st.none(), st.floats(allow_nan=False))
readings = st.lists(channels, min_size=1, max_size=CHANNELS_MAX).map(tuple)
values = st.one_of(st.none(), labels, readings)
signatures = st.binary(min_size=64, max_size=64)

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


def frames_of(entries: st.SearchStrategy[tuple[Entry, ...]]) -> st.SearchStrategy[Frame]:
    """Valid frames whose entries come from `entries`."""
    return st.builds(
        Frame,
        st.just(WIRE_VERSION),
        st.text(max_size=CLUSTER_MAX),
        node_ids,
        node_ids,
        st.integers(0, TICK_MAX),
        st.integers(1, ROUND_MAX),
        entries,
    )


frames = frames_of(entry_lists)
#: Small frames for the exhaustive bit-flip test (every bit of every example).
small_frames = frames_of(st.lists(st.one_of(om_entries, sm_entries), max_size=2).map(tuple))


def body(frame: Frame) -> bytes:
    """The encoded frame without its trailing 0x00."""
    wire = encode_frame(frame)
    assert wire[-1] == 0
    return wire[:-1]


def sealed(obj: object, **packb: bool) -> bytes:
    """A well-framed body (valid COBS and CRC) around msgpack(obj), to reach the schema check."""
    return seal_payload(msgpack.packb(obj, use_bin_type=True, **packb))[:-1]


def header(**fields: object) -> list[object]:
    """A valid frame as a raw msgpack-ready list, with some fields replaced."""
    raw: dict[str, object] = {
        "version": 1,
        "cluster": "voter",
        "src": 1,
        "dst": 2,
        "tick": 7,
        "round": 2,
        "entries": [[[0, 1], [1.5, None]]],
    }
    raw.update(fields)
    return list(raw.values())


def raw_entry(*entry: object) -> list[object]:
    """A raw frame carrying the single raw entry `entry`."""
    return header(entries=[list(entry)])


SIG = bytes(range(64))
GOLDEN_OM = Frame(
    1,
    "voter",
    1,
    2,
    7,
    2,
    (Entry((0, 1), (1.5, None)), Entry((3, 1), "attack"), Entry((2, 1), None)),
)
GOLDEN_OM_HEX = (
    "109701a5766f74657201020702939292060192cb3ff8010101010116c092920301a661"
    "747461636b92920201c0fd9bd25700"
)
GOLDEN_SM = Frame(1, "voter", 0, 3, 42, 1, (Entry((0,), (-0.25,), (SIG,)),))
GOLDEN_SM_HEX = (
    "099701a5766f74657207032a019193910591cbbfd001010101010491c440440102030405"
    "060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728"
    "292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f36315b2b00"
)


# -- round trips and golden bytes ----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(frames)
def test_round_trip(frame: Frame) -> None:
    """Random valid frames (OM, SM, labels, readings with None) decode equal (300 examples)."""
    wire = encode_frame(frame)
    assert 0 == wire[:-1].count(0)
    assert len(wire) == encoded_size(frame)
    assert frame == decode_frame(wire[:-1])


@pytest.mark.parametrize(
    ("frame", "hex_bytes"), [(GOLDEN_OM, GOLDEN_OM_HEX), (GOLDEN_SM, GOLDEN_SM_HEX)]
)
def test_golden_bytes(frame: Frame, hex_bytes: str) -> None:
    """Known frames encode to hard-coded bytes, so the wire format cannot drift silently."""
    assert hex_bytes == encode_frame(frame).hex()
    assert frame == decode_frame(bytes.fromhex(hex_bytes)[:-1])


def test_floats_are_always_float64() -> None:
    """A reading channel is packed as msgpack float64 (0xcb) whatever its value."""
    frame = Frame(1, "c", 0, 1, 0, 1, (Entry((0,), (0.5,)),))
    payload = cobs_decode(body(frame))[:-4]
    assert b"\xcb\x3f\xe0\x00\x00\x00\x00\x00\x00" in payload


def test_nan_and_infinities_pass_the_codec() -> None:
    """Any float64 decodes, NaN and ±inf included (the value domain rejects them, not the codec)."""
    frame = Frame(1, "c", 0, 1, 0, 1, (Entry((0,), (math.nan, math.inf, -math.inf)),))
    decoded = decode_frame(body(frame))
    assert isinstance(decoded, Frame)
    reading = decoded.entries[0].value
    assert isinstance(reading, tuple)
    assert (True, math.inf, -math.inf) == (math.isnan(reading[0]), reading[1], reading[2])


def test_float32_on_the_wire_is_accepted() -> None:
    """A foreign encoder's float32 channel decodes to the same float (values, not bytes, agree)."""
    decoded = decode_frame(sealed(header(entries=[[[0, 1], [1.5]]]), use_single_float=True))
    assert Frame(1, "voter", 1, 2, 7, 2, (Entry((0, 1), (1.5,)),)) == decoded


def test_entries_max_minimal_entries_fit() -> None:
    """ENTRIES_MAX of the smallest entries fit in one frame and round-trip."""
    frame = Frame(1, "voter", 1, 0, TICK_MAX, ROUND_MAX, (Entry((1,), None),) * ENTRIES_MAX)
    assert frame == decode_frame(body(frame))


def test_body_of_exactly_frame_bytes_max_decodes() -> None:
    """A frame whose body is exactly FRAME_BYTES_MAX bytes is encoded and decoded."""
    # Full entries step the size by ~300 bytes, the last entry's channels by 9, the
    # cluster name by 1: together they reach every size near the limit.
    full = Entry((0, 1), tuple(float(i) + 0.1 for i in range(CHANNELS_MAX)))
    for n_full in range(1, 20):
        for n_channels in range(1, CHANNELS_MAX + 1):
            last = Entry((2, 1), tuple(float(i) + 0.1 for i in range(n_channels)))
            for pad in range(CLUSTER_MAX + 1):
                frame = Frame(1, "c" * pad, 1, 2, 3, 2, (full,) * n_full + (last,))
                if encoded_size(frame) == FRAME_BYTES_MAX + 1:
                    assert frame == decode_frame(body(frame))
                    return
    pytest.fail("no frame of exactly FRAME_BYTES_MAX body bytes found")


# -- COBS -----------------------------------------------------------------------------

RUN_254 = bytes(range(1, 255))


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (RUN_254, b"\xff" + RUN_254),
        (b"\x00" + RUN_254, b"\x01\xff" + RUN_254),
        (RUN_254 + b"\xff", b"\xff" + RUN_254 + b"\x02\xff"),
        (RUN_254[1:] + b"\xff\x00", b"\xff" + RUN_254[1:] + b"\xff\x01\x01"),
        (RUN_254[2:] + b"\xff\x00\x01", b"\xfe" + RUN_254[2:] + b"\xff\x02\x01"),
    ],
)
def test_cobs_known_vectors(data: bytes, encoded: bytes) -> None:
    """COBS matches the published Cheshire/Baker examples (incl. 254-byte block edges)."""
    assert encoded == cobs_encode(data)
    assert data == cobs_decode(encoded)


cobs_inputs = st.lists(
    st.one_of(
        st.binary(max_size=20),
        st.integers(1, 6).map(lambda n: b"\x00" * n),
        st.integers(250, 600).map(lambda n: bytes((i % 255) + 1 for i in range(n))),
    ),
    max_size=6,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(cobs_inputs)
def test_cobs_round_trip(data: bytes) -> None:
    """COBS round-trips 0x00 runs and >254 non-zero runs, never emitting 0x00 (500 examples)."""
    encoded = cobs_encode(data)
    assert 0 == encoded.count(0)
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert data == cobs_decode(encoded)


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\x02\x00", b"\x05\x01\x01", b"\xff\x01"])
def test_cobs_decode_rejects_impossible_bodies(bad: bytes) -> None:
    """Empty bodies, bodies holding 0x00 and blocks running past the end raise ValueError."""
    with pytest.raises(ValueError):
        cobs_decode(bad)


# -- fuzz -------------------------------------------------------------------------------


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=FRAME_BYTES_MAX + 8))
def test_random_bytes_never_raise(data: bytes) -> None:
    """Arbitrary bytes decode to a Frame or a Drop, never an exception (2000 examples)."""
    assert isinstance(decode_frame(data), Frame | Drop)


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=1, max_size=600))
def test_random_payload_with_valid_crc_never_raises(payload: bytes) -> None:
    """Random msgpack bytes behind a valid COBS+CRC give a Frame or a Drop (2000 examples)."""
    result = decode_frame(seal_payload(payload)[:-1])
    assert isinstance(result, Frame | Drop)
    assert not isinstance(result, Drop) or result.reason != DROP_CRC


msgpack_objects = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(),
        st.text(max_size=80),
        st.binary(max_size=80),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=8),
        st.dictionaries(st.text(max_size=4), inner, max_size=2),
    ),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None)
@given(msgpack_objects)
def test_random_msgpack_objects_never_raise(obj: object) -> None:
    """Any well-formed msgpack object behind a valid CRC gives a Frame or a Drop (1000 examples)."""
    assert isinstance(decode_frame(sealed(obj)), Frame | Drop)


@settings(max_examples=40, deadline=None)
@given(small_frames)
def test_every_single_bit_flip_is_dropped(frame: Frame) -> None:
    """Every 1-bit error in a valid body gives a Drop, never a Frame (40 frames, all bits)."""
    good = body(frame)
    for i in range(len(good)):
        for bit in range(8):
            damaged = good[:i] + bytes((good[i] ^ (1 << bit),)) + good[i + 1 :]
            assert isinstance(decode_frame(damaged), Drop)


@pytest.mark.parametrize("frame", [GOLDEN_OM, GOLDEN_SM])
def test_every_single_bit_flip_of_golden_frames_is_dropped(frame: Frame) -> None:
    """Every 1-bit error in the golden frames is dropped (deterministic, exhaustive)."""
    good = body(frame)
    for i in range(len(good)):
        for bit in range(8):
            damaged = good[:i] + bytes((good[i] ^ (1 << bit),)) + good[i + 1 :]
            assert isinstance(decode_frame(damaged), Drop)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["set", "insert", "delete"]), st.integers(0, 10**6), st.integers(0, 255)
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames, mutations)
def test_mutated_frames_never_raise(frame: Frame, edits: list[tuple[str, int, int]]) -> None:
    """Random byte sets, inserts and deletes in valid bodies never raise (1000 examples)."""
    data = bytearray(body(frame))
    for op, where, byte in edits:
        i = where % (len(data) + 1)
        if op == "insert":
            data.insert(i, byte)
        elif data and op == "set":
            data[i % len(data)] = byte
        elif data:
            del data[i % len(data)]
    assert isinstance(decode_frame(bytes(data)), Frame | Drop)


# -- rejections ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (header(version=2), DROP_VERSION),
        (header(version=0), DROP_VERSION),
        ([2, "a different layout"], DROP_VERSION),
        (header(version=True), DROP_SCHEMA),
        ({}, DROP_SCHEMA),
        ({"version": 1}, DROP_MSGPACK),
        ([], DROP_SCHEMA),
        (header()[:6], DROP_SCHEMA),
        ([*header(), 0], DROP_SCHEMA),
        (header(cluster=b"voter"), DROP_SCHEMA),
        (header(cluster="x" * (CLUSTER_MAX + 1)), DROP_SCHEMA),
        (header(src=True), DROP_SCHEMA),
        (header(dst=False), DROP_SCHEMA),
        (header(src=NODES_MAX), DROP_SCHEMA),
        (header(dst=-1), DROP_SCHEMA),
        (header(src=1.0), DROP_SCHEMA),
        (header(tick=-1), DROP_SCHEMA),
        (header(tick=2**63), DROP_SCHEMA),
        (header(round=0), DROP_SCHEMA),
        (header(round=ROUND_MAX + 1), DROP_SCHEMA),
        (header(entries=None), DROP_SCHEMA),
        (header(entries=[[[0, 1]]]), DROP_SCHEMA),
        (header(entries=[[[0, 1], None, [SIG, SIG], 0]]), DROP_SCHEMA),
        (header(entries=[[[0, 1], None]] * (ENTRIES_MAX + 1)), DROP_MSGPACK),
        (raw_entry([], None), DROP_SCHEMA),
        (raw_entry(list(range(M_MAX + 2)), None), DROP_SCHEMA),
        (raw_entry([0, NODES_MAX], None), DROP_SCHEMA),
        (raw_entry([0, -1], None), DROP_SCHEMA),
        (raw_entry([0, True], None), DROP_SCHEMA),
        (raw_entry(0, None), DROP_SCHEMA),
        (raw_entry([0, 1], 5), DROP_SCHEMA),
        (raw_entry([0, 1], True), DROP_SCHEMA),
        (raw_entry([0, 1], b"attack"), DROP_SCHEMA),
        (raw_entry([0, 1], "x" * (LABEL_MAX + 1)), DROP_SCHEMA),
        (raw_entry([0, 1], []), DROP_SCHEMA),
        (raw_entry([0, 1], [1.0] * (CHANNELS_MAX + 1)), DROP_SCHEMA),
        (raw_entry([0, 1], [1.0, 2]), DROP_SCHEMA),
        (raw_entry([0, 1], [1.0, False]), DROP_SCHEMA),
        (raw_entry([0, 1], [1.0, "x"]), DROP_SCHEMA),
        (raw_entry([0, 1], [[1.0]]), DROP_SCHEMA),
        (raw_entry([0, 1], None, []), DROP_SCHEMA),
        (raw_entry([0, 1], None, [SIG]), DROP_SCHEMA),
        (raw_entry([0, 1], None, [SIG, SIG[:63]]), DROP_SCHEMA),
        (raw_entry([0, 1], None, [SIG, SIG + b"!"]), DROP_MSGPACK),
        (raw_entry([0, 1], None, [SIG, "x" * 64]), DROP_SCHEMA),
        (raw_entry([0, 1], None, None), DROP_SCHEMA),
    ],
)
def test_schema_rejections(raw: object, reason: str) -> None:
    """Well-framed payloads that break the schema are dropped with the right reason."""
    result = decode_frame(sealed(raw))
    assert isinstance(result, Drop)
    assert reason == result.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DROP_COBS),
        (b"\x02\x00", DROP_COBS),
        (b"\x09\x01", DROP_COBS),
        (cobs_encode(b"\x91\xc0"), DROP_CRC),  # shorter than payload + CRC
        (cobs_encode(b"\x91\xc0\x00\x00\x00\x00"), DROP_CRC),
        (cobs_encode(cobs_decode(body(GOLDEN_OM))[:-1]), DROP_CRC),  # truncated
        (seal_payload(b"\xc1")[:-1], DROP_MSGPACK),  # 0xc1 is never used in msgpack
        (seal_payload(b"\x92\x01")[:-1], DROP_MSGPACK),  # array cut short
        (seal_payload(msgpack.packb([1]) + b"\x00")[:-1], DROP_MSGPACK),  # trailing bytes
        (seal_payload(b"\x91" * 2000 + b"\xc0")[:-1], DROP_MSGPACK),  # nested too deep
        (seal_payload(b"\xd4\x01\x00")[:-1], DROP_MSGPACK),  # ext type
        (seal_payload(b"\xd6\xff\x00\x00\x00\x00")[:-1], DROP_MSGPACK),  # timestamp ext
        (seal_payload(b"\xa2\xff\xfe")[:-1], DROP_MSGPACK),  # invalid UTF-8
        (seal_payload(b"\xdd\xff\xff\xff\xff")[:-1], DROP_MSGPACK),  # 4 G-element array
        (b"\x01" * (FRAME_BYTES_MAX + 1), DROP_TOO_LONG),
    ],
)
def test_framing_rejections(data: bytes, reason: str) -> None:
    """Bodies broken below the schema (COBS, CRC, msgpack, length) drop with the right reason."""
    result = decode_frame(data)
    assert isinstance(result, Drop)
    assert reason == result.reason


def test_decode_accepts_read_buffers() -> None:
    """A bytearray or memoryview body (a read buffer) decodes like bytes."""
    good = body(GOLDEN_OM)
    assert [GOLDEN_OM, GOLDEN_OM] == [decode_frame(bytearray(good)), decode_frame(memoryview(good))]


def test_crc_is_crc32c_big_endian() -> None:
    """The last four decoded bytes are CRC-32C of the msgpack bytes, big-endian."""
    raw = cobs_decode(body(GOLDEN_OM))
    assert crc32c.crc32c(raw[:-4]).to_bytes(4, "big") == raw[-4:]


def test_drop_reasons_are_distinct() -> None:
    """Every drop reason constant is listed once in ALL_DROP_REASONS."""
    reasons = {
        DROP_COBS,
        DROP_TOO_LONG,
        DROP_CRC,
        DROP_MSGPACK,
        DROP_SCHEMA,
        DROP_VERSION,
        DROP_CLUSTER,
        DROP_LINK,
        DROP_STALE,
    }
    assert sorted(reasons) == sorted(ALL_DROP_REASONS)


def test_drop_detail_is_bounded() -> None:
    """A Drop's detail stays short whatever the peer sent (it goes to logs)."""
    result = decode_frame(sealed(raw_entry([0, 1], "é" * 64 + "x" * 100)))
    assert isinstance(result, Drop)
    assert len(result.detail) <= 120


# -- encode refuses our own bugs ---------------------------------------------------------

OK = Entry((0, 1), (1.0,))


@pytest.mark.parametrize(
    "frame",
    [
        Frame(2, "c", 1, 2, 0, 2, ()),
        Frame(True, "c", 1, 2, 0, 2, ()),
        Frame(1, "x" * (CLUSTER_MAX + 1), 1, 2, 0, 2, ()),
        Frame(1, b"c", 1, 2, 0, 2, ()),  # type: ignore[arg-type]
        Frame(1, "c", NODES_MAX, 2, 0, 2, ()),
        Frame(1, "c", True, 2, 0, 2, ()),
        Frame(1, "c", 1, -1, 0, 2, ()),
        Frame(1, "c", 1, 2, -1, 2, ()),
        Frame(1, "c", 1, 2, TICK_MAX + 1, 2, ()),
        Frame(1, "c", 1, 2, 0, 0, ()),
        Frame(1, "c", 1, 2, 0, ROUND_MAX + 1, ()),
        Frame(1, "c", 1, 2, 0, 2, [OK]),  # type: ignore[arg-type]
        Frame(1, "c", 1, 2, 0, 2, (OK,) * (ENTRIES_MAX + 1)),
        Frame(1, "c", 1, 2, 0, 2, (((0, 1), 1.0),)),  # type: ignore[arg-type]
        Frame(1, "c", 1, 2, 0, 2, (Entry((), None),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry(tuple(range(M_MAX + 2)), None),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry([0, 1], None),)),  # type: ignore[arg-type]
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, NODES_MAX), None),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), 5),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), "x" * (LABEL_MAX + 1)),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), "\ud800"),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), ()),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), (1.0,) * (CHANNELS_MAX + 1)),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), (1.0, 2)),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), (1.0, True)),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), None, (SIG,)),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), None, (SIG, SIG[:63])),)),
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), None, (SIG, "x" * 64)),)),  # type: ignore[arg-type]
        Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), (1.5,) * CHANNELS_MAX),) * 20),  # too big
    ],
)
def test_encode_refuses_frames_beyond_limits(frame: Frame) -> None:
    """Encoding a frame that breaks a limit raises ValueError (our bug, not a peer's)."""
    with pytest.raises(ValueError):
        encode_frame(frame)


def test_encoded_size_reports_oversize_without_raising() -> None:
    """encoded_size measures a too-big frame so a caller can tell it does not fit."""
    frame = Frame(1, "c", 1, 2, 0, 2, (Entry((0, 1), (1.5,) * CHANNELS_MAX),) * 20)
    assert encoded_size(frame) > FRAME_BYTES_MAX + 1


# -- streaming --------------------------------------------------------------------------

THREE = [GOLDEN_OM, GOLDEN_SM, Frame(1, "", 5, 6, TICK_MAX, ROUND_MAX, ())]
STREAM = b"".join(encode_frame(f) for f in THREE)


def test_splitter_at_every_byte_boundary() -> None:
    """Frames split across two reads at any byte boundary decode the same."""
    for cut in range(len(STREAM) + 1):
        splitter = FrameSplitter()
        assert THREE == splitter.feed(STREAM[:cut]) + splitter.feed(STREAM[cut:])


def test_splitter_byte_by_byte() -> None:
    """Feeding one byte per read yields every frame, each exactly once."""
    splitter = FrameSplitter()
    out = [r for i in range(len(STREAM)) for r in splitter.feed(STREAM[i : i + 1])]
    assert (THREE, 3, 0) == (out, splitter.frames, splitter.drops)


def test_splitter_several_frames_in_one_read() -> None:
    """One read holding several frames (and empty bodies) yields all of them in order."""
    splitter = FrameSplitter()
    assert THREE == splitter.feed(b"\x00\x00" + STREAM.replace(b"\x00", b"\x00\x00") + b"\x00")
    assert (3, 0, {}) == (splitter.frames, splitter.drops, splitter.drop_reasons)


def test_splitter_garbage_between_frames() -> None:
    """Garbage between frames gives one Drop each time and the next good frame still decodes."""
    splitter = FrameSplitter()
    out = splitter.feed(
        b"line noise" + encode_frame(GOLDEN_OM) + b"\x13\x37\x00" + encode_frame(GOLDEN_SM)
    )
    assert [DROP_COBS, DROP_COBS, GOLDEN_SM] == [
        r.reason if isinstance(r, Drop) else r for r in out
    ]
    assert (1, 2, {DROP_COBS: 2}) == (splitter.frames, splitter.drops, splitter.drop_reasons)


def test_splitter_overlong_run_across_reads() -> None:
    """An overlong run over many reads is one too-long Drop; sync resumes at the next 0x00."""
    splitter = FrameSplitter()
    out: list[Frame | Drop] = []
    for _ in range(10):
        out += splitter.feed(b"\x41" * 1000)
        assert splitter.buffered <= FRAME_BYTES_MAX
    out += splitter.feed(b"\x41\x41\x00" + encode_frame(GOLDEN_OM))
    assert [DROP_TOO_LONG, GOLDEN_OM] == [r.reason if isinstance(r, Drop) else r for r in out]
    assert {DROP_TOO_LONG: 1} == splitter.drop_reasons


def test_splitter_overlong_run_in_one_read() -> None:
    """An overlong run ending in the same read gives one too-long Drop, then the next frame."""
    splitter = FrameSplitter()
    out = splitter.feed(b"\x41" * (FRAME_BYTES_MAX + 1) + b"\x00" + encode_frame(GOLDEN_SM))
    assert [DROP_TOO_LONG, GOLDEN_SM] == [r.reason if isinstance(r, Drop) else r for r in out]


def test_splitter_run_of_exactly_the_limit_is_decoded() -> None:
    """A body of exactly FRAME_BYTES_MAX bytes is handed to the decoder, not dropped as too long."""
    splitter = FrameSplitter()
    out = splitter.feed(b"\x41" * (FRAME_BYTES_MAX - 1)) + splitter.feed(b"\x41\x00")
    assert [DROP_COBS] == [r.reason for r in out if isinstance(r, Drop)]


garbage = st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"\x00", b"") + b"\x00")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(frames, st.one_of(st.just(b""), garbage)), max_size=5),
    st.lists(st.integers(1, 500), min_size=1, max_size=40),
)
def test_splitter_random_chunking(items: list[tuple[Frame, bytes]], sizes: list[int]) -> None:
    """Frames with garbage between, read in random chunk sizes, come out in order (100 examples)."""
    stream = b"".join(encode_frame(f) + g for f, g in items)
    splitter = FrameSplitter()
    out: list[Frame | Drop] = []
    pos, k = 0, 0
    while pos < len(stream):
        size = sizes[k % len(sizes)]
        out += splitter.feed(stream[pos : pos + size])
        pos, k = pos + size, k + 1
    assert [f for f, _ in items] == [r for r in out if isinstance(r, Frame)]
    assert sum(1 for _, g in items if len(g) > 1) == splitter.drops


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
    """Per-link checks: wrong cluster, src/dst not this link's, other tick or round."""
    result = check_frame(GOLDEN_OM, **{**LINK, **kwargs})  # type: ignore[arg-type]
    assert reason == (result.reason if result is not None else None)
