"""The checker of `hil.checks`, fed line by line as a run makes them, with bounded state.

`check()` needs the whole logs in memory (about 5 KB per cluster-tick); a soak of
10^6 ticks cannot hold them. `StreamCheck` takes each board's records and events
in the order the board wrote them and judges tick k as soon as every loyal board
that is up has decided a tick at or past k (a board that is down cannot write k
any more: a restarted board joins past the ticks its peers have decided). What it
keeps: the ticks in flight (a few), per board the open up-interval and its open
outage run, and the result's own counters. `result()` returns exactly the
`CheckResult` that `check()` gives for the same logs (tests/test_streamcheck.py
holds the two equal on the shipped campaigns' scenarios), except that the ticks
with a violation (`violation_ticks`) grow with the violations, as they must.

It relies on what the boards' writers promise: per board, decision ticks only go
forward, and a "skip" / "rejoin" event comes before the decisions after its gap.
A line that breaks that raises `StreamOrderError` instead of a quietly different
verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hil.checks import CheckResult, Violation, judge_tick
from hil.isolation import IsolationLedger
from voter.core.record import DecisionRecord

#: a skip event covers at most this many ticks (as `NodeLog.skipped` reads it)
SKIP_SPAN_MAX = 100_000
#: liveness violations kept per up-interval (the rest are counted), as `check` does
LIVENESS_KEPT_PER_INTERVAL = 5
OUTAGES_KEPT = 20


class StreamOrderError(RuntimeError):
    """A line arrived that the stream had already judged past: the writer broke its order."""


@dataclass
class _BoardStream:
    """One loyal board's liveness state: the open up-interval, processed up to `done`."""

    node: int
    up: bool = False
    #: the last decision tick (any life), or the tick before the current life's join
    last: int = -1
    #: the current up-interval's join tick (None before the first join)
    start: int | None = None
    #: ticks of the current interval processed for liveness, up to and including this one
    done: int = -1
    #: in-window ticks of the current interval processed so far (hi >= lo in `check`)
    seen: int = 0
    missing: int = 0
    dark_from: int | None = None
    skips: list[tuple[int, int]] = field(default_factory=list)
    liveness: list[Violation] = field(default_factory=list)

    def skipped(self, t: int) -> bool:
        return any(lo <= t < hi for lo, hi in self.skips)


class StreamCheck:
    """Feed `record` and `event` in each board's order; `result()` once the run is over."""

    def __init__(
        self,
        nodes: Iterable[int],
        faulty: Iterable[int],
        window: tuple[int, int] | None = None,
        period_us: float | None = None,
    ) -> None:
        bad = set(faulty)
        self.loyal = sorted(i for i in nodes if i not in bad)
        self.window = window
        self.period_us = period_us
        self.res = CheckResult(list(self.loyal))
        self._boards = {i: _BoardStream(i) for i in self.loyal}
        self._ledger = IsolationLedger(list(self.loyal))
        self._flight: dict[int, dict[int, DecisionRecord]] = {}
        self._judged = -1  # every tick up to this one is judged
        self._finished = False

    # -- feeding -----------------------------------------------------------------------
    def event(self, node: int, ev: Mapping[str, Any]) -> None:
        b = self._boards.get(node)
        if b is None:
            return
        self._ledger.event(node, ev)
        kind, tick = ev.get("event"), ev.get("tick")
        if kind == "joined" and isinstance(tick, int):
            self._close_interval(b)
            b.up, b.start, b.done = True, tick, tick - 1
            b.last = max(b.last, tick - 1)
        elif kind in ("crash", "stop"):
            b.up = False
            self._advance()
        elif kind in ("skip", "rejoin") and isinstance(tick, int):
            to = ev.get("to")
            if isinstance(to, int):
                b.skips.append((tick, min(to, tick + SKIP_SPAN_MAX)))

    def record(self, node: int, line: DecisionRecord) -> None:
        b = self._boards.get(node)
        if b is None:
            return
        t = line.tick
        if t <= b.last or t <= self._judged:
            raise StreamOrderError(f"board {node}: tick {t} after tick {max(b.last, self._judged)}")
        b.last = t
        if self._inside(t):
            self._flight.setdefault(t, {})[node] = line
        if b.start is not None and t >= b.start:
            for gap in range(b.done + 1, t):
                self._liveness_tick(b, gap, decided=False, published=False)
            self._liveness_tick(b, t, decided=True, published=line.published)
            b.done = t
            b.skips = [(lo, hi) for lo, hi in b.skips if hi > t]
        self._advance()

    def result(self) -> CheckResult:
        """Judge what is still in flight, close every interval; the stream takes no more lines."""
        if not self._finished:
            self._finished = True
            self._judge_upto(max(self._flight, default=self._judged))
            for b in self._boards.values():
                self._close_interval(b)
            self._merge_liveness()
            self.res.judge_isolation(
                self._ledger, {i: b.last for i, b in self._boards.items() if b.last >= 0}
            )
        return self.res

    # -- judging -----------------------------------------------------------------------
    def _inside(self, t: int) -> bool:
        return self.window is None or self.window[0] <= t <= self.window[1]

    def _advance(self) -> None:
        """Judge the ticks every loyal board that is up has decided or passed."""
        ups = [b.last for b in self._boards.values() if b.up]
        if ups:
            self._judge_upto(min(ups))

    def _judge_upto(self, k: int) -> None:
        if k <= self._judged:
            return
        for t in sorted(x for x in self._flight if x <= k):
            lines = self._flight.pop(t)
            judge_tick(self.res, t, {i: lines[i] for i in sorted(lines)}, self.period_us)
        self._judged = k

    def _liveness_tick(self, b: _BoardStream, t: int, decided: bool, published: bool) -> None:
        """One tick of an up-interval, as `checks._check_liveness` counts it."""
        if not self._inside(t):
            return
        res = self.res
        i = b.node
        b.seen += 1
        res.ticks_up[i] = res.ticks_up.get(i, 0) + 1
        res.outages.setdefault(i, [])
        if published:
            res.published_up[i] = res.published_up.get(i, 0) + 1
            self._end_outage(b, t)
        elif b.dark_from is None:
            b.dark_from = t
        if not decided and not b.skipped(t):
            res.violation_ticks["liveness"].add(t)
            res.counts["liveness"] += 1
            b.missing += 1
            if b.missing <= LIVENESS_KEPT_PER_INTERVAL and len(b.liveness) < res.keep:
                b.liveness.append(Violation("liveness", t, [i], "no decision while up"))

    def _end_outage(self, b: _BoardStream, t: int) -> None:
        if b.dark_from is not None:
            runs = self.res.outages.setdefault(b.node, [])
            if len(runs) < OUTAGES_KEPT:
                runs.append((b.dark_from, t - b.dark_from))
            b.dark_from = None

    def _close_interval(self, b: _BoardStream) -> None:
        """The up-interval ends at its last decision: an open outage run ends with it."""
        if b.seen:
            last_seen = b.done if self.window is None else min(b.done, self.window[1])
            self._end_outage(b, last_seen + 1)
        b.start, b.seen, b.missing, b.dark_from = None, 0, 0, None

    def _merge_liveness(self) -> None:
        """`check` adds liveness violations after every per-tick one, board by board."""
        res = self.res
        for i in self.loyal:
            res.ticks_up.setdefault(i, 0)
            res.published_up.setdefault(i, 0)
            for v in self._boards[i].liveness:
                if len(res.violations) < res.keep:
                    res.violations.append(v)
