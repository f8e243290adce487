"""The wire codec (`Frame` <-> COBS(msgpack + CRC-32C) + 0x00, with hard limits); it must stay pure.

No I/O, no clock, no randomness, no logging here. Decoding takes
untrusted bytes from a peer and must never raise: every failure is returned as a
`Drop` (an event the daemon counts and logs), so nothing a peer sends can crash a
loyal board. Encoding raises `ValueError` when a frame breaks a limit, because
then the bug is ours, not a peer's.

Layout of one frame on the wire::

    COBS( msgpack([version, cluster, src, dst, tick, round, entries])
          + CRC-32C(msgpack bytes), 4 bytes big-endian )  0x00

An entry is the msgpack array ``[path, value]`` (OM) or ``[path, value, sigs]``
(SM). ``value`` is nil, a label (str) or a reading (array of float64-or-nil).

What the codec accepts on decode, and why:

- Any msgpack *encoding* of a valid value is accepted (a non-minimal int, a
  float32 channel): boards agree on decoded values, never on bytes, and SM
  signatures are checked over the canonical re-encoding (`crypto.signed_bytes`).
  The encoder itself always writes float64 and minimal ints.
- Any float64 is accepted in a reading, NaN and infinities included: the value
  domain (`values.ReadingDomain`) rejects them per entry, which costs the peer
  one entry rather than its whole frame.
- Ints in a reading are refused: our encoder never writes them, so one on the
  wire means a foreign or broken encoder.
- Node ids in a path must be below `NODES_MAX`; whether they fit this cluster,
  this round and this link is `protocol.check_path`'s job, per entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Generic, TypeVar

import crc32c
import msgpack

from voter.core.crypto import SIGNATURE_BYTES
from voter.core.protocol import M_MAX, NODES_MAX, Entry

__all__ = [
    "ALL_DROP_REASONS",
    "CHANNELS_MAX",
    "CLUSTER_MAX",
    "DROP_CLUSTER",
    "DROP_COBS",
    "DROP_CRC",
    "DROP_LINK",
    "DROP_MSGPACK",
    "DROP_SCHEMA",
    "DROP_STALE",
    "DROP_TOO_LONG",
    "DROP_VERSION",
    "ENTRIES_MAX",
    "FRAME_BYTES_MAX",
    "LABEL_MAX",
    "PATH_MAX",
    "ROUND_MAX",
    "TICK_MAX",
    "WIRE_VERSION",
    "Drop",
    "Frame",
    "FrameSplitter",
    "PacketSplitter",
    "check_frame",
    "cobs_decode",
    "cobs_encode",
    "decode_frame",
    "encode_frame",
    "encoded_size",
    "seal_payload",
    "unseal_payload",
]

WIRE_VERSION = 1

T = TypeVar("T")

#: Limits (TigerBeetle: put a limit on everything). FRAME_BYTES_MAX bounds the
#: COBS body between two delimiters, so a frame takes at most FRAME_BYTES_MAX + 1
#: bytes on the wire and a receiver never buffers more than FRAME_BYTES_MAX.
FRAME_BYTES_MAX = 4096
ENTRIES_MAX = 512
CHANNELS_MAX = 32
LABEL_MAX = 64
CLUSTER_MAX = 64
TICK_MAX = 2**63 - 1
ROUND_MAX = M_MAX + 1
PATH_MAX = M_MAX + 1

CRC_BYTES = 4
_HEADER_FIELDS = 7

DROP_COBS = "cobs"
DROP_TOO_LONG = "too-long"
DROP_CRC = "crc"
DROP_MSGPACK = "msgpack"
DROP_SCHEMA = "schema"
DROP_VERSION = "version"
DROP_CLUSTER = "cluster"
DROP_LINK = "link"
DROP_STALE = "stale"
ALL_DROP_REASONS = (
    DROP_COBS,
    DROP_TOO_LONG,
    DROP_CRC,
    DROP_MSGPACK,
    DROP_SCHEMA,
    DROP_VERSION,
    DROP_CLUSTER,
    DROP_LINK,
    DROP_STALE,
)

#: A peer's detail text ends up in logs; keep it bounded like everything else.
_DETAIL_MAX = 120

#: Everything msgpack's unpacker raises on bad input (ExtraData, FormatError,
#: StackError and the max_*_len refusals are ValueError subclasses, invalid UTF-8
#: is UnicodeDecodeError, itself a ValueError); TypeError and OverflowError are
#: listed so that no future msgpack change can let a peer's bytes escape as one.
_UNPACK_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    msgpack.exceptions.UnpackException,
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One link's message for one (tick, round): all entries from `src` to `dst`."""

    version: int
    cluster: str
    src: int
    dst: int
    tick: int
    round: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Drop:
    """A rejected frame (an event to count and log, never an exception)."""

    reason: str
    detail: str = ""


