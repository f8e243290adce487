"""The frame codec: `Frame` <-> sealed payload bytes, with hard limits; it stays pure.

No I/O, no clock, no randomness, no logging here. Decoding takes
untrusted bytes from a peer and must never raise: every failure is returned as a
`Drop` (an event the daemon counts and logs), so nothing a peer sends can crash a
loyal board. Encoding raises `ValueError` when a frame breaks a limit, because
then the bug is ours, not a peer's.

This module holds the payload layout and the per-link checks only. Below it,
each in its own module because each is used or reasoned about on its own:
`cobs` (byte stuffing), `seal` (COBS + CRC-32C seeded by the cluster, shared
with the HIL control line), `slots` (which path a positional value belongs
to), `splitter` (0x00 delimiting, the body limit) and `drops` (the Drop event
and its reasons). `FrameSplitter` is the splitter that decodes frames.

Layout of one frame on the wire (version 3; CRC, floats and lengths of fixed width big-endian)::

    COBS( payload + CRC-32C(cluster prefix + payload), 4 bytes )  0x00
    payload = version:4 form:1 round:3  src:4 dst:4  tick:uvarint  [sync, round 1 only]  body
    sync    = flags:u8  [digest:4 heard:uvarint] (flag 1)  [echo_us:zigzag] (flag 2)
              [lag_us:uvarint] (flag 4)

- **Timing block (version 3).** A round-1 frame of tick k carries what the
  tick driver needs to keep the boards honest about time (docs/design.md,
  Timing): the first 4 bytes of a digest of the sender's agreed vector of tick
  k-1 with a bitmap of whose round-1 frames of k-1 reached it in time (clique
  avoidance), and the two-way clock echo: how long after its own t0 of k-1 the
  sender read the receiver's round-1 frame (`echo_us`), and how long after that
  t0 it wrote its own (`lag_us`). A flags byte of 0 is a frame without the
  block (`Frame.sync is None`).

The payload is a fixed binary layout rather than msgpack: an OM(1) frame carries
one or two 24-byte readings, and msgpack's type bytes, the cluster string and
every entry's path cost more than a third of that on top (docs/design.md, Frames).

- **Cluster in the CRC.** The cluster id is not sent: the CRC covers
  ``len(cluster):u16 + cluster (UTF-8)`` and then the payload, as TTP/C folds
  its membership into the CRC (`voter.core.seal`). A frame from another cluster fails the CRC like
  line noise (a ``crc`` drop), so the decoder needs the cluster it belongs to.
  A version-1 frame (CRC over its payload alone) is recognised and counted as a
  ``version`` drop.
- **Two body forms**, told apart by the form bit:

  * *explicit*: entries until the end, each ``head:u8 (path length | 0x08 if
    signed)``, the path (one byte per node id), the value, and for a signed
    entry one 64-byte Ed25519 signature per node on the path.
  * *positional* (OM): values only. A loyal OM board sends src->dst in round r
    exactly the labels σ of length r-1 over the other nodes, never src or dst,
    each relayed as σ + (src,), in lexicographic order. So the k-th value of
    the body belongs to the k-th such path of the smallest cluster that holds
    every node named; the number of values fixes that cluster size (it grows
    strictly with it), so the receiver rebuilds every path (`voter.core.slots`).
    A slot the sender left out is the 1-byte ``absent`` tag, so a traitor that
    skips a slot stays distinguishable from one that sends ERROR: the codec is
    exact, the receiver sees the entries that were sent. The encoder picks positional whenever the
    entries fit it and it is not longer than the explicit form.

- **Values** start with a tag: 0x00 absent (positional only), 0x01 nil (ERROR),
  0x02 label (uvarint byte length, UTF-8), 0x40|k-1 a reading of k float64,
  0x80|k-1 a reading of k channels some of which are nil (a bitmap of the nil
  channels, LSB first, then the float64 of the others). Floats are always
  IEEE float64 big-endian, so every architecture serialises a value the same
  way; any float64 decodes, NaN and infinities included: the value domain
  (`values.ReadingDomain`) rejects those per entry, which costs the peer one
  entry rather than its whole frame.

Every value has one encoding (ticks and lengths as minimal LEB128, the gap form
only with a gap) and every payload the decoder accepts one meaning, so boards
never disagree about what a frame said. Node ids in a path must be
below `NODES_MAX`; whether they fit this cluster, this round and this link is
`protocol.check_path`'s job, per entry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c

from voter.core.cobs import cobs_size
from voter.core.crypto import SIGNATURE_BYTES
from voter.core.drops import (
    DROP_CLUSTER,
    DROP_CRC,
    DROP_LINK,
    DROP_SCHEMA,
    DROP_STALE,
    DROP_VERSION,
    Drop,
    drop,
)
from voter.core.protocol import M_MAX, NODES_MAX, Entry, slot_setters
from voter.core.seal import _SEEDS as _CRC_SEEDS
from voter.core.seal import CRC_BYTES, crc_seed, open_body, payload_crc, seal_payload
from voter.core.slots import positional_slots, slot_paths
from voter.core.splitter import FRAME_BYTES_MAX, Splitter

__all__ = [
    "CHANNELS_MAX",
    "DIGEST_BYTES",
    "ENTRIES_MAX",
    "LABEL_MAX",
    "PATH_MAX",
    "ROUND_MAX",
    "SYNC_US_MAX",
    "TICK_MAX",
    "WIRE_VERSION",
    "Frame",
    "FrameSplitter",
    "SyncBlock",
    "check_frame",
    "decode_frame",
    "encode_frame",
    "encoded_size",
    "wire_size",
]

WIRE_VERSION = 3

#: Limits (TigerBeetle: put a limit on everything); FRAME_BYTES_MAX, the bound of
#: one body between delimiters, is the splitter's (`voter.core.splitter`).
ENTRIES_MAX = 512
CHANNELS_MAX = 32
LABEL_MAX = 64
TICK_MAX = 2**63 - 1
ROUND_MAX = M_MAX + 1
PATH_MAX = M_MAX + 1


# The layout packs the version into four bits, src and dst into four each, the
# round and a path length into three, the channel count into five: they must fit.
assert WIRE_VERSION < 16 and NODES_MAX <= 16 and ROUND_MAX <= 7 and PATH_MAX <= 7
assert CHANNELS_MAX <= 32

_POSITIONAL = 0x08  # first byte: the body holds positional values
_ROUND_BITS = 0x07
_VERSION_SHIFT = 4
_SIGNED = 0x08  # entry head: signatures follow the value
_PATH_BITS = 0x07
_ABSENT = 0x00
_NIL = 0x01
_LABEL = 0x02
_READING = 0x40  # | channels - 1: all channels present
_GAPPY = 0x80  # | channels - 1: a bitmap of nil channels, then the present ones
_KIND_BITS = 0xE0
_CHANNEL_BITS = 0x1F
_LABEL_BYTES_MAX = 4 * LABEL_MAX  # UTF-8: at most 4 bytes a char
_FLOATS = tuple(struct.Struct(f">{k}d") for k in range(CHANNELS_MAX + 1))

DIGEST_BYTES = 4
#: bound of the clock echo and send lag fields (microseconds): far beyond any period
SYNC_US_MAX = 2**31 - 1
_SYNC_DIGEST = 0x01
_SYNC_ECHO = 0x02
_SYNC_LAG = 0x04


@dataclass(frozen=True, slots=True)
class SyncBlock:
    """The timing block of a round-1 frame of tick k (all about the sender's tick k-1).

    `digest`/`heard`: the first DIGEST_BYTES of the digest of the sender's agreed
    vector of k-1, and the bitmap (bit j = node j) of the boards whose round-1
    frame of k-1 reached it in time. `echo_us`: when, after its own t0 of k-1,
    the sender read the *receiver's* round-1 frame of k-1; `lag_us`: when, after
    that t0, it wrote its own. None = not known (not decided, not received).
    """

    digest: bytes | None = None
    heard: int = 0
    echo_us: int | None = None
    lag_us: int | None = None

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        digest: bytes | None = None,
        heard: int = 0,
        echo_us: int | None = None,
        lag_us: int | None = None,
    ) -> None:
        _sync_digest(self, digest)
        _sync_heard(self, heard)
        _sync_echo_us(self, echo_us)
        _sync_lag_us(self, lag_us)

    def is_empty(self) -> bool:
        """Equal to `SyncBlock()` (nothing to say), without the dataclass's `__eq__`."""
        return (
            self.digest is None and self.heard == 0 and self.echo_us is None and self.lag_us is None
        )


@dataclass(frozen=True, slots=True)
class Frame:
    """One link's message for one (tick, round): all entries from `src` to `dst`.

    `cluster` is not on the wire (it is folded into the CRC): a decoded frame
    carries the cluster its decoder was given, the only one whose CRC it passes.
    `sync` (round 1 only) is the timing block; None when the sender had none.
    """

    version: int
    cluster: str
    src: int
    dst: int
    tick: int
    round: int
    entries: tuple[Entry, ...]
    sync: SyncBlock | None = None

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        version: int,
        cluster: str,
        src: int,
        dst: int,
        tick: int,
        round: int,
        entries: tuple[Entry, ...],
        sync: SyncBlock | None = None,
    ) -> None:
        _frame_version(self, version)
        _frame_cluster(self, cluster)
        _frame_src(self, src)
        _frame_dst(self, dst)
        _frame_tick(self, tick)
        _frame_round(self, round)
        _frame_entries(self, entries)
        _frame_sync(self, sync)


