"""The command log's wire codec: PBFT and Paxos messages <-> sealed link frames, bounded; pure.

Command-log messages (PBFT's, or the crash-only Paxos's) ride the same links as
the per-tick agreement frames, sealed the same way (`voter.core.seal`: COBS,
CRC-32C seeded by the cluster, 0x00), so
line noise and another cluster's bytes fail exactly as they do for a frame.
They are told apart by the version nibble of the payload's first byte:
agreement frames carry `voter.core.frame.WIRE_VERSION` (3), command-log frames
`SMR_WIRE_VERSION`. `decode_link_body` routes a body to the right decoder
after the CRC has passed, so nothing a peer sends reaches a parser unchecked.

Layout of one command-log frame (payload, before the seal)::

    payload = version:4 kind:4  src:4 dst:4  body
    kind 0 (batch):    body = msgpack array of 1..BATCH_MAX messages
    kind 1 (fragment): body = msg_no:uvarint index:uvarint last:u8 chunk
                       (the chunks of one message, in order, are its msgpack bytes)

A message is a msgpack array `[kind code, fields...]` with nested messages as
arrays of their fields, checked against a fixed schema (`_SCHEMA`) on decode:
exact types (`bool` is not an int), non-negative integers below 2**63, byte
strings of at most BYTES_MAX, operations of at most OP_MAX characters, tuples of
at most ITEMS_MAX. Msgpack and not a fixed layout as for frames: a PBFT message
is dominated by its 64-byte signatures, so msgpack's type bytes cost a few
percent, and signatures are over `voter.core.smr.signed_bytes`, not over these
bytes, so the encoding need not be canonical (docs/design.md, Command log).

Decoding never raises: every failure is a `Drop` (reason `schema`, `version`,
`crc`, ...), counted by the caller like a bad frame. Encoding raises
ValueError for a message that breaks a limit: then the bug is ours.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import msgpack

from voter.core.drops import DROP_CRC, DROP_SCHEMA, DROP_VERSION, Drop, drop
from voter.core.frame import WIRE_VERSION, Frame, decode_frame
from voter.core.paxos import (
    Accept,
    Accepted,
    AskLog,
    Decide,
    DoViewChange,
    Entry,
    LogChunk,
    Recover,
    Recovery,
    StartView,
)
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
from voter.core.protocol import NODES_MAX
from voter.core.seal import open_body, payload_crc, seal_payload
from voter.core.smr import Reply, Request
from voter.core.splitter import FRAME_BYTES_MAX, Splitter

__all__ = [
    "BATCH_MAX",
    "MESSAGE_BYTES_MAX",
    "SMR_WIRE_VERSION",
    "Fragment",
    "LinkSplitter",
    "SmrFrame",
    "decode_link_body",
    "decode_message",
    "encode_message",
    "seal_batch",
    "seal_fragment",
]

#: the payload's version nibble of a command-log frame (agreement frames: WIRE_VERSION)
SMR_WIRE_VERSION = 9
assert SMR_WIRE_VERSION != WIRE_VERSION and SMR_WIRE_VERSION < 16

#: Limits (TigerBeetle: put a limit on everything).
BATCH_MAX = 64  # messages in one batch frame
MESSAGE_BYTES_MAX = 64 * 1024  # one message's msgpack bytes, reassembled from fragments
BYTES_MAX = 64  # a digest, a state, a signature
OP_MAX = 256  # characters of a command
ITEMS_MAX = 1024  # entries of any tuple (a segment holds at most HISTORY_MAX)
INT_MAX = 2**63 - 1
FRAGMENTS_MAX = MESSAGE_BYTES_MAX // 16  # chunk index bound (chunks are at least 16 bytes)

_BATCH = 0
_FRAGMENT = 1

# A field's schema: "i" int, "b" bytes, "s" str, a message class (nested, no code),
# ("opt", X) X or None, ("tup", X) a tuple of X, ("pair", X, Y) a 2-tuple.
_Spec = Any
_SCHEMA: dict[type, tuple[_Spec, ...]] = {
    Request: ("i", "i", "s", "b"),
    Reply: ("i", "i", "i", "i", "s", "i", "b"),
    PrePrepare: ("i", "i", "b", ("opt", Request), "b"),
    Prepare: ("i", "i", "b", "i", "b"),
    Commit: ("i", "i", "b", "i", "b"),
    Checkpoint: ("i", "b", "i", "b"),
    Prepared: (PrePrepare, ("tup", Prepare)),
    ViewChange: ("i", "i", ("tup", Checkpoint), ("tup", Prepared), "i", "b"),
    NewView: ("i", ("tup", ViewChange), ("tup", PrePrepare), "b"),
    Fetch: ("i", "i", "i"),
    Segment: ("i", ("tup", ("pair", "i", ("opt", Request))), "i"),
    AskView: ("i", "i"),
    # the crash-only log (voter.core.paxos): unsigned
    Entry: ("i", "i", ("opt", Request)),
    Accept: ("i", "i", ("opt", Request)),
    Accepted: ("i", "i", "i"),
    Decide: ("i", "i"),
    DoViewChange: ("i", ("tup", Entry), "i", "i"),
    StartView: ("i", ("tup", Entry), "i"),
    Recover: ("i", "i", "i"),
    Recovery: ("i", "i", "i", "i", "i", ("tup", Entry)),
    AskLog: ("i", "i"),
    LogChunk: ("i", "i", ("tup", Entry)),
}
#: the top-level kinds, by wire code (append only: a code is never reused)
KINDS: tuple[type, ...] = (
    Request,
    Reply,
    PrePrepare,
    Prepare,
    Commit,
    Checkpoint,
    ViewChange,
    NewView,
    Fetch,
    Segment,
    AskView,
    Accept,
    Accepted,
    Decide,
    DoViewChange,
    StartView,
    Recover,
    Recovery,
    AskLog,
    LogChunk,
)
_CODE = {cls: code for code, cls in enumerate(KINDS)}


@dataclass(frozen=True, slots=True)
class SmrFrame:
    """One batch frame: whole messages from `src` to `dst` (decoded, schema-checked)."""

    src: int
    dst: int
    messages: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Fragment:
    """One chunk of a message too large for a batch frame (`voter.core.smr_port` reassembles)."""

    src: int
    dst: int
    msg_no: int
    index: int
    last: bool
    chunk: bytes


class _Bad(Exception):
    """A payload that breaks the schema; never leaves this module (it becomes a Drop)."""


# -- messages --------------------------------------------------------------------------
def _plain(value: Any, spec: _Spec) -> Any:
    if spec == "i":
        if type(value) is not int or not 0 <= value <= INT_MAX:
            raise ValueError(f"{value!r} is not an integer 0..2**63-1")
        return value
    if spec == "b":
        if type(value) is not bytes or len(value) > BYTES_MAX:
            raise ValueError(f"bytes of at most {BYTES_MAX} expected, got {type(value).__name__}")
        return value
    if spec == "s":
        if type(value) is not str or len(value) > OP_MAX:
            raise ValueError(f"a command of at most {OP_MAX} characters expected")
        return value
    if isinstance(spec, type):
        if type(value) is not spec:
            raise ValueError(f"{spec.__name__} expected, got {type(value).__name__}")
        specs = _SCHEMA[spec]
        return [_plain(getattr(value, f.name), s) for f, s in zip(fields(spec), specs, strict=True)]
    tag = spec[0]
    if tag == "opt":
        return None if value is None else _plain(value, spec[1])
    if tag == "tup":
        if type(value) is not tuple or len(value) > ITEMS_MAX:
            raise ValueError(f"a tuple of at most {ITEMS_MAX} expected")
        return [_plain(v, spec[1]) for v in value]
    if type(value) is not tuple or len(value) != 2:  # "pair"
        raise ValueError("a pair expected")
    return [_plain(value[0], spec[1]), _plain(value[1], spec[2])]


def _message_plain(msg: Any) -> list[Any]:
    code = _CODE.get(type(msg))
    if code is None:
        raise ValueError(f"{type(msg).__name__} is not a command-log message")
    return [code, *_plain(msg, type(msg))]


def encode_message(msg: Any) -> bytes:
    """A message's msgpack bytes; ValueError if it breaks the schema or a limit (our bug)."""
    packed: bytes = msgpack.packb(_message_plain(msg), use_bin_type=True)
    if len(packed) > MESSAGE_BYTES_MAX:
        raise ValueError(f"message is {len(packed)} bytes, limit {MESSAGE_BYTES_MAX}")
    return packed


