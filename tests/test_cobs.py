"""Tests of COBS (voter.core.cobs): published vectors, round trips, impossible bodies, C vs pure."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voter.core import cobs
from voter.core.cobs import (
    C_COBS,
    cobs_decode,
    cobs_encode,
    cobs_size,
    pure_cobs_decode,
    pure_cobs_encode,
)

#: the active functions (C when the `cobs` extra is installed) and the pure reference
CODECS = pytest.mark.parametrize(
    ("encode", "decode"),
    [(cobs_encode, cobs_decode), (pure_cobs_encode, pure_cobs_decode)],
    ids=["active", "pure"],
)

RUN_254 = bytes(range(1, 255))
Codec = Callable[[bytes], bytes]


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
@CODECS
def test_cobs_known_vectors(data: bytes, encoded: bytes, encode: Codec, decode: Codec) -> None:
    """COBS matches the published Cheshire/Baker examples (incl. 254-byte block edges)."""
    assert encoded == encode(data)
    assert data == decode(encoded)


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
@CODECS
def test_cobs_decode_rejects_impossible_bodies(bad: bytes, encode: Codec, decode: Codec) -> None:
    """Empty bodies, bodies holding 0x00 and blocks running past the end raise ValueError."""
    with pytest.raises(ValueError):
        decode(bad)


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


def _decoded(decode: Codec, data: bytes) -> bytes | str:
    """The decoded bytes, or the ValueError's message (a Drop carries it into the log)."""
    try:
        return decode(data)
    except ValueError as exc:
        return str(exc)


#: bodies a decoder meets: real encodings, encodings with a byte changed, random bytes
decoder_inputs = st.one_of(
    cobs_inputs.map(pure_cobs_encode),
    st.tuples(cobs_inputs.map(pure_cobs_encode), st.integers(0, 2000), st.integers(0, 255)).map(
        lambda t: t[0][: t[1] % len(t[0])] + bytes((t[2],)) + t[0][t[1] % len(t[0]) + 1 :]
    ),
    st.binary(max_size=600),
)


@pytest.mark.skipif(not C_COBS, reason="the optional `cobs` package is not installed")
@settings(max_examples=2000, deadline=None)
@given(cobs_inputs, decoder_inputs)
def test_c_cobs_matches_the_pure_one(data: bytes, body: bytes) -> None:
    """The C COBS encodes and decodes exactly as the pure one, same error messages (2000)."""
    assert pure_cobs_encode(data) == cobs.cobs_encode(data)
    assert _decoded(pure_cobs_decode, body) == _decoded(cobs.cobs_decode, body)
