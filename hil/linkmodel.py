"""Line-noise models shared by the pty link fabric and the in-process simulator.

Bit errors at a bit error rate are placed with geometric gaps (one random draw
per error, not per bit), optionally in bursts of `burst` adjacent bits. The
random source is handed in, so both faces replay from a seed.
"""

from __future__ import annotations

import math
from typing import Protocol


class Rng(Protocol):
    def random(self) -> float: ...


def gap(ber: float, rng: Rng) -> int:
    """Bits until the next error event at rate `ber` per bit."""
    if ber >= 1:
        return 0
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - ber))


def flip_bits(data: bytes, ber: float, burst: int, rng: Rng) -> tuple[bytes, int]:
    """`data` with bit errors at `ber` (bursts of `burst` bits); returns (bytes, bits flipped)."""
    if ber <= 0 or not data:
        return data, 0
    bits = len(data) * 8
    out = bytearray(data)
    flipped = 0
    pos = gap(ber, rng)
    while pos < bits:
        for k in range(burst):
            if pos + k < bits:
                out[(pos + k) // 8] ^= 1 << ((pos + k) % 8)
                flipped += 1
        pos += burst + gap(ber, rng)
    return (bytes(out), flipped) if flipped else (data, 0)