_sync_digest, _sync_heard, _sync_echo_us, _sync_lag_us = slot_setters(SyncBlock)
(
    _frame_version,
    _frame_cluster,
    _frame_src,
    _frame_dst,
    _frame_tick,
    _frame_round,
    _frame_entries,
    _frame_sync,
) = slot_setters(Frame)


# -- schema (checked on encode; the decoder's grammar admits nothing else) ----------
def _entry_problem(path: object, value: object, sigs: object, sm: bool) -> str | None:
    """Why (path, value, sigs) is not a valid entry, or None."""
    if _entry_fine(path, value, sigs, sm):
        return None
    if type(path) is not tuple or not 1 <= len(path) <= PATH_MAX:
        return f"path must be an array of 1..{PATH_MAX} node ids"
    for p in path:
        # `type(...) is int` because bool is an int subclass and is never a node id.
        if type(p) is not int or not 0 <= p < NODES_MAX:
            return f"path holds {p!r}, not a node id 0..{NODES_MAX - 1}"
    if value is None:
        pass
    elif type(value) is str:
        if len(value) > LABEL_MAX:
            return f"label longer than {LABEL_MAX} chars"
        try:
            value.encode()
        except UnicodeEncodeError:
            return "label is not encodable as UTF-8"
    elif type(value) is tuple:
        if not 1 <= len(value) <= CHANNELS_MAX:
            return f"reading must have 1..{CHANNELS_MAX} channels"
        for x in value:
            # float64 only: an int channel has no place in the layout.
            if x is not None and type(x) is not float:
                return "reading channel must be float64 or nil"
    else:
        return "value must be nil, a label or a reading"
    if sm:
        if type(sigs) is not tuple or len(sigs) != len(path):
            return "SM entry needs one signature per node on the path"
        for s in sigs:
            if not isinstance(s, bytes) or len(s) != SIGNATURE_BYTES:
                return f"signature must be {SIGNATURE_BYTES} bytes"
    return None