def _value(raw: Any, spec: _Spec) -> Any:
    if spec == "i":
        if type(raw) is not int or not 0 <= raw <= INT_MAX:
            raise _Bad("integer out of range")
        return raw
    if spec == "b":
        if type(raw) is not bytes or len(raw) > BYTES_MAX:
            raise _Bad(f"bytes of at most {BYTES_MAX} expected")
        return raw
    if spec == "s":
        if type(raw) is not str or len(raw) > OP_MAX:
            raise _Bad(f"a command of at most {OP_MAX} characters expected")
        return raw
    if isinstance(spec, type):
        specs = _SCHEMA[spec]
        if type(raw) is not list or len(raw) != len(specs):
            raise _Bad(f"{spec.__name__}: {len(specs)} fields expected")
        return spec(*(_value(r, s) for r, s in zip(raw, specs, strict=True)))
    tag = spec[0]
    if tag == "opt":
        return None if raw is None else _value(raw, spec[1])
    if type(raw) is not list:
        raise _Bad("an array expected")
    if tag == "tup":
        if len(raw) > ITEMS_MAX:
            raise _Bad(f"more than {ITEMS_MAX} items")
        return tuple(_value(r, spec[1]) for r in raw)
    if len(raw) != 2:
        raise _Bad("a pair expected")
    return (_value(raw[0], spec[1]), _value(raw[1], spec[2]))


