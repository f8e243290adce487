"""`voter cluster status`: each board's health from the tail of its decision log.

A board says how it is doing in its own log: every decided tick (published or
withheld, and why), whether its clock is in sync, its precision, and events
(joined, stop, overrun, minority). On a board, the log directory holds its own
log; on a ground machine that collects the boards' logs (rsync, the HIL rig's
copies), it holds all of them, and the last ticks the boards have in common
show whether their published vectors agree.

Only the tail of each file is read (`TAIL_BYTES`): a board's log grows by ~1.3 GB
a day at 50 Hz and the status must answer at once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voter.core.record import DecisionRecord, parse_line

#: how much of the end of each log is read (~2,800 decision lines of a 4-board OM(1) cluster)
TAIL_BYTES = 1 << 20


@dataclass
class BoardStatus:
    """What the end of one board's log says."""

    node: int
    path: Path
    found: bool = False
    last: DecisionRecord | None = None
    published: int = 0
    withheld: Counter[str] = field(default_factory=Counter)
    in_sync: int = 0
    last_event: dict[str, Any] | None = None
    age_s: float | None = None  # since the file was last written
    #: the published vectors of the tail, by tick (to compare boards)
    vectors: dict[int, Any] = field(default_factory=dict)

    @property
    def decided(self) -> int:
        return self.published + sum(self.withheld.values())

    @property
    def state(self) -> str:
        """One word: missing, stopped, stale, out-of-sync, withholding, ok."""
        if not self.found or self.last is None:
            return "missing" if not self.found else "no decisions"
        if self.last_event is not None and self.last_event.get("event") == "stop":
            return "stopped"
        if self.age_s is not None and self.age_s > 5.0:
            return "stale"
        if self.last.sync is False:
            return "out-of-sync"
        if self.last.withheld is not None:
            return "withholding"
        return "ok"


def read_status(path: Path, node: int, now: float | None = None) -> BoardStatus:
    """The status of board `node` from its log at `path` (missing file: found False)."""
    st = BoardStatus(node, path)
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - TAIL_BYTES))
            tail = fh.read()
            mtime = path.stat().st_mtime
    except OSError:
        return st
    st.found = True
    st.age_s = max(0.0, (time.time() if now is None else now) - mtime)
    lines = tail.decode("utf-8", errors="replace").splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first is cut
    for text in lines:
        rec = parse_line(text)
        if rec is None:
            _event(st, text)
            continue
        st.last = rec
        if rec.published:
            st.published += 1
            st.vectors[rec.tick] = rec.vector
        else:
            st.withheld[str(rec.withheld)] += 1
        st.in_sync += rec.sync is True
    return st


def _event(st: BoardStatus, text: str) -> None:
    try:
        obj = json.loads(text)
    except ValueError:
        return
    if isinstance(obj, dict) and isinstance(obj.get("event"), str):
        st.last_event = obj


def agreement(boards: list[BoardStatus]) -> tuple[int, list[int]]:
    """(ticks every found board published in the tail, the ticks among them where they differ)."""
    found = [b for b in boards if b.vectors]
    if len(found) < 2:
        return 0, []
    common = set.intersection(*(set(b.vectors) for b in found))
    differ = sorted(t for t in common if any(b.vectors[t] != found[0].vectors[t] for b in found))
    return len(common), differ


def render(boards: list[BoardStatus]) -> list[str]:
    """The status as lines for a terminal."""
    out = []
    for b in boards:
        if not b.found:
            out.append(f"node {b.node}: missing ({b.path})")
            continue
        last = b.last
        if last is None:
            out.append(f"node {b.node}: no decisions in {b.path}")
            continue
        prec = last.timing.get("precision_us")
        withheld = ", ".join(f"{r} {n}" for r, n in b.withheld.most_common()) or "none"
        event = b.last_event.get("event") if b.last_event else "-"
        age = "?" if b.age_s is None else f"{b.age_s:.1f} s ago"
        out.append(
            f"node {b.node}: {b.state:<12} tick {last.tick} ({age})   "
            f"published {b.published}/{b.decided}   withheld: {withheld}   "
            f"in sync {b.in_sync}/{b.decided}   precision "
            f"{'?' if prec is None else f'{prec / 1e3:.2f} ms'}   last event: {event}"
        )
    common, differ = agreement(boards)
    if common:
        verdict = "agree" if not differ else f"DIFFER at {len(differ)} (first tick {differ[0]})"
        out.append(f"published vectors over {common} common ticks: {verdict}")
    return out