def _entry_fine(path: object, value: object, sigs: object, sm: bool) -> bool:
    """The entries our own boards build, accepted in one pass: a path of node ids, a reading
    of float64 channels, one 64-byte signature per node under SM. False means: ask
    `_entry_problem` for the reason (it also accepts the other valid values)."""
    if type(path) is not tuple or type(value) is not tuple or not 1 <= len(path) <= PATH_MAX:
        return False
    for p in path:
        if type(p) is not int or not 0 <= p < NODES_MAX:
            return False
    if not 1 <= len(value) <= CHANNELS_MAX:
        return False
    for x in value:
        if type(x) is not float:
            return False
    if sm:
        if type(sigs) is not tuple or len(sigs) != len(path):
            return False
        for sig in sigs:
            if type(sig) is not bytes or len(sig) != SIGNATURE_BYTES:
                return False
    return True


def _header_problem(src: object, dst: object, tick: object, rnd: object) -> str | None:
    """Why the header fields are invalid, or None."""
    if type(src) is not int or not 0 <= src < NODES_MAX:
        return "src is not a node id"
    if type(dst) is not int or not 0 <= dst < NODES_MAX:
        return "dst is not a node id"
    if type(tick) is not int or not 0 <= tick <= TICK_MAX:
        return f"tick must be 0..{TICK_MAX}"
    if type(rnd) is not int or not 1 <= rnd <= ROUND_MAX:
        return f"round must be 1..{ROUND_MAX}"
    return None


