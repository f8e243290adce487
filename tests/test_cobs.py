"""Tests of COBS (voter.core.cobs): published vectors, round trips, impossible bodies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voter.core.cobs import cobs_decode, cobs_encode, cobs_size

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


@settings(max_examples=500, deadline=None)
@given(st.one_of(cobs_inputs, st.binary(max_size=1200)))
def test_cobs_size_is_the_encoded_length(data: bytes) -> None:
    """cobs_size(d) == len(cobs_encode(d)), long runs and blocks ending the data included."""
    assert len(cobs_encode(data)) == cobs_size(data)


@pytest.mark.parametrize("n", [253, 254, 255, 508, 509])
def test_cobs_size_at_block_edges(n: int) -> None:
    """A run of exactly 254·k non-zero bytes, alone, at the end or before a zero."""
    run = b"\x01" * n
    for data in (run, b"\x00" + run, run + b"\x00"):
        assert len(cobs_encode(data)) == cobs_size(data)
