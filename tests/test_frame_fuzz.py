"""Fuzz tests of the frame decoder: what it returns for bytes no encoder wrote.

Each test asserts more than "no exception": a Drop carries a reason from the
decoder's own set (never a per-link reason) and a bounded detail, the reason is
the one the damage calls for where the input says which (length, 0x00, version,
a flipped bit), and a Frame that comes out is of the decoder's cluster and
re-encodes to bytes that decode to the same frame (one meaning per payload).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.frames import (
    GOLDEN_OM,
    GOLDEN_POS,
    GOLDEN_SM,
    GOLDEN_SYNC,
    SIG,
    body,
    decode,
    frames,
    node_ids,
    payload,
    payload_of,
    reading,
    sealed,
    small_frames,
    uvarint,
)
from voter.core.drops import (
    DETAIL_MAX,
    DROP_COBS,
    DROP_CRC,
    DROP_SCHEMA,
    DROP_TOO_LONG,
    DROP_VERSION,
    Drop,
)
from voter.core.frame import CHANNELS_MAX, ROUND_MAX, WIRE_VERSION, Frame, encode_frame
from voter.core.protocol import M_MAX, NODES_MAX
from voter.core.splitter import FRAME_BYTES_MAX

#: Every reason `decode_frame` can give; cluster, link and stale are `check_frame`'s.
DECODE_REASONS = {DROP_COBS, DROP_TOO_LONG, DROP_CRC, DROP_SCHEMA, DROP_VERSION}
#: Behind a valid COBS + CRC only the layout and the version are left to fail.
PARSER_REASONS = {DROP_SCHEMA, DROP_VERSION}


def assert_sound(result: Frame | Drop, cluster: str, reasons: set[str]) -> None:
    """A Drop with one of `reasons` and a bounded detail, or a frame that re-encodes to itself.

    Frames are compared by repr: a NaN channel decodes (the value domain rejects
    it later, per entry) and NaN != NaN would fail an equal pair.
    """
    if isinstance(result, Drop):
        assert result.reason in reasons
        assert len(result.detail) <= DETAIL_MAX
        return
    assert type(result) is Frame
    assert (WIRE_VERSION, cluster) == (result.version, result.cluster)
    # encode_frame raising here would mean the decoder admits what the encoder refuses.
    assert repr(result) == repr(decode(body(result), cluster))


# -- fuzz -------------------------------------------------------------------------------


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=FRAME_BYTES_MAX + 8))
def test_random_bytes_are_dropped_for_the_reason_they_show(data: bytes) -> None:
    """Arbitrary bytes: too long, or holding 0x00, is said so; else a sound result (2000)."""
    result = decode(data)
    assert_sound(result, "voter", DECODE_REASONS)
    if len(data) > FRAME_BYTES_MAX:
        assert DROP_TOO_LONG == getattr(result, "reason", None)
    elif not data or 0 in data:
        assert DROP_COBS == getattr(result, "reason", None)


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=1, max_size=600))
def test_random_payload_with_valid_crc_reaches_the_parser(raw: bytes) -> None:
    """Random payloads behind a valid COBS+CRC: schema/version drops or sound frames (2000)."""
    result = decode(sealed(raw))
    assert_sound(result, "voter", PARSER_REASONS)
    if raw[0] >> 4 != WIRE_VERSION:
        assert DROP_VERSION == getattr(result, "reason", None)


#: Pieces a payload is made of: tags, heads, varints, floats, signatures, node ids.
layout_tokens = st.one_of(
    st.sampled_from(
        [b"\x00", b"\x01", b"\x02", b"\x08", b"\x09", b"\x0f", b"\x10", b"\x80", b"\xff"]
    ),
    st.integers(0, 0xFF).map(lambda b: bytes((b,))),
    st.integers(0, 2**70).map(uvarint),
    st.lists(st.floats(), min_size=1, max_size=CHANNELS_MAX).map(lambda xs: reading(*xs)),
    st.integers(1, CHANNELS_MAX).map(lambda k: bytes((0x80 | k - 1,))),
    st.text(max_size=80).map(lambda s: b"\x02" + uvarint(len(s.encode())) + s.encode()),
    st.just(SIG),
    st.lists(st.integers(0, NODES_MAX + 1), min_size=1, max_size=M_MAX + 2).map(
        lambda p: bytes((len(p) & 0x0F,)) + bytes(p)
    ),
)


#: Mostly past the version and round checks, sometimes not.
VERSIONS = st.integers(0, 99).map(lambda i: WIRE_VERSION if i < 80 else (0, 1, 3, 15)[i % 4])
ROUNDS = st.integers(0, 79).map(lambda i: 1 + i % ROUND_MAX if i < 70 else 0)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    VERSIONS,
    st.booleans(),
    ROUNDS,
    node_ids,
    node_ids,
    st.integers(0, 2**64),
    st.lists(layout_tokens, max_size=40),
)
def test_random_layouts_with_valid_crc_are_parsed_soundly(
    version: int,
    positional: bool,
    round_no: int,
    src: int,
    dst: int,
    tick: int,
    tokens: list[bytes],
) -> None:
    """Headers and bodies assembled from layout pieces behind a valid CRC: sound results (2000).

    This reaches deep into the parser (valid headers, plausible tags and lengths),
    where uniform random bytes rarely get. Another version is a version drop
    before the layout is read; round 0 of this version a schema drop.
    """
    raw = payload(
        b"".join(tokens),
        round_no=round_no,
        src=src,
        dst=dst,
        tick=tick,
        positional=positional,
        version=version,
    )
    result = decode(sealed(raw))
    # Whatever decodes re-encodes to the same frame: the grammar has one meaning per byte
    # (the NaN case was found by CI's Hypothesis run).
    assert_sound(result, "voter", PARSER_REASONS)
    if version != WIRE_VERSION:
        assert DROP_VERSION == getattr(result, "reason", None)
    elif round_no == 0:
        assert DROP_SCHEMA == getattr(result, "reason", None)


@settings(max_examples=40, deadline=None)
@given(small_frames)
def test_every_single_bit_flip_is_dropped(frame: Frame) -> None:
    """Every 1-bit error in a valid body is a COBS or CRC drop, never a Frame (40, all bits)."""
    good = body(frame)
    for i in range(len(good)):
        for bit in range(8):
            damaged = good[:i] + bytes((good[i] ^ (1 << bit),)) + good[i + 1 :]
            result = decode(damaged, frame.cluster)
            assert isinstance(result, Drop)
            assert result.reason in {DROP_COBS, DROP_CRC}


@pytest.mark.parametrize("frame", [GOLDEN_OM, GOLDEN_POS, GOLDEN_SM])
def test_every_single_bit_flip_of_golden_frames_is_dropped(frame: Frame) -> None:
    """Every 1-bit error in the golden frames is a COBS or CRC drop (deterministic, exhaustive)."""
    good = body(frame)
    for i in range(len(good)):
        for bit in range(8):
            damaged = good[:i] + bytes((good[i] ^ (1 << bit),)) + good[i + 1 :]
            result = decode(damaged)
            assert isinstance(result, Drop)
            assert result.reason in {DROP_COBS, DROP_CRC}


@pytest.mark.parametrize("frame", [GOLDEN_OM, GOLDEN_POS, GOLDEN_SM, GOLDEN_SYNC])
def test_every_single_byte_change_of_golden_frames_is_a_drop_or_its_own_frame(
    frame: Frame,
) -> None:
    """Each byte of a golden body set to each other value: a known Drop, or a frame that
    re-encodes to exactly the changed bytes (exhaustive; with CRC-32C it is always a Drop)."""
    good = body(frame)
    for i in range(len(good)):
        for byte in range(256):
            if byte == good[i]:
                continue
            changed = good[:i] + bytes((byte,)) + good[i + 1 :]
            result = decode(changed)
            assert_sound(result, "voter", DECODE_REASONS)
            if isinstance(result, Frame):
                assert changed == encode_frame(result)[:-1]


mutations = st.lists(
    st.tuples(
        st.sampled_from(["set", "insert", "delete"]), st.integers(0, 10**6), st.integers(0, 255)
    ),
    min_size=1,
    max_size=8,
)


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, where, byte in edits:
        i = where % (len(out) + 1)
        if op == "insert":
            out.insert(i, byte)
        elif out and op == "set":
            out[i % len(out)] = byte
        elif out:
            del out[i % len(out)]
    return bytes(out)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames, mutations)
def test_mutated_frames_are_dropped_or_exact(
    frame: Frame, edits: list[tuple[str, int, int]]
) -> None:
    """Byte sets, inserts and deletes in valid bodies: a known Drop, or a frame whose encoding
    is exactly the mutated bytes (the original, when the edits cancel out) (1000 examples)."""
    good = body(frame)
    mutated = mutate(good, edits)
    result = decode(mutated, frame.cluster)
    assert_sound(result, frame.cluster, DECODE_REASONS)
    if isinstance(result, Frame):
        assert mutated == encode_frame(result)[:-1]
    if mutated == good:
        assert repr(frame) == repr(result)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames, mutations)
def test_mutated_payloads_behind_a_valid_crc_are_parsed_soundly(
    frame: Frame, edits: list[tuple[str, int, int]]
) -> None:
    """Valid payloads mutated and then re-sealed reach the parser: a schema or version drop
    (too-long if the edits outgrew the limit), or a sound frame (1000 examples)."""
    raw = mutate(payload_of(frame), edits)
    if raw:
        result = decode(sealed(raw, frame.cluster), frame.cluster)
        assert_sound(result, frame.cluster, PARSER_REASONS | {DROP_TOO_LONG})