def _message(raw: Any) -> Any:
    if type(raw) is not list or not raw or type(raw[0]) is not int:
        raise _Bad("a message is [kind, fields...]")
    if not 0 <= raw[0] < len(KINDS):
        raise _Bad(f"unknown message kind {raw[0]}")
    return _value(raw[1:], KINDS[raw[0]])


def _unpack(data: bytes) -> Any:
    """msgpack with every length bounded by the data itself; raises _Bad."""
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=4 * OP_MAX,
            max_bin_len=BYTES_MAX,
            max_array_len=ITEMS_MAX,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises many kinds on bad input; all are the peer's
        raise _Bad(f"not msgpack: {type(exc).__name__}") from None


def decode_message(data: bytes) -> Any | Drop:
    """One message from its msgpack bytes (a reassembled fragment); never raises."""
    if len(data) > MESSAGE_BYTES_MAX:
        return drop(DROP_SCHEMA, f"message of {len(data)} bytes, limit {MESSAGE_BYTES_MAX}")
    try:
        return _message(_unpack(data))
    except (_Bad, RecursionError) as exc:
        return drop(DROP_SCHEMA, exc)


# -- frames ----------------------------------------------------------------------------
def _header(kind: int, src: int, dst: int) -> bytes:
    if not (0 <= src < NODES_MAX and 0 <= dst < NODES_MAX):
        raise ValueError(f"node ids must be 0..{NODES_MAX - 1}")
    return bytes((SMR_WIRE_VERSION << 4 | kind, src << 4 | dst))


