"""Tests of the 0x00 stream splitter (voter.core.splitter, FrameSplitter): cuts, noise, limits."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.frames import GOLDEN_OM, GOLDEN_SM, entry_lists, frames_of, slotted_frames
from voter.core.drops import DROP_COBS, DROP_CRC, DROP_TOO_LONG, Drop
from voter.core.frame import ROUND_MAX, TICK_MAX, WIRE_VERSION, Frame, FrameSplitter, encode_frame
from voter.core.seal import CLUSTER_MAX
from voter.core.splitter import FRAME_BYTES_MAX, Splitter


@pytest.mark.parametrize("cluster", ["x" * (CLUSTER_MAX + 1), "\ud800"])
def test_splitter_refuses_a_cluster_no_frame_can_carry(cluster: str) -> None:
    """A splitter for an impossible cluster is our caller's bug: ValueError at once."""
    with pytest.raises(ValueError):
        FrameSplitter(cluster)


# -- streaming --------------------------------------------------------------------------

THREE = [GOLDEN_OM, GOLDEN_SM, Frame(WIRE_VERSION, "voter", 5, 6, TICK_MAX, ROUND_MAX, ())]
STREAM = b"".join(encode_frame(f) for f in THREE)


def test_splitter_at_every_byte_boundary() -> None:
    """Frames split across two reads at any byte boundary decode the same."""
    for cut in range(len(STREAM) + 1):
        splitter = FrameSplitter("voter")
        assert THREE == splitter.feed(STREAM[:cut]) + splitter.feed(STREAM[cut:])


def test_splitter_byte_by_byte() -> None:
    """Feeding one byte per read yields every frame, each exactly once."""
    splitter = FrameSplitter("voter")
    out = [r for i in range(len(STREAM)) for r in splitter.feed(STREAM[i : i + 1])]
    assert (THREE, 3, 0) == (out, splitter.frames, splitter.drops)


@given(st.binary(min_size=1, max_size=FRAME_BYTES_MAX + 20).map(lambda b: b.replace(b"\x00", b"")))
def test_a_read_of_one_whole_body_decodes_as_through_the_loop(body: bytes) -> None:
    """A read of exactly one body and its delimiter (the common read, taken without the
    loop) gives what the same body gives behind an empty body: frame or the same drop."""
    fast, slow = FrameSplitter("voter"), FrameSplitter("voter")
    got = fast.feed(body + b"\x00")
    assert slow.feed(b"\x00" + body + b"\x00") == got
    assert (slow.frames, slow.drops, slow.drop_reasons) == (
        fast.frames,
        fast.drops,
        fast.drop_reasons,
    )
    assert 0 == fast.buffered


def test_a_read_of_one_whole_frame_decodes_it() -> None:
    """Each golden frame read alone, delimiter included, is decoded once and counted."""
    for f in THREE:
        splitter = FrameSplitter(f.cluster)
        assert [f] == splitter.feed(encode_frame(f))
        assert (1, 0) == (splitter.frames, splitter.drops)


def test_splitter_several_frames_in_one_read() -> None:
    """One read holding several frames (and empty bodies) yields all of them in order."""
    splitter = FrameSplitter("voter")
    assert THREE == splitter.feed(b"\x00\x00" + STREAM.replace(b"\x00", b"\x00\x00") + b"\x00")
    assert (3, 0, {}) == (splitter.frames, splitter.drops, splitter.drop_reasons)


def test_splitter_counts_another_clusters_frames_as_crc_drops() -> None:
    """A frame of cluster "voter" on a link of cluster "other" is a counted crc drop."""
    splitter = FrameSplitter("other")
    assert [DROP_CRC] == [
        r.reason
        for r in splitter.feed(STREAM[: len(encode_frame(GOLDEN_OM))])
        if isinstance(r, Drop)
    ]
    assert {DROP_CRC: 1} == splitter.drop_reasons


def test_splitter_garbage_between_frames() -> None:
    """Garbage between frames gives one Drop each time and the next good frame still decodes."""
    splitter = FrameSplitter("voter")
    out = splitter.feed(
        b"line noise" + encode_frame(GOLDEN_OM) + b"\x13\x37\x00" + encode_frame(GOLDEN_SM)
    )
    assert [DROP_COBS, DROP_COBS, GOLDEN_SM] == [
        r.reason if isinstance(r, Drop) else r for r in out
    ]
    assert (1, 2, {DROP_COBS: 2}) == (splitter.frames, splitter.drops, splitter.drop_reasons)