# -- COBS (Cheshire & Baker, 1999) -------------------------------------------------
#: The code byte that starts a block of n < 254 data bytes followed by an implied zero.
_CODE = tuple(bytes((n + 1,)) for n in range(254))


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode `data`: the result holds no 0x00 and is at most len/254 + 1 bytes longer."""
    # Each zero ends a block, so splitting on zeros gives the blocks; this runs
    # every round, and payloads hold many zeros (node 0, float64 mantissas), so
    # the common case (no run of 254+ non-zero bytes) is joined entirely in C.
    chunks = data.split(b"\x00")
    if max(map(len, chunks)) < 254:
        codes = map(_CODE.__getitem__, map(len, chunks))
        return b"".join(chain.from_iterable(zip(codes, chunks, strict=True)))
    out = bytearray()
    last = len(chunks) - 1
    for i, chunk in enumerate(chunks):
        n = len(chunk)
        start = 0
        while n - start >= 254:
            out.append(0xFF)  # a full block: 254 data bytes and no implied zero
            out += chunk[start : start + 254]
            start += 254
        # A last chunk that ended on a full block needs no empty block (minimal form).
        if start < n or n == 0 or i < last:
            out.append(n - start + 1)
            out += chunk[start:]
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Invert `cobs_encode`; raise ValueError on anything no encoder could have produced."""
    n = len(data)
    if n == 0:
        raise ValueError("empty COBS body")
    if b"\x00" in data:
        raise ValueError("0x00 inside a COBS body")
    # Blocks are the pieces between the implied zeros, except that a full block
    # (code 0xFF) carries no zero and is glued to the block after it.
    parts: list[bytes] = []
    glue = False
    i = 0
    while i < n:
        code = data[i]
        end = i + code
        # code 0 is excluded above already; checked again because it would loop forever.
        if end > n or code == 0:
            raise ValueError(f"COBS block at {i} (code {code}) runs past the end")
        if glue:
            parts[-1] += data[i + 1 : end]
        else:
            parts.append(data[i + 1 : end])
        glue = code == 0xFF
        i = end
    return b"\x00".join(parts)


def seal_payload(payload: bytes) -> bytes:
    """Wrap raw msgpack bytes as wire bytes: append CRC-32C, COBS-encode, add the 0x00.

    `encode_frame` uses it; tests and the HIL rig use it to build well-framed
    frames with wrong contents (a schema error must reach the schema check).
    """
    crc: int = crc32c.crc32c(payload)
    return cobs_encode(payload + crc.to_bytes(CRC_BYTES, "big")) + b"\x00"


# -- schema (shared by encode and decode, so whatever we send, we accept) ----------
def _entry_problem(path: object, value: object, sigs: object, sm: bool) -> str | None:
    """Why (path, value, sigs) is not a valid entry, or None."""
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
    elif type(value) is tuple:
        if not 1 <= len(value) <= CHANNELS_MAX:
            return f"reading must have 1..{CHANNELS_MAX} channels"
        for x in value:
            # float64 only: an int channel would pack differently on another encoder.
            if x is not None and type(x) is not float:
                return "reading channel must be float64 or nil"
    else:
        return "value must be nil, a label or a reading"
    if sm:
        if type(sigs) is not tuple or len(sigs) != len(path):
            return "SM entry needs one signature per node on the path"
        for s in sigs:
            if not isinstance(s, bytes) or len(s) != SIGNATURE_BYTES:
                return f"signature must be {SIGNATURE_BYTES} bytes of bin"
    return None