# -- encode --------------------------------------------------------------------
def _put_uvarint(out: bytearray, v: int) -> None:
    """Unsigned LEB128, minimal: 7 bits a byte, low bits first."""
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _put_value(out: bytearray, value: object) -> None:
    """Append a value already checked by `_entry_problem`."""
    if type(value) is tuple:
        k = len(value)
        if None in value:
            present = [x for x in value if x is not None]
            gaps = sum(1 << i for i, x in enumerate(value) if x is None)
            out.append(_GAPPY | (k - 1))
            out += gaps.to_bytes((k + 7) // 8, "little")
            out += _FLOATS[len(present)].pack(*present)
        else:
            out.append(_READING | (k - 1))
            out += _FLOATS[k].pack(*value)
    elif value is None:
        out.append(_NIL)
    else:
        assert type(value) is str
        data = value.encode()
        out.append(_LABEL)
        _put_uvarint(out, len(data))
        out += data


def _put_sync(out: bytearray, sync: SyncBlock | None) -> None:
    """Append the timing block (flags 0 for none); ValueError for a block no decoder returns."""
    if sync is None:
        out.append(0)
        return
    if type(sync) is not SyncBlock:
        raise ValueError(f"sync is {type(sync).__name__}, not SyncBlock")
    flags = 0
    digest, heard, echo, lag = sync.digest, sync.heard, sync.echo_us, sync.lag_us
    if digest is not None:
        if type(digest) is not bytes or len(digest) != DIGEST_BYTES:
            raise ValueError(f"sync digest must be {DIGEST_BYTES} bytes")
        if type(heard) is not int or not 0 <= heard < 1 << NODES_MAX:
            raise ValueError(f"sync heard must be a bitmap of {NODES_MAX} nodes")
        flags |= _SYNC_DIGEST
    elif heard:
        raise ValueError("sync heard without a digest")
    if echo is not None:
        if type(echo) is not int or abs(echo) > SYNC_US_MAX:
            raise ValueError(f"sync echo_us must be an int within +-{SYNC_US_MAX}")
        flags |= _SYNC_ECHO
    if lag is not None:
        if type(lag) is not int or not 0 <= lag <= SYNC_US_MAX:
            raise ValueError(f"sync lag_us must be an int in 0..{SYNC_US_MAX}")
        flags |= _SYNC_LAG
    if flags == 0:
        raise ValueError("an empty timing block is written as sync=None")
    out.append(flags)
    if digest is not None:
        out += digest
        _put_uvarint(out, heard)
    if echo is not None:
        _put_uvarint(out, echo << 1 if echo >= 0 else (-echo << 1) - 1)  # zigzag
    if lag is not None:
        _put_uvarint(out, lag)


def _wire_bytes(frame: Frame) -> bytes:
    """Validate every field limit except the total size and return the wire bytes."""
    return seal_payload(_payload(frame), frame.cluster)


def _payload(frame: Frame) -> bytes:
    """Validate every field limit except the total size and return the unsealed payload."""
    if type(frame.version) is not int or frame.version != WIRE_VERSION:
        raise ValueError(f"frame version must be {WIRE_VERSION}, got {frame.version!r}")
    cluster = frame.cluster
    if type(cluster) is not str or cluster not in _CRC_SEEDS:  # `crc_seed`'s own fast path
        crc_seed(cluster)  # a cluster no frame can carry: ValueError before any work
    src, dst, rnd, entries, tick = frame.src, frame.dst, frame.round, frame.entries, frame.tick
    if not (  # what `_header_problem` accepts, without the call
        type(src) is int
        and type(dst) is int
        and type(tick) is int
        and type(rnd) is int
        and 0 <= src < NODES_MAX
        and 0 <= dst < NODES_MAX
        and 0 <= tick <= TICK_MAX
        and 1 <= rnd <= ROUND_MAX
    ):
        raise ValueError(_header_problem(src, dst, tick, rnd))
    if type(entries) is not tuple or len(entries) > ENTRIES_MAX:
        raise ValueError(f"entries must be a tuple of at most {ENTRIES_MAX} Entry")
    # One pass validates every entry and rules the positional form in or out.
    fits = bool(entries) and src != dst
    top = max(src, dst)
    signed: list[bytes] = []  # the encoded signed entries (all of them, or the frame is mixed)
    cache = _SIGNED_ENTRIES
    for index, e in enumerate(entries):
        if type(e) is not Entry:
            raise ValueError(f"entry {index} is {type(e).__name__}, not Entry")
        path, value, sigs = e.path, e.value, e.sigs
        if sigs:  # never positional
            fits = False
            hit = cache.get(id(e))
            if (
                hit is None
                or hit[0] is not e
                or hit[1] is not path
                or hit[2] is not value
                or hit[3] is not sigs
            ):
                if not _entry_fine(path, value, sigs, True):  # the common entry, without a call
                    problem = _entry_problem(path, value, sigs, True)
                    if problem is not None:
                        raise ValueError(f"entry {index}: {problem}")
                hit = (e, path, value, sigs, _entry_bytes(path, value, sigs))
                if len(cache) >= _SIGNED_ENTRIES_MAX:
                    cache.clear()
                cache[id(e)] = hit
            signed.append(hit[4])
            continue
        problem = _entry_problem(path, value, sigs, False)
        if problem is not None:
            raise ValueError(f"entry {index}: {problem}")
        if fits:
            if sigs or len(path) != rnd or path[-1] != src:
                fits = False
            else:
                top = max(top, *path)
    positional = positional_slots(entries, src, dst, rnd, top + 1, ENTRIES_MAX) if fits else None
    out = bytearray((WIRE_VERSION << _VERSION_SHIFT | rnd, src << 4 | dst))
    while tick > 0x7F:  # `_put_uvarint`, inline
        out.append((tick & 0x7F) | 0x80)
        tick >>= 7
    out.append(tick)
    if rnd == 1:
        sync = frame.sync
        if sync is None:
            out.append(0)  # what `_put_sync` writes for it
        else:
            _put_sync(out, sync)
    elif frame.sync is not None:
        raise ValueError("only round-1 frames carry a timing block")
    if positional is not None:
        out[0] |= _POSITIONAL
        count, slots = positional
        at = 0
        for e, slot in zip(entries, slots, strict=True):
            if slot > at:
                out += bytes(slot - at)  # absent slots: one 0x00 each
            value = e.value
            if type(value) is tuple and None not in value:  # the common case, inline
                out.append(_READING | (len(value) - 1))
                out += _FLOATS[len(value)].pack(*value)
            else:
                _put_value(out, value)
            at = slot + 1
        out += bytes(count - at)
    elif len(signed) == len(entries):
        out += b"".join(signed)
    else:
        for e in entries:
            out += _entry_bytes(e.path, e.value, e.sigs)
    return bytes(out)


#: Signed entries already validated and encoded, by id: an SM board relays one Entry object
#: to several peers (its own value to all N-1 in round 1, each relay to N-2 in round 2), and
#: validating and encoding it again for every frame was a tenth of the encoder. A hit must be
#: the same object with the same field objects (held here, so no id is reused while cached;
#: the fields are tuples of floats, ints and bytes, which cannot change), so an entry changed
#: with `object.__setattr__` is validated afresh. Bounded: cleared when full.
_SIGNED_ENTRIES: dict[int, tuple[Entry, tuple[int, ...], object, tuple[bytes, ...], bytes]] = {}
_SIGNED_ENTRIES_MAX = 256


def _entry_bytes(path: tuple[int, ...], value: object, sigs: tuple[bytes, ...]) -> bytes:
    """The explicit-form bytes of one entry already checked by `_entry_problem`."""
    out = bytearray((len(path) | (_SIGNED if sigs else 0),))
    out += bytes(path)
    if type(value) is tuple and None not in value:  # the common case, inline
        out.append(_READING | (len(value) - 1))
        out += _FLOATS[len(value)].pack(*value)
    else:
        _put_value(out, value)
    if sigs:
        out += b"".join(sigs)
    return bytes(out)


def encode_frame(frame: Frame) -> bytes:
    """The frame's wire bytes, trailing 0x00 included; ValueError if it breaks a limit."""
    wire = seal_payload(_payload(frame), frame.cluster)  # `_wire_bytes`, inline
    if len(wire) - 1 > FRAME_BYTES_MAX:
        raise ValueError(f"frame body is {len(wire) - 1} bytes, limit {FRAME_BYTES_MAX}")
    return wire


def encoded_size(frame: Frame) -> int:
    """Bytes the frame takes on the wire, delimiter included.

    Unlike `encode_frame` it does not refuse an oversized frame, so a caller can
    ask whether a batch fits (fits iff result <= FRAME_BYTES_MAX + 1); any other
    broken limit still raises ValueError.
    """
    return _sealed_size(_payload(frame), frame.cluster)


def wire_size(frame: Frame) -> int:
    """`encoded_size` for a frame our own code built, from the layout's arithmetic alone.

    Checks nothing: for a frame `encode_frame` accepts it equals `encoded_size`
    (a property test holds it to that), for any other it means nothing. The
    simulator's fast lane needs only a frame's wire time, and encoding it just
    to measure it was a quarter of a simulated tick (docs/performance.md).
    """
    rnd, entries = frame.round, frame.entries
    size = 2 + _uvarint_size(frame.tick) + (_sync_size(frame.sync) if rnd == 1 else 0)
    positional = _positional_count(frame)
    if positional is not None:
        # one 0x00 per absent slot
        size += positional - len(entries) + sum(_value_size(e.value) for e in entries)
    else:
        for e in entries:
            n = len(e.path)
            size += 1 + n + _value_size(e.value) + (SIGNATURE_BYTES * n if e.sigs else 0)
    if size + CRC_BYTES < 254:  # no run of 254 non-zero bytes: COBS adds exactly one
        return size + CRC_BYTES + 2
    # Long frames: where the zeros fall decides COBS's overhead, so build the bytes.
    return _sealed_size(_payload(frame), frame.cluster)


def _positional_count(frame: Frame) -> int | None:
    """The slot count of the positional form if the encoder picks it, else None."""
    src, dst, rnd, entries = frame.src, frame.dst, frame.round, frame.entries
    if not entries or src == dst:
        return None
    top = max(src, dst)
    for e in entries:
        path = e.path
        if e.sigs or len(path) != rnd or path[-1] != src:
            return None
        top = max(top, *path)
    fit = positional_slots(entries, src, dst, rnd, top + 1, ENTRIES_MAX)
    return None if fit is None else fit[0]


def _uvarint_size(v: int) -> int:
    return max(1, (v.bit_length() + 6) // 7)


def _value_size(value: object) -> int:
    if type(value) is tuple:
        k = len(value)
        if None in value:
            return 1 + (k + 7) // 8 + 8 * (k - value.count(None))
        return 1 + 8 * k
    if value is None:
        return 1
    assert type(value) is str
    n = len(value.encode())
    return 1 + _uvarint_size(n) + n


def _sync_size(sync: SyncBlock | None) -> int:
    if sync is None:
        return 1
    size = 1
    if sync.digest is not None:
        size += DIGEST_BYTES + _uvarint_size(sync.heard)
    if sync.echo_us is not None:
        echo = sync.echo_us
        size += _uvarint_size(echo << 1 if echo >= 0 else (-echo << 1) - 1)
    if sync.lag_us is not None:
        size += _uvarint_size(sync.lag_us)
    return size


def _sealed_size(payload: bytes, cluster: str) -> int:
    """len(seal_payload(payload, cluster)) without the COBS pass."""
    if len(payload) + CRC_BYTES < 254:
        return len(payload) + CRC_BYTES + 2
    crc = payload_crc(payload, cluster).to_bytes(CRC_BYTES, "big")
    return cobs_size(payload + crc) + 1


# -- decode --------------------------------------------------------------------
class _Bad(Exception):
    """A payload that breaks the layout; never leaves this module (it becomes a Drop)."""


def _uvarint(buf: bytes, i: int, end: int, limit: int, what: str) -> tuple[int, int]:
    """Read a minimal LEB128 number of at most `limit` at `i`; (value, next index)."""
    value = shift = 0
    while True:
        if i >= end:
            raise _Bad(f"{what} runs past the end")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise _Bad(f"{what} longer than 10 bytes")
    if byte == 0 and shift:
        raise _Bad(f"{what} is not minimal")
    if value > limit:
        raise _Bad(f"{what} above {limit}")
    return value, i


#: What an absent positional slot decodes to before it is skipped (never a value).
_ABSENT_SLOT = object()


def _value(buf: bytes, i: int, end: int) -> tuple[object, int]:
    """Read one tagged value at `i`: (value or _ABSENT_SLOT, next index)."""
    if i >= end:
        raise _Bad("value runs past the end")
    tag = buf[i]
    i += 1
    kind = tag & _KIND_BITS
    if kind == _READING:
        k = (tag & _CHANNEL_BITS) + 1
        j = i + 8 * k
        if j > end:
            raise _Bad("reading runs past the end")
        reading: tuple[float, ...] = _FLOATS[k].unpack_from(buf, i)
        return reading, j
    if kind == _GAPPY:
        k = (tag & _CHANNEL_BITS) + 1
        j = i + (k + 7) // 8
        if j > end:
            raise _Bad("reading runs past the end")
        gaps = int.from_bytes(buf[i:j], "little")
        if not gaps or gaps >> k:
            raise _Bad("nil-channel bitmap is empty or names no channel")
        present = k - gaps.bit_count()
        i, j = j, j + 8 * present
        if j > end:
            raise _Bad("reading runs past the end")
        floats = iter(_FLOATS[present].unpack_from(buf, i))
        return tuple(None if gaps >> c & 1 else next(floats) for c in range(k)), j
    if tag == _NIL:
        return None, i
    if tag == _ABSENT:
        return _ABSENT_SLOT, i
    if tag == _LABEL:
        size, i = _uvarint(buf, i, end, _LABEL_BYTES_MAX, "label length")
        j = i + size
        if j > end:
            raise _Bad("label runs past the end")
        try:
            label = buf[i:j].decode()
        except UnicodeDecodeError:
            raise _Bad("label is not UTF-8") from None
        if len(label) > LABEL_MAX:
            raise _Bad(f"label longer than {LABEL_MAX} chars")
        return label, j
    raise _Bad(f"unknown value tag 0x{tag:02x}")


def decode_frame(body: bytes | bytearray | memoryview, cluster: str) -> Frame | Drop:
    """Decode one delimited body (no 0x00) of `cluster`; never raises: failures are Drops.

    Whatever the body holds; `cluster` is ours, and one no frame can carry is a
    ValueError (`FrameSplitter` checks it once, when it is made).
    """
    opened = open_body(body)
    if isinstance(opened, Drop):
        return opened
    payload, got = opened
    seed = _CRC_SEEDS.get(cluster) if type(cluster) is str else None  # `crc_seed`, inline
    want: int = crc32c.crc32c(payload, crc_seed(cluster) if seed is None else seed)
    if got != want:
        if got == crc32c.crc32c(payload):
            # Version 1 sealed the payload alone (and a v1 payload is a msgpack array).
            return drop(DROP_VERSION, f"version 1 frame, expected {WIRE_VERSION}")
        return drop(DROP_CRC, f"got {got:08x}, computed {want:08x} (noise or another cluster)")
    version = payload[0] >> _VERSION_SHIFT
    if version != WIRE_VERSION:
        # Checked before the layout: another version may lay the frame out differently.
        return drop(DROP_VERSION, f"version {version}, expected {WIRE_VERSION}")
    try:
        return _frame_from(payload, cluster)
    except _Bad as exc:
        return drop(DROP_SCHEMA, exc)


def _frame_from(buf: bytes, cluster: str) -> Frame:
    """Parse a version-3 payload (CRC already checked); raises _Bad."""
    end = len(buf)
    if end < 3:
        raise _Bad("payload shorter than its header")
    rnd = buf[0] & _ROUND_BITS
    if rnd == 0:
        raise _Bad(f"round must be 1..{ROUND_MAX}")
    src, dst = buf[1] >> 4, buf[1] & 0x0F
    tick, i = _uvarint(buf, 2, end, TICK_MAX, "tick")
    sync: SyncBlock | None = None
    if rnd == 1:
        if i < end and buf[i] == 0:
            i += 1  # flags 0: no timing block (what `_sync` returns for it)
        else:
            sync, i = _sync(buf, i, end)
    entries: list[Entry] = []
    if buf[0] & _POSITIONAL:
        values: list[object] = []
        while i < end:
            if len(values) >= ENTRIES_MAX:
                raise _Bad(f"more than {ENTRIES_MAX} positional slots")
            value, i = _value(buf, i, end)
            values.append(value)
        paths = slot_paths(src, dst, rnd, len(values), ENTRIES_MAX)
        if paths is None:
            raise _Bad(f"no cluster has {len(values)} slots on link {src}->{dst} in round {rnd}")
        entries = [
            Entry(path, value)
            for path, value in zip(paths, values, strict=True)
            if value is not _ABSENT_SLOT
        ]
    else:
        while i < end:
            if len(entries) >= ENTRIES_MAX:
                raise _Bad(f"more than {ENTRIES_MAX} entries")
            head = buf[i]
            length = head & _PATH_BITS
            if head & ~(_PATH_BITS | _SIGNED) or length == 0:
                raise _Bad(f"entry head 0x{head:02x}: path length must be 1..{PATH_MAX}")
            i += 1
            j = i + length
            if j > end:
                raise _Bad("path runs past the end")
            path = tuple(buf[i:j])
            if max(path) >= NODES_MAX:
                raise _Bad(f"path holds a node id above {NODES_MAX - 1}")
            tag = buf[j] if j < end else 0
            if tag & _KIND_BITS == _READING:
                # The common value inline (a reading with every channel): `_value` does the same.
                i = j + 9 + 8 * (tag & _CHANNEL_BITS)
                if i > end:
                    raise _Bad("reading runs past the end")
                value = _FLOATS[(tag & _CHANNEL_BITS) + 1].unpack_from(buf, j + 1)
            else:
                value, i = _value(buf, j, end)
                if value is _ABSENT_SLOT:
                    raise _Bad("absent value outside a positional body")
            sigs: tuple[bytes, ...] = ()
            if head & _SIGNED:
                j = i + SIGNATURE_BYTES * length
                if j > end:
                    raise _Bad("signatures run past the end")
                # rounds 1 and 2 of SM: one or two signatures, no list to build
                if length == 1:
                    sigs = (buf[i:j],)
                elif length == 2:
                    sigs = (buf[i : i + SIGNATURE_BYTES], buf[i + SIGNATURE_BYTES : j])
                else:
                    sigs = _signatures(buf, i, j)
                i = j
            entries.append(Entry(path, value, sigs))
    return Frame(WIRE_VERSION, cluster, src, dst, tick, rnd, tuple(entries), sync)


def _signatures(buf: bytes, i: int, j: int) -> tuple[bytes, ...]:
    """The 64-byte signatures in buf[i:j] (j - i a multiple of 64, checked by the caller)."""
    if j - i == SIGNATURE_BYTES:  # round 1 of SM: one signature, no list to build
        return (buf[i:j],)
    return tuple([buf[k : k + SIGNATURE_BYTES] for k in range(i, j, SIGNATURE_BYTES)])


def _sync(buf: bytes, i: int, end: int) -> tuple[SyncBlock | None, int]:
    """Read a round-1 timing block at `i` (see the module docstring); raises _Bad."""
    if i >= end:
        raise _Bad("timing block runs past the end")
    flags = buf[i]
    i += 1
    if flags & ~(_SYNC_DIGEST | _SYNC_ECHO | _SYNC_LAG):
        raise _Bad(f"timing flags 0x{flags:02x}")
    if flags == 0:
        return None, i
    digest: bytes | None = None
    heard = 0
    echo: int | None = None
    lag: int | None = None
    if flags & _SYNC_DIGEST:
        if i + DIGEST_BYTES > end:
            raise _Bad("digest runs past the end")
        digest = buf[i : i + DIGEST_BYTES]
        heard, i = _uvarint(buf, i + DIGEST_BYTES, end, (1 << NODES_MAX) - 1, "heard")
    if flags & _SYNC_ECHO:
        z, i = _uvarint(buf, i, end, 2 * SYNC_US_MAX, "echo")
        echo = z >> 1 if not z & 1 else -((z + 1) >> 1)
    if flags & _SYNC_LAG:
        lag, i = _uvarint(buf, i, end, SYNC_US_MAX, "lag")
    return SyncBlock(digest, heard, echo, lag), i


# -- per-link checks -------------------------------------------------------------
def check_frame(
    frame: Frame,
    *,
    cluster: str,
    src: int,
    dst: int,
    tick: int | None = None,
    round_no: int | None = None,
) -> Drop | None:
    """Why a decoded frame does not belong on this link now, or None if it does.

    `src`/`dst` are the link's peer and this board: on point-to-point links the
    receiver knows who sent a frame, so a frame naming anyone else is dropped
    (the oral-messages assumption). `tick`/`round_no`, when given, are the ones
    the receiver is collecting; anything else is a replay or arrived too late.
    A frame off the wire always names the receiver's cluster (another cluster's
    fails the CRC); the cluster check catches frames handed over in memory.
    """
    if frame.cluster != cluster:
        return drop(DROP_CLUSTER, f"cluster {frame.cluster!r}, expected {cluster!r}")
    if frame.src != src or frame.dst != dst:
        return drop(DROP_LINK, f"{frame.src}->{frame.dst} on link {src}->{dst}")
    if tick is not None and frame.tick != tick:
        return drop(DROP_STALE, f"tick {frame.tick}, expected {tick}")
    if round_no is not None and frame.round != round_no:
        return drop(DROP_STALE, f"round {frame.round}, expected {round_no}")
    return None


class FrameSplitter(Splitter[Frame]):
    """The link splitter: each body is decoded as a frame of the splitter's cluster."""

    def __init__(self, cluster: str) -> None:
        crc_seed(cluster)  # a cluster no frame can carry is the caller's bug: ValueError now
        self.cluster = cluster
        super().__init__(self._frame)

    def _frame(self, body: bytes | bytearray) -> Frame | Drop:
        return decode_frame(body, self.cluster)
