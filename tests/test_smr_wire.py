"""The command log's wire codec: every PBFT and Paxos message round-trips, and no bytes make it
raise."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from voter.core import paxos
from voter.core.drops import DETAIL_MAX, DROP_CRC, DROP_SCHEMA, Drop
from voter.core.frame import Frame, encode_frame
from voter.core.pbft import (
    AskView,
    Checkpoint,
    Commit,
    Fetch,
    NewView,
    Prepare,
    Prepared,
    PrePrepare,
    Segment,
    ViewChange,
)
from voter.core.seal import seal_payload
from voter.core.smr import Reply, Request
from voter.core.smr_wire import (
    SMR_WIRE_VERSION,
    Fragment,
    LinkSplitter,
    SmrFrame,
    decode_link_body,
    decode_message,
    encode_message,
    seal_batch,
    seal_fragment,
)
from voter.core.splitter import FRAME_BYTES_MAX

CLUSTER = "wire-test"
ints = st.integers(0, 2**63 - 1)
small = st.integers(0, 1000)
node = st.integers(0, 15)
sig = st.one_of(st.just(b""), st.binary(min_size=64, max_size=64))
dig = st.binary(min_size=32, max_size=32)
requests = st.builds(Request, small, ints, st.text(max_size=40), sig)
opt_req = st.one_of(st.none(), requests)
pre_prepares = st.builds(PrePrepare, small, small, dig, opt_req, sig)
prepares = st.builds(Prepare, small, small, dig, node, sig)
checkpoints = st.builds(Checkpoint, small, dig, node, sig)
certs = st.builds(Prepared, pre_prepares, st.tuples(prepares, prepares))
view_changes = st.builds(
    ViewChange,
    small,
    small,
    st.lists(checkpoints, max_size=3).map(tuple),
    st.lists(certs, max_size=2).map(tuple),
    node,
    sig,
)
entries = st.lists(st.builds(paxos.Entry, small, small, opt_req), max_size=4).map(tuple)
messages = st.one_of(
    requests,
    st.builds(Reply, small, small, ints, small, st.text(max_size=16), node, sig),
    pre_prepares,
    prepares,
    st.builds(Commit, small, small, dig, node, sig),
    checkpoints,
    view_changes,
    st.builds(
        NewView,
        small,
        st.lists(view_changes, max_size=3).map(tuple),
        st.lists(pre_prepares, max_size=3).map(tuple),
        sig,
    ),
    st.builds(Fetch, small, small, node),
    st.builds(Segment, small, st.lists(st.tuples(small, opt_req), max_size=4).map(tuple), node),
    st.builds(AskView, small, node),
    # the crash-only log's (unsigned)
    st.builds(paxos.Accept, small, small, opt_req),
    st.builds(paxos.Accepted, small, small, node),
    st.builds(paxos.Decide, small, small),
    st.builds(paxos.DoViewChange, small, entries, node, small),
    st.builds(paxos.StartView, small, entries, small),
    st.builds(paxos.Recover, node, small, small),
    st.builds(paxos.Recovery, small, small, node, small, small, entries),
    st.builds(paxos.AskLog, node, small),
    st.builds(paxos.LogChunk, node, small, entries),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_every_message_round_trips(msg: object) -> None:
    """A message decodes from its bytes to an equal message."""
    assert msg == decode_message(encode_message(msg))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=5), node, node)
def test_batch_frame_round_trips(msgs: list[object], src: int, dst: int) -> None:
    """A batch frame off the wire holds the messages it was sealed with, in order; a batch
    over the frame limit is refused when sealed (the port batches within it, fragments
    what is bigger), never sent oversized. (CI drew five new-views of 4,097 bytes.)"""
    encoded = [encode_message(m) for m in msgs]
    try:
        wire = seal_batch(src, dst, encoded, CLUSTER)
    except ValueError as e:
        assert sum(map(len, encoded)) > FRAME_BYTES_MAX - 64, e  # only a batch near the limit
        assert "limit" in str(e)
        return
    assert len(wire) - 1 <= FRAME_BYTES_MAX
    items = LinkSplitter(CLUSTER).feed(wire)
    assert [SmrFrame(src, dst, tuple(msgs))] == items


def test_agreement_frames_still_decode_on_a_command_log_link() -> None:
    """The same link splitter hands an agreement frame to the frame decoder unchanged."""
    frame = Frame(3, CLUSTER, 1, 2, 7, 1, ())
    assert [frame] == LinkSplitter(CLUSTER).feed(encode_frame(frame))


def test_another_cluster_is_a_crc_drop() -> None:
    """A command-log frame of another cluster fails its CRC like noise."""
    wire = seal_batch(0, 1, [encode_message(AskView(1, 0))], "other")
    item = decode_link_body(wire[:-1], CLUSTER)
    assert isinstance(item, Drop) and DROP_CRC == item.reason


@pytest.mark.parametrize(
    "raw",
    [
        [99, 1, 2],  # unknown kind
        [10, 1],  # AskView missing a field
        [10, True, 1],  # bool is not an int
        [10, -1, 1],  # negative
        [3, 0, 1, b"x" * 65, 1, b""],  # bytes over the limit
        [0, 1, 2, "op", "not bytes"],
        [2, 0, 1, b"", [1, 2, "op"], b""],  # a nested request with a field missing
        {"a": 1},
        "text",
    ],
)
def test_schema_breaks_are_counted_drops(raw: object) -> None:
    """A well-sealed frame whose message breaks the schema is a `schema` drop, not an error."""
    body = msgpack.packb([raw], use_bin_type=True)
    payload = bytes((SMR_WIRE_VERSION << 4, 0x01)) + body
    item = decode_link_body(seal_payload(payload, CLUSTER)[:-1], CLUSTER)
    assert isinstance(item, Drop) and DROP_SCHEMA == item.reason


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_sealed_payload_decodes_or_drops(tail: bytes) -> None:
    """Any bytes behind a command-log header and a valid CRC: a frame or a bounded Drop."""
    for kind in (0, 1, 2):
        payload = bytes((SMR_WIRE_VERSION << 4 | kind, 0x12)) + tail
        item = decode_link_body(seal_payload(payload, CLUSTER)[:-1], CLUSTER)
        assert isinstance(item, SmrFrame | Fragment | Drop)
        if isinstance(item, Drop):
            assert len(item.detail) <= DETAIL_MAX


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=3), st.data())
def test_damaged_frames_never_raise(msgs: list[object], data: st.DataObject) -> None:
    """Flipped, cut or inserted bytes in a real frame: the splitter returns items, never raises."""
    encoded = [encode_message(m) for m in msgs]
    assume(sum(map(len, encoded)) <= FRAME_BYTES_MAX - 64)  # a frame the port could send
    wire = bytearray(seal_batch(0, 1, encoded, CLUSTER))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            wire[at] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del wire[at]
        else:
            wire.insert(at, data.draw(st.integers(0, 255)))
    items = LinkSplitter(CLUSTER).feed(bytes(wire) + b"\x00")
    assert all(isinstance(i, SmrFrame | Fragment | Frame | Drop) for i in items)


def test_fragment_round_trips() -> None:
    """A fragment frame carries its number, index, last flag and chunk."""
    wire = seal_fragment(2, 3, 300, 5, True, b"chunk", CLUSTER)
    assert [Fragment(2, 3, 300, 5, True, b"chunk")] == LinkSplitter(CLUSTER).feed(wire)


def test_encoder_refuses_what_breaks_a_limit() -> None:
    """Our own oversized or ill-typed message is a ValueError (our bug), not a frame."""
    with pytest.raises(ValueError):
        encode_message(Request(0, 1, "x" * 257))
    with pytest.raises(ValueError):
        encode_message(AskView(-1, 0))
    with pytest.raises(ValueError):
        encode_message("not a message")