def _header_problem(
    cluster: object, src: object, dst: object, tick: object, rnd: object
) -> str | None:
    """Why the header fields after the version are invalid, or None."""
    if type(cluster) is not str or len(cluster) > CLUSTER_MAX:
        return f"cluster must be a string of at most {CLUSTER_MAX} chars"
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
def _wire_bytes(frame: Frame) -> bytes:
    """Validate every field limit except the total size and return the wire bytes."""
    if type(frame.version) is not int or frame.version != WIRE_VERSION:
        raise ValueError(f"frame version must be {WIRE_VERSION}, got {frame.version!r}")
    problem = _header_problem(frame.cluster, frame.src, frame.dst, frame.tick, frame.round)
    if problem is not None:
        raise ValueError(problem)
    entries = frame.entries
    if type(entries) is not tuple or len(entries) > ENTRIES_MAX:
        raise ValueError(f"entries must be a tuple of at most {ENTRIES_MAX} Entry")
    packed_entries: list[tuple[object, ...]] = []
    append = packed_entries.append
    for index, e in enumerate(entries):
        if type(e) is not Entry:
            raise ValueError(f"entry {index} is {type(e).__name__}, not Entry")
        sigs = e.sigs
        problem = _entry_problem(e.path, e.value, sigs, bool(sigs))
        if problem is not None:
            raise ValueError(f"entry {index}: {problem}")
        # Tuples pack as msgpack arrays as they are: no per-entry list copies.
        append((e.path, e.value, sigs) if sigs else (e.path, e.value))
    payload: bytes = msgpack.packb(
        (
            WIRE_VERSION,
            frame.cluster,
            frame.src,
            frame.dst,
            frame.tick,
            frame.round,
            packed_entries,
        ),
        use_bin_type=True,
    )
    return seal_payload(payload)


def encode_frame(frame: Frame) -> bytes:
    """The frame's wire bytes, trailing 0x00 included; ValueError if it breaks a limit."""
    wire = _wire_bytes(frame)
    if len(wire) - 1 > FRAME_BYTES_MAX:
        raise ValueError(f"frame body is {len(wire) - 1} bytes, limit {FRAME_BYTES_MAX}")
    return wire


def encoded_size(frame: Frame) -> int:
    """Bytes the frame takes on the wire, delimiter included.

    Unlike `encode_frame` it does not refuse an oversized frame, so a caller can
    ask whether a batch fits (fits iff result <= FRAME_BYTES_MAX + 1); any other
    broken limit still raises ValueError.
    """
    return len(_wire_bytes(frame))


# -- decode --------------------------------------------------------------------
def _drop(reason: str, detail: object = "") -> Drop:
    return Drop(reason, str(detail)[:_DETAIL_MAX])


def unseal_payload(body: bytes | bytearray | memoryview) -> bytes | Drop:
    """Invert `seal_payload` for one delimited body: COBS, then CRC-32C. Never raises."""
    if len(body) > FRAME_BYTES_MAX:
        return _drop(DROP_TOO_LONG, f"{len(body)} bytes, limit {FRAME_BYTES_MAX}")
    # A bytearray or memoryview read buffer becomes bytes once, so the byte
    # checks below (`in`, slicing) behave as on bytes.
    data = body if type(body) is bytes else bytes(body)
    try:
        raw = cobs_decode(data)
    except ValueError as exc:
        return _drop(DROP_COBS, exc)
    if len(raw) <= CRC_BYTES:
        return _drop(DROP_CRC, f"{len(raw)} bytes is too short for payload + CRC")
    payload = raw[:-CRC_BYTES]
    got = int.from_bytes(raw[-CRC_BYTES:], "big")
    want: int = crc32c.crc32c(payload)
    if got != want:
        return _drop(DROP_CRC, f"got {got:08x}, computed {want:08x}")
    return payload


def decode_frame(body: bytes | bytearray | memoryview) -> Frame | Drop:
    """Decode one delimited body (without its 0x00). Never raises: failures are Drops."""
    payload = unseal_payload(body)
    if isinstance(payload, Drop):
        return payload
    try:
        # Explicit limits: no string, bin or array may be larger than a valid
        # frame needs; maps and ext types are never valid (only length 0 gets past
        # the unpacker, and the schema refuses it). The buffer itself is bounded
        # by FRAME_BYTES_MAX above (unpackb takes no max_buffer_size).
        # use_list=False hands back tuples, which is what Frame and Entry hold.
        obj: object = msgpack.unpackb(
            payload,
            use_list=False,
            raw=False,
            strict_map_key=True,
            max_str_len=4 * max(LABEL_MAX, CLUSTER_MAX),  # UTF-8: at most 4 bytes a char
            max_bin_len=SIGNATURE_BYTES,
            max_array_len=ENTRIES_MAX,
            max_map_len=0,
            max_ext_len=0,
        )
    except _UNPACK_ERRORS as exc:
        return _drop(DROP_MSGPACK, f"{type(exc).__name__}: {exc}")
    return _frame_from(obj)