def test_splitter_overlong_run_across_reads() -> None:
    """An overlong run over many reads is one too-long Drop; sync resumes at the next 0x00."""
    splitter = FrameSplitter("voter")
    out: list[Frame | Drop] = []
    for _ in range(10):
        out += splitter.feed(b"\x41" * 1000)
        assert splitter.buffered <= FRAME_BYTES_MAX
    out += splitter.feed(b"\x41\x41\x00" + encode_frame(GOLDEN_OM))
    assert [DROP_TOO_LONG, GOLDEN_OM] == [r.reason if isinstance(r, Drop) else r for r in out]
    assert {DROP_TOO_LONG: 1} == splitter.drop_reasons


def test_splitter_overlong_run_in_one_read() -> None:
    """An overlong run ending in the same read gives one too-long Drop, then the next frame."""
    splitter = FrameSplitter("voter")
    out = splitter.feed(b"\x41" * (FRAME_BYTES_MAX + 1) + b"\x00" + encode_frame(GOLDEN_SM))
    assert [DROP_TOO_LONG, GOLDEN_SM] == [r.reason if isinstance(r, Drop) else r for r in out]


def test_splitter_run_of_exactly_the_limit_is_decoded() -> None:
    """A body of exactly FRAME_BYTES_MAX bytes is handed to the decoder, not dropped as too long."""
    splitter = FrameSplitter("voter")
    out = splitter.feed(b"\x41" * (FRAME_BYTES_MAX - 1)) + splitter.feed(b"\x41\x00")
    assert [DROP_COBS] == [r.reason for r in out if isinstance(r, Drop)]


garbage = st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"\x00", b"") + b"\x00")
voter_frames = st.one_of(frames_of(entry_lists, st.just("voter")), slotted_frames(st.just("voter")))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(voter_frames, st.one_of(st.just(b""), garbage)), max_size=5),
    st.lists(st.integers(1, 500), min_size=1, max_size=40),
)
def test_splitter_random_chunking(items: list[tuple[Frame, bytes]], sizes: list[int]) -> None:
    """Frames with garbage between, read in random chunk sizes, come out in order (100 examples)."""
    stream = b"".join(encode_frame(f) + g for f, g in items)
    splitter = FrameSplitter("voter")
    out: list[Frame | Drop] = []
    pos, k = 0, 0
    while pos < len(stream):
        size = sizes[k % len(sizes)]
        out += splitter.feed(stream[pos : pos + size])
        pos, k = pos + size, k + 1
    assert [f for f, _ in items] == [r for r in out if isinstance(r, Frame)]
    assert sum(1 for _, g in items if len(g) > 1) == splitter.drops


# -- the generic splitter ------------------------------------------------------------------


def _pieces(body: bytes | bytearray) -> bytes | Drop:
    """A decoder that hands the body back: the splitter alone is under test."""
    return bytes(body)


def model(stream: bytes) -> list[bytes | str]:
    """What the splitter must yield for a stream: each complete non-empty body, or one
    too-long drop for a run over the limit (the unfinished last run too, once it is over)."""
    *done, last = stream.split(b"\x00")
    out: list[bytes | str] = []
    for piece in done:
        if len(piece) > FRAME_BYTES_MAX:
            out.append(DROP_TOO_LONG)
        elif piece:
            out.append(piece)
    if len(last) > FRAME_BYTES_MAX:
        out.append(DROP_TOO_LONG)
    return out


#: Runs around the limit and far beyond it, and short ones, separated by 0x00.
run_lengths = st.lists(
    st.one_of(
        st.integers(0, 30),
        st.integers(FRAME_BYTES_MAX - 2, FRAME_BYTES_MAX + 2),
        st.integers(2 * FRAME_BYTES_MAX, 3 * FRAME_BYTES_MAX),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(run_lengths, st.lists(st.integers(1, 3 * FRAME_BYTES_MAX), min_size=1, max_size=20))
def test_splitter_matches_its_model_and_never_buffers_past_the_limit(
    runs: list[int], sizes: list[int]
) -> None:
    """Any runs in any chunks: the model's bodies and drops, in order, every one counted,
    and never more than FRAME_BYTES_MAX bytes held between reads (200 examples)."""
    stream = b"\x00".join(bytes((1 + i % 255,)) * n for i, n in enumerate(runs))
    splitter: Splitter[bytes] = Splitter(_pieces)
    out: list[bytes | Drop] = []
    pos, k = 0, 0
    while pos < len(stream):
        out += splitter.feed(stream[pos : pos + sizes[k % len(sizes)]])
        assert splitter.buffered <= FRAME_BYTES_MAX
        pos, k = pos + sizes[k % len(sizes)], k + 1
    assert model(stream) == [r.reason if isinstance(r, Drop) else r for r in out]
    drops = sum(isinstance(r, Drop) for r in out)
    assert (len(out) - drops, drops) == (splitter.frames, splitter.drops)
    assert drops == sum(splitter.drop_reasons.values())
