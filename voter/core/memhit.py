"""Memory errors in a board's working state, as data: where they land and which bits they flip.

A `MemoryHit` is handed into the tick driver (like `MemoryFault` for the ECC
store): the core stays pure, the rig or the simulator chose the bits. Values are
seen as the 64-bit words a board holds them in (a float64 as its IEEE bits, an
int as two's complement); `flip_words` flips bits in those words and rebuilds
the value, so a flip can turn a reading into another float, an infinity or NaN.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: where a hit lands, in the order the tick meets them
READING = "reading"  #: the reading as sampled, before round 1 carries it
TABLE = "table"  #: the OM/SM node's received tables, before COM decides and the store keeps them
STORE = "store"  #: the ECC store's copy of the table (72-bit SECDED codewords)
VECTOR = "vector"  #: the agreed vector after COM/MON, before its digest and the record
OUTPUT = "output"  #: the voted output, after COM/MON, before publication
LOCATIONS = (READING, TABLE, STORE, VECTOR, OUTPUT)
WORD_BITS = 64
CODEWORD_BITS = 72


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """Bits to flip at one location: (word, bit) pairs, taken modulo what the target holds.

    Word and bit are drawn by whoever injects, without knowing the target's size, so
    the core reduces them: word % (words held), bit % (bits per word).
    """

    location: str
    flips: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if self.location not in LOCATIONS:
            raise ValueError(f"memory hit location {self.location!r} (one of {LOCATIONS})")
        if not self.flips:
            raise ValueError("a memory hit flips at least one bit")


def _flip_float(x: float, bit: int) -> float:
    (u,) = struct.unpack("<Q", struct.pack("<d", x))
    (y,) = struct.unpack("<d", struct.pack("<Q", u ^ (1 << bit)))
    return float(y)


def _flip_int(x: int, bit: int) -> int:
    u: int = (x & (2**WORD_BITS - 1)) ^ (1 << bit)
    return u - 2**WORD_BITS if u >= 2 ** (WORD_BITS - 1) else u


def _count(obj: object) -> int:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | bytes):
        return 0
    if isinstance(obj, float | int):
        return 1
    if isinstance(obj, list | tuple):
        return sum(_count(x) for x in obj)
    return 0


def _rebuild(obj: object, hits: dict[int, list[int]], at: list[int]) -> object:
    """`obj` with the words numbered in `hits` flipped (depth-first order, `at` counts)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | bytes):
        return obj
    if isinstance(obj, float | int):
        index = at[0]
        at[0] += 1
        for bit in hits.get(index, ()):
            obj = _flip_float(obj, bit) if isinstance(obj, float) else _flip_int(obj, bit)
        return obj
    if isinstance(obj, list | tuple):
        items = [_rebuild(x, hits, at) for x in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    return obj


def word_count(obj: object) -> int:
    """The 64-bit numbers a value holds (floats and ints in nested tuples and lists)."""
    return _count(obj)


def flip_words(obj: object, flips: tuple[tuple[int, int], ...]) -> object:
    """`obj` with each (word, bit) flipped; unchanged if it holds no number (None, ERROR)."""
    words = _count(obj)
    if words == 0:
        return obj
    hits: dict[int, list[int]] = {}
    for word, bit in flips:
        hits.setdefault(word % words, []).append(bit % WORD_BITS)
    return _rebuild(obj, hits, [0])