def _frame_from(obj: object) -> Frame | Drop:
    """Check the unpacked object against the schema and build the Frame."""
    if type(obj) is not tuple or not obj:
        return _drop(DROP_SCHEMA, "frame must be a non-empty array")
    version = obj[0]
    if type(version) is not int:
        return _drop(DROP_SCHEMA, "version must be an int")
    # Checked before the layout: another version may lay the frame out differently.
    if version != WIRE_VERSION:
        return _drop(DROP_VERSION, f"version {version}, expected {WIRE_VERSION}")
    if len(obj) != _HEADER_FIELDS:
        return _drop(DROP_SCHEMA, f"frame must have {_HEADER_FIELDS} fields, got {len(obj)}")
    _, cluster, src, dst, tick, rnd, raw_entries = obj
    problem = _header_problem(cluster, src, dst, tick, rnd)
    if problem is not None:
        return _drop(DROP_SCHEMA, problem)
    if type(raw_entries) is not tuple:
        return _drop(DROP_SCHEMA, "entries must be an array")
    entries: list[Entry] = []
    for index, e in enumerate(raw_entries):
        if type(e) is not tuple or len(e) not in (2, 3):
            return _drop(DROP_SCHEMA, f"entry {index} must be [path, value] or [path, value, sigs]")
        sm = len(e) == 3
        sigs = e[2] if sm else ()
        problem = _entry_problem(e[0], e[1], sigs, sm)
        if problem is not None:
            return _drop(DROP_SCHEMA, f"entry {index}: {problem}")
        entries.append(Entry(e[0], e[1], sigs))
    return Frame(WIRE_VERSION, cluster, src, dst, tick, rnd, tuple(entries))


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
    """
    if frame.cluster != cluster:
        return _drop(DROP_CLUSTER, f"cluster {frame.cluster!r}, expected {cluster!r}")
    if frame.src != src or frame.dst != dst:
        return _drop(DROP_LINK, f"{frame.src}->{frame.dst} on link {src}->{dst}")
    if tick is not None and frame.tick != tick:
        return _drop(DROP_STALE, f"tick {frame.tick}, expected {tick}")
    if round_no is not None and frame.round != round_no:
        return _drop(DROP_STALE, f"round {frame.round}, expected {round_no}")
    return None


# -- streaming -------------------------------------------------------------------
class _Splitter(Generic[T]):
    """Split a byte stream on 0x00 into decoded items and drops, with a bounded buffer.

    Reads may cut a frame anywhere or carry several; a run of more than
    FRAME_BYTES_MAX bytes without a delimiter (line noise, a babbling peer) is
    discarded as one too-long Drop and the splitter resynchronises at the next
    0x00. Empty bodies (0x00 0x00) are ignored: a sender may pad with delimiters
    to flush a receiver's partial frame after noise.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False  # inside an overlong run, waiting for a 0x00
        self.frames = 0
        self.drops = 0
        self.drop_reasons: dict[str, int] = {}

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held (never more than FRAME_BYTES_MAX)."""
        return len(self._buf)

    def _decode(self, body: bytes | bytearray) -> T | Drop:
        raise NotImplementedError

    def feed(self, data: bytes | bytearray) -> list[T | Drop]:
        """Take the next bytes read from the link; return what completed, in order."""
        out: list[T | Drop] = []
        start = 0
        n = len(data)
        while start <= n:
            idx = data.find(b"\x00", start)
            end = n if idx < 0 else idx
            if self._discarding:
                if idx >= 0:
                    self._discarding = False  # resynchronised
            elif len(self._buf) + (end - start) > FRAME_BYTES_MAX:
                self._buf.clear()
                self._discarding = idx < 0
                out.append(
                    self._count(_drop(DROP_TOO_LONG, f"no 0x00 within {FRAME_BYTES_MAX} bytes"))
                )
            elif idx < 0:
                self._buf += data[start:end]
            elif self._buf:
                self._buf += data[start:end]
                body = bytes(self._buf)
                self._buf.clear()
                out.append(self._count(self._decode(body)))
            elif end > start:
                out.append(self._count(self._decode(data[start:end])))
            if idx < 0:
                break
            start = idx + 1
        return out

    def _count(self, result: T | Drop) -> T | Drop:
        if isinstance(result, Drop):
            self.drops += 1
            self.drop_reasons[result.reason] = self.drop_reasons.get(result.reason, 0) + 1
        else:
            self.frames += 1
        return result


class FrameSplitter(_Splitter[Frame]):
    """The link splitter: each body is decoded as a protocol frame."""

    def _decode(self, body: bytes | bytearray) -> Frame | Drop:
        return decode_frame(body)


class PacketSplitter(_Splitter[bytes]):
    """The same framing for other payloads (the HIL control line): COBS + CRC-32C only.

    Line noise costs the packet it hits (a counted Drop) and the splitter resyncs
    at the next 0x00, exactly as on a link.
    """

    def _decode(self, body: bytes | bytearray) -> bytes | Drop:
        return unseal_payload(body)
