"""Joining a running cluster: the tick learnt from the peers' round-1 frames, or a cold start.

Pure (no clock, no I/O): the daemon hands it each frame read while joining with
its arrival time, asks whether f+1 peers agree yet, and takes the verdict when
it stops listening. Waiting and serving the links stay with the daemon's loop.
"""

from __future__ import annotations

from voter.core.clock import JoinListener, join_offset
from voter.core.driver import Timing
from voter.core.drops import Drop
from voter.core.frame import Frame, encode_frame


def listen_s(period_s: float, override: float | None) -> float:
    """How long a board listens for running peers before a cold start."""
    return override if override is not None else max(0.5, 5 * period_s)


def first_tick(epoch: float, now: float, period_s: float) -> int:
    """The first whole tick still ahead of `now` on a cluster that started at `epoch`."""
    return max(0, int((now - epoch) // period_s) + 1)


class Joiner:
    """Offsets of the peers heard while joining, and the quorum that settles the tick."""

    def __init__(self, me: int, timing: Timing, baud: int) -> None:
        self.me = me
        self.baud = baud
        self.latency_s = timing.latency_s
        #: the timing quorums' fault bound (OM's, also under SM: clocks are not signed)
        self.f = timing.f
        self.agree_s = timing.slot_s / 2
        self._listener = JoinListener(timing.period_s)
        self._offsets: dict[int, float] = {}

    def observe(self, peer: int, item: Frame | Drop, since_epoch_s: float) -> None:
        """A frame read while joining: only a peer's own round-1 frame to us says its tick."""
        if isinstance(item, Frame) and item.round == 1 and item.src == peer and item.dst == self.me:
            self._listener.observe(peer, item.tick, since_epoch_s, self._delay_s(item))

    def _delay_s(self, frame: Frame) -> float:
        """Expected delay from a peer's t0 to our reading its round-1 frame (joining only).

        Bytes on an 8N1 line take 10 bits each (we see the frame when its last byte
        is in), plus the link's fixed latency; the two-way exchange takes over once
        the board ticks.
        """
        wire = len(encode_frame(frame)) * 10 / self.baud
        return wire + self.latency_s

    def quorum(self) -> bool:
        """Take in what was heard since the last call; True once f+1 peers agree."""
        self._offsets.update(self._listener.offsets())
        agreed = join_offset(list(self._offsets.values()), self.f, self.agree_s)
        return agreed is not None and len(self._offsets) >= self.f + 1

    def verdict(self) -> tuple[float, str, list[int]]:
        """(offset of the cluster's epoch from ours, "peers" or "cold", the peers heard)."""
        agreed = join_offset(list(self._offsets.values()), self.f, self.agree_s)
        if agreed is None and self._offsets:
            # Peers tick but fewer than f+1 agree: follow the lower median anyway and let
            # the fault-tolerant midpoint pull us in once more peers are heard.
            ordered = sorted(self._offsets.values())
            agreed = ordered[(len(ordered) - 1) // 2]
        how = "peers" if agreed is not None else "cold"
        return agreed or 0.0, how, sorted(self._offsets)