def seal_batch(src: int, dst: int, encoded: list[bytes], cluster: str) -> bytes:
    """Wire bytes of a batch frame of already encoded messages; ValueError over a limit."""
    if not 1 <= len(encoded) <= BATCH_MAX:
        raise ValueError(f"a batch holds 1..{BATCH_MAX} messages")
    n = len(encoded)
    array = bytes((0x90 | n,)) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
    wire = seal_payload(_header(_BATCH, src, dst) + array + b"".join(encoded), cluster)
    if len(wire) - 1 > FRAME_BYTES_MAX:
        raise ValueError(f"frame body is {len(wire) - 1} bytes, limit {FRAME_BYTES_MAX}")
    return wire


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def seal_fragment(
    src: int, dst: int, msg_no: int, index: int, last: bool, chunk: bytes, cluster: str
) -> bytes:
    """Wire bytes of one fragment frame; ValueError over a limit."""
    if not 0 <= msg_no <= INT_MAX or not 0 <= index < FRAGMENTS_MAX or not chunk:
        raise ValueError("fragment number, index or chunk out of range")
    head = _header(_FRAGMENT, src, dst) + _uvarint(msg_no) + _uvarint(index) + bytes((last,))
    wire = seal_payload(head + chunk, cluster)
    if len(wire) - 1 > FRAME_BYTES_MAX:
        raise ValueError(f"frame body is {len(wire) - 1} bytes, limit {FRAME_BYTES_MAX}")
    return wire


def _read_uvarint(buf: bytes, i: int, limit: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise _Bad("number runs past the end")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise _Bad("number longer than 10 bytes")
    if value > limit:
        raise _Bad(f"number above {limit}")
    return value, i


def _smr_from(payload: bytes) -> SmrFrame | Fragment:
    """Parse a command-log payload (CRC already checked); raises _Bad."""
    if len(payload) < 3:
        raise _Bad("payload shorter than its header")
    kind = payload[0] & 0x0F
    src, dst = payload[1] >> 4, payload[1] & 0x0F
    if kind == _FRAGMENT:
        msg_no, i = _read_uvarint(payload, 2, INT_MAX)
        index, i = _read_uvarint(payload, i, FRAGMENTS_MAX - 1)
        if i >= len(payload) or payload[i] > 1:
            raise _Bad("fragment's last flag must be 0 or 1")
        chunk = payload[i + 1 :]
        if not chunk:
            raise _Bad("empty fragment")
        return Fragment(src, dst, msg_no, index, bool(payload[i]), chunk)
    if kind != _BATCH:
        raise _Bad(f"unknown command-log frame kind {kind}")
    raw = _unpack(payload[2:])
    if type(raw) is not list or not 1 <= len(raw) <= BATCH_MAX:
        raise _Bad(f"a batch is an array of 1..{BATCH_MAX} messages")
    return SmrFrame(src, dst, tuple(_message(m) for m in raw))


def decode_link_body(
    body: bytes | bytearray | memoryview, cluster: str
) -> Frame | SmrFrame | Fragment | Drop:
    """One delimited body off a link of a board that runs the command log; never raises.

    The CRC is checked before the version nibble is trusted; an agreement frame
    goes to `voter.core.frame.decode_frame` unchanged.
    """
    opened = open_body(body)
    if isinstance(opened, Drop):
        return opened
    payload, got = opened
    if payload[0] >> 4 != SMR_WIRE_VERSION:
        return decode_frame(body, cluster)
    want = payload_crc(payload, cluster)
    if got != want:
        return drop(DROP_CRC, f"got {got:08x}, computed {want:08x} (noise or another cluster)")
    if payload[0] & 0x0F > _FRAGMENT:
        return drop(DROP_VERSION, f"command-log frame kind {payload[0] & 0x0F}")
    try:
        return _smr_from(payload)
    except (_Bad, RecursionError) as exc:
        return drop(DROP_SCHEMA, exc)


class LinkSplitter(Splitter[Frame | SmrFrame | Fragment]):
    """The splitter of a link that carries agreement frames and command-log frames."""

    def __init__(self, cluster: str) -> None:
        payload_crc(b"", cluster)  # a cluster no frame can carry: ValueError now
        self.cluster = cluster
        super().__init__(self._decode_body)

    def _decode_body(self, body: bytes | bytearray) -> Frame | SmrFrame | Fragment | Drop:
        return decode_link_body(body, self.cluster)
