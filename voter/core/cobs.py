"""COBS (Cheshire & Baker, 1999): bytes <-> bytes without 0x00, so 0x00 can delimit frames.

Pure byte stuffing, nothing about frames: the seal (`voter.core.seal`) runs it
over payload + CRC. A body no encoder could have produced is a ValueError here;
the seal turns it into a counted `cobs` drop, because the bytes came from a peer.

With the optional `cobs` package installed (`pip install voter[fast]`), its C
extension does the work (~1.1-1.2x the simulator, docs/performance.md); the
pure functions here stay the reference, and a differential test holds the C
ones to them byte for byte, errors included.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

__all__ = [
    "C_COBS",
    "cobs_decode",
    "cobs_encode",
    "cobs_size",
    "pure_cobs_decode",
    "pure_cobs_encode",
]

#: The code byte that starts a block of n < 254 data bytes followed by an implied zero.
_CODE = tuple(bytes((n + 1,)) for n in range(254))


def pure_cobs_encode(data: bytes) -> bytes:
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


def cobs_size(data: bytes) -> int:
    """len(cobs_encode(data)) without building it (the simulator's wire time needs only this)."""
    # One code byte per zero-delimited chunk, plus one per full 254-byte block in
    # it; a last chunk that ends on a full block has no empty block after it.
    chunks = data.split(b"\x00")
    size = len(data) + 1
    if max(map(len, chunks)) < 254:
        return size
    size += sum(len(c) // 254 for c in chunks)
    last = len(chunks[-1])
    return size - 1 if last and last % 254 == 0 else size


def pure_cobs_decode(data: bytes) -> bytes:
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


try:
    # The extension itself: `cobs.cobs` alone would fall back to a slower pure Python.
    from cobs.cobs import _cobs_ext
except ImportError:  # the optional extra is not installed: the pure functions
    _cobs_ext = None

#: whether the C COBS of the `cobs` package is in use
C_COBS = _cobs_ext is not None


def _c_decode(data: bytes) -> bytes:
    # The C decoder reads an empty body as empty data, and its messages differ:
    # any error goes back through the pure decoder, whose message a Drop carries
    # into the decision log (and so into the simulator's history hash).
    if data:
        try:
            out: bytes = _cobs_ext.decode(data)  # not `cast`: in pure Python, one more call
            return out
        except _cobs_ext.DecodeError:
            pass
    return pure_cobs_decode(data)


#: The C encoder itself when present: it agrees with the pure one on every input (the
#: differential test), so no wrapper stands between a frame and it.
cobs_encode: Callable[[bytes], bytes] = _cobs_ext.encode if C_COBS else pure_cobs_encode
cobs_decode = _c_decode if C_COBS else pure_cobs_decode
