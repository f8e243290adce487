"""Tick-phase agreement between boards: two-way offsets, a min-delay filter, a FT midpoint.

Every board runs a *virtual clock* vt = local_time - epoch; tick k starts at
vt = k * period. The previous design estimated a peer's offset from the one-way
arrival of its round-1 frame and an *assumed* link delay: on a pty cluster that
shares one clock the delay noise (median 1.8 ms, tails past 20 ms) became real
offsets of up to 21 ms and the boards published disagreeing vectors (issue
"Agreement that survives its own timing"). Here the unknown delay cancels:

- a round-1 frame of tick k+1 from peer j echoes when j read *our* round-1 frame
  of tick k (`x`, after j's own t0) and when j wrote its own (`s_j`); we know when
  we wrote ours (`s_i`) and read j's (`y`). With symmetric links
  theta = ((x - s_i) - (y - s_j)) / 2 is j's offset (j's vt minus ours), and
  rtt = x + y - s_i - s_j the round trip, exactly as NTP's four timestamps;
- a stall or a queue only ever *adds* delay, so per peer the sample with the
  smallest round trip in a short window is kept (NTP's clock filter);
- the fault-tolerant midpoint of {0 (ourselves)} and the filtered offsets, f
  largest and f smallest dropped, so a lying or drifting clock cannot drag a loyal one;
- the correction is slewed, capped at `slew_ppm_max` of the period in every
  band; a misalignment beyond the precision bound is stepped only when it is
  confirmed by its *size* over `confirm_ticks` ticks, and the board counts as
  out of sync (it withholds, see `voter.core.driver`) until it is back inside.

Times are floats in seconds handed in by the caller; nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def ft_midpoint(values: Sequence[float], f: int) -> float | None:
    """Drop the f largest and f smallest, return the midpoint of what is left (None if < 2f+1)."""
    if len(values) < 2 * f + 1:
        return None
    ordered = sorted(values)
    kept = ordered[f : len(ordered) - f]
    return (kept[0] + kept[-1]) / 2


@dataclass(frozen=True, slots=True)
class Sample:
    """One two-way exchange with a peer: its offset (in our epoch when taken) and round trip."""

    tick: int
    theta: float  #: peer's vt minus ours, plus our cumulative correction at the time
    rtt: float

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(self, tick: int, theta: float, rtt: float) -> None:
        object.__setattr__(self, "tick", tick)
        object.__setattr__(self, "theta", theta)
        object.__setattr__(self, "rtt", rtt)


def two_way(x: float, s_peer: float, y: float, s_me: float) -> tuple[float, float]:
    """(offset, round trip) from the four lags of one exchange (see the module docstring)."""
    return ((x - s_me) - (y - s_peer)) / 2, x + y - s_me - s_peer


@dataclass
class Correction:
    """What the clock sync decided at the end of a tick."""

    slew: float = 0.0  #: seconds added to our virtual time (epoch -= slew)
    step: float = 0.0  #: a confirmed re-join step (0.0 = none)
    midpoint: float | None = None  #: fault-tolerant midpoint of the filtered offsets
    precision: float | None = None  #: largest pairwise offset among the clocks we see
    in_sync: bool = True  #: |midpoint| within the precision bound (or nothing known)

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        slew: float = 0.0,
        step: float = 0.0,
        midpoint: float | None = None,
        precision: float | None = None,
        in_sync: bool = True,
    ) -> None:
        self.slew = slew
        self.step = step
        self.midpoint = midpoint
        self.precision = precision
        self.in_sync = in_sync


@dataclass
class TwoWaySync:
    """Collects two-way samples per peer and turns them into one correction per tick."""

    period_s: float
    f: int
    #: the largest offset from the midpoint a board may have and still vouch for its timing
    precision_s: float
    window: int = 8
    gain: float = 0.5
    slew_ppm_max: float = 1000.0
    confirm_ticks: int = 3
    #: cumulative correction applied so far (samples are kept relative to it)
    cum: float = 0.0
    steps: int = 0
    _samples: dict[int, deque[Sample]] = field(default_factory=dict)
    _big: deque[float] = field(default_factory=deque)

    def add(self, peer: int, tick: int, theta: float, rtt: float, cum_at: float) -> None:
        """A two-way sample of tick `tick`; `cum_at` = our cumulative correction during it."""
        if rtt < 0:
            return  # impossible delays (a peer's lie or a clock step between the halves)
        q = self._samples.setdefault(peer, deque(maxlen=self.window))
        q.append(Sample(tick, theta + cum_at, rtt))

    def offsets(self, now_tick: int, latest: bool = False) -> dict[int, float]:
        """Each peer's offset from us now: its least-delayed recent sample (or its latest).

        The least-delayed sample is right while the offset holds still; after a jump
        the window mixes offsets from before and after it, so a jump is measured
        (and confirmed) on the latest samples alone.
        """
        out: dict[int, float] = {}
        for peer, q in self._samples.items():
            fresh = [s for s in q if now_tick - s.tick <= self.window]
            if fresh:
                best = fresh[-1] if latest else min(fresh, key=lambda s: s.rtt)
                out[peer] = best.theta - self.cum
        return out

    def latency(self, now_tick: int) -> float | None:
        """The links' fixed one-way delay: median over peers of the least round trip / 2."""
        mins = sorted(
            min(s.rtt for s in q) / 2
            for q in self._samples.values()
            if any(now_tick - s.tick <= self.window for s in q)
        )
        return mins[(len(mins) - 1) // 2] if mins else None

    def correction(self, now_tick: int) -> Correction:
        """This tick's correction; apply it with `applied()` once the epoch has moved."""
        offsets = self.offsets(now_tick)
        values = [0.0, *offsets.values()]
        mid = ft_midpoint(values, self.f)
        out = Correction(midpoint=mid)
        if len(values) > 1:
            out.precision = max(values) - min(values)
        if mid is None:
            self._big.clear()
            return out
        limit = self.slew_ppm_max * 1e-6 * self.period_s
        if abs(mid) <= self.precision_s:
            self._big.clear()
            out.slew = max(-limit, min(limit, mid * self.gain))
            return out
        out.in_sync = False
        jump = ft_midpoint([0.0, *self.offsets(now_tick, latest=True).values()], self.f)
        if jump is None or abs(jump) <= self.precision_s:
            self._big.clear()  # the filtered and the latest view disagree: not a jump
            out.slew = max(-limit, min(limit, mid * self.gain))
            return out
        self._big.append(jump)
        while len(self._big) > self.confirm_ticks:
            self._big.popleft()
        confirmed = (
            len(self._big) == self.confirm_ticks
            and max(self._big) - min(self._big) <= self.precision_s
        )
        if confirmed:
            out.step = sorted(self._big)[len(self._big) // 2]
            self._big.clear()
        else:
            out.slew = max(-limit, min(limit, jump * self.gain))
        return out

    def applied(self, moved: float) -> None:
        """Our virtual time moved by `moved` (a slew or a step): re-reference the samples."""
        self.cum += moved
        if abs(moved) > self.precision_s:
            # After a step the old exchanges describe a clock we no longer have.
            self.steps += 1
            self._samples.clear()

    def forget(self) -> None:
        """Drop every sample (re-join)."""
        self._samples.clear()
        self._big.clear()


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


@dataclass
class JoinListener:
    """Offsets of running peers from the one-way arrival of their round-1 frames.

    Only for joining, before any exchange is possible: the delay is the measured
    (or configured) link latency plus the wire time, and the first two-way
    exchanges after joining pull in what it got wrong.
    """

    period_s: float
    _offsets: dict[int, float] = field(default_factory=dict)

    def observe(self, peer: int, peer_tick: int, arrival_vt: float, delay_s: float) -> None:
        self._offsets[peer] = peer_tick * self.period_s + delay_s - arrival_vt

    def offsets(self) -> Mapping[int, float]:
        return dict(self._offsets)
