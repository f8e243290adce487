"""The one link-fault channel: what a faulty link does to one frame, in every mode.

The pty fabric (firmware-sim, and the serial rig's links) and the in-process
simulator both hand each frame to `LinkChannel.transmit(frame, tick, rng)` and
get back what arrives and how much later than a clean line would deliver it.
So `link-drop:0-1:0.01` means the same thing everywhere: the same checks, in
the same order, drawing the same random numbers for the same frames. Each face
keeps only its own notion of time (a wire that stays in order at the baud rate)
and of the tick (the fabric: its clock since tick 0; the simulator: the sender's).

Bit errors at a bit error rate are placed with geometric gaps (one random draw
per error, not per bit), optionally in bursts of `burst` adjacent bits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from voter.faultmodel import LinkBitflip, LinkDelay, LinkDrop, LinkFault, LinkJitter


class Rng(Protocol):
    def random(self) -> float: ...

    def uniform(self, a: float, b: float) -> float: ...


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


@dataclass
class ChannelStats:
    """What the faults did on one direction (the same names in every mode)."""

    frames: int = 0
    dropped_frames: int = 0
    delayed_frames: int = 0
    jittered_frames: int = 0
    corrupted_frames: int = 0
    flipped_bits: int = 0


@dataclass(frozen=True, slots=True)
class Transit:
    """One frame through the channel: the bytes that arrive (None: lost) and the extra delay."""

    data: bytes | None
    delay_s: float = 0.0


@dataclass
class LinkChannel:
    """The faults on one direction of one link, in the order they were given."""

    faults: list[LinkFault] = field(default_factory=list)
    stats: ChannelStats = field(default_factory=ChannelStats)

    @classmethod
    def for_direction(cls, faults: Iterable[LinkFault], src: int, dst: int) -> LinkChannel:
        return cls([f for f in faults if f.link.carries(src, dst)])

    def __bool__(self) -> bool:
        """True if a fault could ever touch this direction (else: a clean wire)."""
        return bool(self.faults)

    def transmit(self, data: bytes, tick: int, rng: Rng) -> Transit:
        """What a frame sent at `tick` becomes: lost, late, jittered, corrupted or clean."""
        self.stats.frames += 1
        delay = 0.0
        for f in self.faults:
            if not f.window.active(tick):
                continue
            match f:
                case LinkDrop():
                    if rng.random() < f.p:
                        self.stats.dropped_frames += 1
                        return Transit(None)
                case LinkDelay():
                    delay += f.delay_ms / 1000
                    self.stats.delayed_frames += 1
                case LinkJitter():
                    if f.max_ms > 0:
                        delay += rng.uniform(0.0, f.max_ms / 1000)
                        self.stats.jittered_frames += 1
                case LinkBitflip():
                    if f.ber > 0:
                        data, flipped = flip_bits(data, f.ber, f.burst, rng)
                        if flipped:
                            self.stats.flipped_bits += flipped
                            self.stats.corrupted_frames += 1
        return Transit(data, delay)
