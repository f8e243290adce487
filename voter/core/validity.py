"""Sensor validity before the vote: a board's checks on its own reading, per channel.

Pure: the tick number comes in, the state is held here (one `Validity` per board),
nothing is read from a clock, a file or a random source. A channel that fails a
check goes out as ERROR (a None channel), so mid-value select skips it, and the
reason is counted. Modelled on PX4's DataValidator (timeout, stale, error
density) with ArduPilot's range and rate limits added; see docs/design.md,
"Sensor validity".

A board checks only its own reading: it alone sees its sensor's history, and it
does so before it commands the value, so the check costs no message and cannot
be used by a peer to silence a loyal board. What it cannot see (a sensor that
drifts slowly inside its range and rate) is still left to the vote.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from voter.core.values import Value

#: the reasons, in the order they are checked (the first that applies is the one counted)
TIMEOUT = "timeout"
RANGE = "range"
STALE = "stale"
RATE = "rate"
DENSITY = "density"
REASONS = (TIMEOUT, RANGE, STALE, RATE, DENSITY)
#: the largest sample count or window a limit may name (bounds each channel's memory)
WINDOW_MAX = 100_000


@dataclass(frozen=True)
class ChannelLimits:
    """One channel's thresholds; a field left at its default switches that check off.

    `stale_samples`: the same value this many samples running is stuck (>= 2).
    `max_rate`: units per second between this sample and the last valid one.
    `timeout_ticks`: this many ticks running without a sample is a timeout.
    `error_window`, `errors_max`: more than `errors_max` failed or missing samples in
    the last `error_window` ticks makes even a passing sample invalid (error density).
    """

    min: float | None = None
    max: float | None = None
    stale_samples: int = 0
    max_rate: float | None = None
    timeout_ticks: int = 0
    error_window: int = 0
    errors_max: int = 0

    @property
    def active(self) -> bool:
        return self != ChannelLimits()

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the defaults (what a config file names)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != f.default
        }


LIMIT_KEYS = tuple(f.name for f in fields(ChannelLimits))


@dataclass
class _Channel:
    """What one channel's checks remember between samples."""

    last: float | None = None  #: the last sample, valid or not (stale)
    same: int = 0  #: how many samples running have been `last`
    good: float | None = None  #: the last valid sample (rate)
    good_tick: int = 0
    seen_tick: int | None = None  #: the last tick with a sample (timeout)
    errors: deque[int] = field(default_factory=deque)  #: ticks of recent errors (density)


class Validity:
    """A board's validity checks on its own readings, one state per channel."""

    def __init__(
        self, limits: tuple[ChannelLimits, ...], names: tuple[str, ...], period_s: float
    ) -> None:
        if len(limits) != len(names):
            raise ValueError(f"{len(limits)} channel limits for {len(names)} channels")
        self.limits = limits
        self.names = names
        self.period_s = period_s
        self._state = [_Channel() for _ in limits]
        #: (channel name, reason) -> channel samples made invalid, since the board started
        self.counts: dict[tuple[str, str], int] = {}

    def check(self, tick: int, reading: Value) -> tuple[Value, dict[str, str]]:
        """The reading as it may be commanded, and {channel name: reason} for each it voided."""
        if reading is not None and not isinstance(reading, tuple):
            return reading, {}  # not a sensor reading (a label domain): nothing to check
        values: list[float | None] = [None] * len(self.limits) if reading is None else list(reading)
        flagged: dict[str, str] = {}
        for ch, lim in enumerate(self.limits):
            if not lim.active or ch >= len(values):
                continue
            reason = self._channel(ch, lim, tick, values[ch])
            if reason is not None:
                name = self.names[ch]
                flagged[name] = reason
                self.counts[(name, reason)] = self.counts.get((name, reason), 0) + 1
                values[ch] = None
        if not flagged:
            return reading, {}
        return tuple(values), flagged

    def _channel(self, ch: int, lim: ChannelLimits, tick: int, x: float | None) -> str | None:
        """One channel's sample through the checks; the reason it fails, or None."""
        st = self._state[ch]
        if lim.error_window:
            while st.errors and st.errors[0] <= tick - lim.error_window:
                st.errors.popleft()
        if x is None:
            # No sample: ERROR whatever the checks say; it counts toward the error density.
            seen = st.seen_tick
            gap = tick - seen if seen is not None else tick + 1
            self._error(st, lim, tick)
            return TIMEOUT if lim.timeout_ticks and gap >= lim.timeout_ticks else None
        st.seen_tick = tick
        st.same = st.same + 1 if x == st.last else 1
        st.last = x
        reason = self._failed(st, lim, tick, x)
        if reason is not None:
            self._error(st, lim, tick)
            return reason
        st.good, st.good_tick = x, tick
        if lim.error_window and len(st.errors) > lim.errors_max:
            return DENSITY
        return None

    def _failed(self, st: _Channel, lim: ChannelLimits, tick: int, x: float) -> str | None:
        if (lim.min is not None and x < lim.min) or (lim.max is not None and x > lim.max):
            return RANGE
        if lim.stale_samples and st.same >= lim.stale_samples:
            return STALE
        if lim.max_rate is not None and st.good is not None:
            allowed = lim.max_rate * (tick - st.good_tick) * self.period_s
            if abs(x - st.good) > allowed:
                return RATE
        return None

    @staticmethod
    def _error(st: _Channel, lim: ChannelLimits, tick: int) -> None:
        if lim.error_window:
            st.errors.append(tick)  # at most error_window entries: older ones left above

    def summary(self) -> dict[str, dict[str, int]]:
        """{channel: {reason: count}}: for the stop line, STATUS= and the reports."""
        out: dict[str, dict[str, int]] = {}
        for (name, reason), n in sorted(self.counts.items()):
            out.setdefault(name, {})[reason] = n
        return out


def from_limits(
    limits: tuple[ChannelLimits, ...], names: tuple[str, ...], period_s: float
) -> Validity | None:
    """A board's checks, or None when no channel has a threshold (today's behaviour)."""
    if not any(lim.active for lim in limits):
        return None
    return Validity(limits, names, period_s)
