"""Tick-phase agreement between boards: the Welch-Lynch fault-tolerant midpoint, pure.

Every board runs a *virtual clock* vt = local_time - epoch; tick k starts at
vt = k * period. A peer's round-1 frame for tick k is sent at the peer's vt =
k * period, so its arrival gives that peer's offset from us. Once per tick the
board corrects its epoch by the fault-tolerant midpoint of {0 (itself)} and the
peers' offsets with the f largest and f smallest dropped: a board with a drifting
or lying clock is always among the dropped extremes, so it cannot drag the loyal
ones. Times are floats in seconds handed in by the caller; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def ft_midpoint(values: Sequence[float], f: int) -> float | None:
    """Drop the f largest and f smallest, return the midpoint of what is left (None if < 2f+1)."""
    if len(values) < 2 * f + 1:
        return None
    ordered = sorted(values)
    kept = ordered[f : len(ordered) - f]
    return (kept[0] + kept[-1]) / 2


@dataclass
class ClockSync:
    """Collects peer offsets during a tick and turns them into one epoch correction.

    Three bands, by the size of the fault-tolerant midpoint:

    - below `fast_s`: slewed by `gain`, clamped to `slew_ppm_max` of the period.
      The clamp bounds how far an uncompensated link delay (every board sees it
      alike, so all slew the same way) can pull the cluster's tick rate; crystals
      are good to ~50 ppm, the default allows 1000.
    - from `fast_s`: a real misalignment (start-up, a re-joining board): corrected
      by `gain` per tick, or at once from `step_s`, but only when two consecutive
      ticks agree on the direction, so one slow tick of a peer (a page fault, the
      first tick after start) cannot throw the board off.
    """

    period_s: float
    f: int
    step_s: float
    gain: float = 0.5
    slew_ppm_max: float = 1000.0
    fast_s: float = 0.0
    #: corrections smaller than this count as "in sync"
    tolerance_s: float = 0.0
    in_sync_ticks: int = 0
    #: the raw fault-tolerant midpoint of the last tick (None: too few peers heard)
    last_midpoint: float | None = None
    _pending: int = 0  # sign of an unconfirmed large offset
    _offsets: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tolerance_s <= 0:
            self.tolerance_s = self.step_s / 2
        if self.fast_s <= 0:
            self.fast_s = self.step_s / 4

    def observe(self, peer: int, peer_tick: int, arrival_vt: float, delay_s: float) -> float:
        """Record peer's round-1 frame for `peer_tick` seen at our virtual time `arrival_vt`."""
        offset = peer_tick * self.period_s + delay_s - arrival_vt
        self._offsets[peer] = offset
        return offset

    def offsets(self) -> Mapping[int, float]:
        return dict(self._offsets)

    def discard(self) -> None:
        """Forget this tick's samples (e.g. the first tick after joining, never typical)."""
        self._offsets.clear()

    def correction(self) -> float:
        """This tick's epoch correction (seconds to add to our virtual time); resets samples."""
        values = [0.0, *self._offsets.values()]
        self._offsets.clear()
        mid = ft_midpoint(values, self.f)
        self.last_midpoint = mid
        if mid is None:
            self.in_sync_ticks = 0
            self._pending = 0
            return 0.0
        if abs(mid) < self.tolerance_s:
            self.in_sync_ticks += 1
        else:
            self.in_sync_ticks = 0
        if abs(mid) < self.fast_s:
            self._pending = 0
            limit = self.slew_ppm_max * 1e-6 * self.period_s
            return max(-limit, min(limit, mid * self.gain))
        sign = 1 if mid > 0 else -1
        if self._pending != sign:
            self._pending = sign  # wait for a second tick to confirm
            return 0.0
        return mid if abs(mid) >= self.step_s else mid * self.gain


def join_offset(offsets: Sequence[float], f: int, agree_s: float) -> float | None:
    """For a board that is not ticking yet: the peers' common offset, if f+1 of them agree.

    The board's own clock is arbitrary before it joins, so it is left out; the
    lower median of the peers is taken and must be backed by f+1 peers within
    `agree_s` of it (so at least one loyal board vouches for the tick).
    """
    if len(offsets) < f + 1:
        return None
    ordered = sorted(offsets)
    median = ordered[(len(ordered) - 1) // 2]
    backing = sum(1 for o in ordered if abs(o - median) <= agree_s)
    return median if backing >= f + 1 else None
