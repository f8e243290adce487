"""Agreement, validity and liveness, checked from the boards' decision logs (SPEC.md).

The checker reads only what the boards wrote: a board's lines are its word, so
the same checker serves simulated runs, pty runs and real boards. Faulty
(traitor) boards are left out of every property; a board that crashed is held
to liveness only while it was up (between its "joined" and its stop or crash).

A board that knows its tick went wrong still writes the line but marks it
`"withheld": REASON`: that decision never left the board. The safety properties
are promises about what the boards *published*, so agreement, validity,
integrity and timeliness are judged over published lines only; a withheld line
counts as decided for liveness and is reported as lost availability instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.isolation import IsolationLedger
from voter.core.driver import WITHHELD_REASONS as DRIVER_WITHHELD_REASONS
from voter.core.record import DecisionRecord

#: Reasons the boards write in `withheld` (SPEC.md; the tick driver's list); any other
#: string is still honoured.
WITHHELD_REASONS = DRIVER_WITHHELD_REASONS


@dataclass
class NodeLog:
    node: int
    decisions: dict[int, DecisionRecord] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: int = 0

    def up_intervals(self) -> list[tuple[int, int]]:
        """[first, last] tick ranges the board was up: from each join to the last decision."""
        joins = sorted(e["tick"] for e in self.events if e.get("event") == "joined")
        ticks = sorted(self.decisions)
        out: list[tuple[int, int]] = []
        for k, start in enumerate(joins):
            end_limit = joins[k + 1] if k + 1 < len(joins) else None
            inside = [t for t in ticks if t >= start and (end_limit is None or t < end_limit)]
            if inside:
                out.append((start, inside[-1]))
        return out

    def skipped(self) -> set[int]:
        """Ticks the board declared it skipped (too late to send, or re-joining after a clock
        jump): {"event": "skip" | "rejoin", "tick": T, "to": U} covers T..U-1. Like a withheld
        line they are lost availability, not a liveness violation: the board said so."""
        out: set[int] = set()
        for e in self.events:
            t, to = e.get("tick"), e.get("to")
            if e.get("event") in ("skip", "rejoin") and isinstance(t, int) and isinstance(to, int):
                out.update(range(t, min(to, t + 100_000)))
        return out

    def published(self, tick: int) -> DecisionRecord | None:
        """The record of `tick` if the board published it (decided and did not withhold it)."""
        line = self.decisions.get(tick)
        if line is None or line.withheld is not None:
            return None
        return line


def read_log(path: Path, node: int) -> NodeLog:
    log = NodeLog(node)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return log
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            log.bad_lines += 1  # e.g. a line cut by a power loss
            continue
        if not isinstance(obj, dict):
            log.bad_lines += 1
        elif "event" in obj:
            log.events.append(obj)
        else:
            try:
                record = DecisionRecord.parse(obj)
            except ValueError:
                log.bad_lines += 1
                continue
            log.decisions[record.tick] = record
    return log


def read_run(run_dir: Path, nodes: int) -> dict[int, NodeLog]:
    return {i: read_log(run_dir / f"node{i}.jsonl", i) for i in range(nodes)}


@dataclass
class Violation:
    prop: str
    tick: int
    nodes: list[int]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "property": self.prop,
            "tick": self.tick,
            "nodes": self.nodes,
            "detail": self.detail,
        }


PROPERTIES = ("agreement", "validity", "liveness", "integrity", "timeliness", "isolation")


@dataclass
class CheckResult:
    loyal: list[int]
    ticks_checked: int = 0
    #: loyal lines in the checked ticks, published or withheld (every one is a decision)
    decisions: int = 0
    #: loyal lines in the checked ticks that were published (the ones the properties judge)
    published: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROPERTIES, 0))
    violations: list[Violation] = field(default_factory=list)
    keep: int = 20
    #: every tick with at least one violation, per property (the kept list is only the first few)
    violation_ticks: dict[str, set[int]] = field(
        default_factory=lambda: {p: set() for p in PROPERTIES}
    )
    #: per loyal board: ticks it was up inside the window, and how many of them it published
    ticks_up: dict[int, int] = field(default_factory=dict)
    published_up: dict[int, int] = field(default_factory=dict)
    #: per loyal board: withheld lines per reason
    withheld: dict[int, dict[str, int]] = field(default_factory=dict)
    #: per loyal board: runs of ticks up but not published, as (first tick, ticks): how long
    #: a board that lost its timing took to publish again (the first 20 runs)
    outages: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: diagnosis (hil.isolation): isolations, re-admissions, detection latency, false isolations
    isolation: dict[str, Any] = field(default_factory=dict)

    def add(self, v: Violation) -> None:
        self.counts[v.prop] += 1
        self.violation_ticks.setdefault(v.prop, set()).add(v.tick)
        if len(self.violations) < self.keep:
            self.violations.append(v)

    @property
    def agreement(self) -> bool:
        return self.counts["agreement"] == 0

    @property
    def validity(self) -> bool:
        return self.counts["validity"] == 0

    @property
    def liveness(self) -> bool:
        return self.counts["liveness"] == 0

    @property
    def integrity(self) -> bool:
        return self.counts["integrity"] == 0

    @property
    def timeliness(self) -> bool:
        return self.counts["timeliness"] == 0

    @property
    def safe(self) -> bool:
        """An isolation that is not agreed, or of a loyal board, is unsafe (docs/design.md)."""
        return self.agreement and self.validity and self.integrity and self.isolated_ok

    @property
    def isolated_ok(self) -> bool:
        return self.counts["isolation"] == 0

    def judge_isolation(self, ledger: IsolationLedger, last_tick: Mapping[int, int]) -> None:
        """The diagnosis events of the whole run (once, at the end)."""
        self.isolation, problems = ledger.verdict(last_tick)
        for tick, nodes, detail in problems:
            self.add(Violation("isolation", tick, nodes, detail))

    @property
    def holds(self) -> bool:
        """Every property: the run's outcome is "safe" exactly when this is true."""
        return self.safe and self.liveness and self.timeliness

    def availability(self) -> dict[int, float | None]:
        """Per loyal board: published / ticks up (None for a board that was never up).

        Withholding is the boards' way of staying safe when their timing is in
        doubt; this is what it costs, and a run that is "safe" at 60 % is not healthy.
        """
        return {
            i: (self.published_up.get(i, 0) / up if up else None)
            for i, up in sorted(self.ticks_up.items())
        }

    def undetected(self) -> tuple[int, int | None]:
        """The longest run of consecutive ticks with a published disagreement: (length, first tick).

        A single bad tick might be a glitch the next tick repairs; a long run means
        the boards' own checks (minority detection, confirmation) never noticed.
        """
        ticks = sorted(self.violation_ticks.get("agreement", ()))
        best, best_at = 0, None
        run, run_at, prev = 0, None, None
        for t in ticks:
            if prev is not None and t == prev + 1:
                run += 1
            else:
                run, run_at = 1, t
            if run > best:
                best, best_at = run, run_at
            prev = t
        return best, best_at

    def to_json(self) -> dict[str, Any]:
        availability = self.availability()
        longest, longest_at = self.undetected()
        return {
            "loyal": self.loyal,
            "ticks_checked": self.ticks_checked,
            "decisions": self.decisions,
            "published": self.published,
            "agreement": self.agreement,
            "validity": self.validity,
            "liveness": self.liveness,
            "integrity": self.integrity,
            "timeliness": self.timeliness,
            "availability": {
                str(i): (None if a is None else round(a, 6)) for i, a in availability.items()
            },
            "ticks_up": {str(i): n for i, n in sorted(self.ticks_up.items())},
            "withheld": {
                str(i): dict(sorted(reasons.items()))
                for i, reasons in sorted(self.withheld.items())
            },
            "undetected": longest,
            "undetected_from_tick": longest_at,
            "outages": {
                str(i): [list(run) for run in runs] for i, runs in sorted(self.outages.items())
            },
            "isolation": self.isolation,
            "violation_counts": self.counts,
            "violations": [v.to_json() for v in self.violations],
        }


def check(
    logs: Mapping[int, NodeLog],
    faulty: Iterable[int],
    window: tuple[int, int] | None = None,
    period_us: float | None = None,
) -> CheckResult:
    """Check every tick (inside `window`, if given) over the loyal boards' published lines.

    agreement: identical vectors among the published lines; validity: entry j of
    every published vector is loyal board j's own reading (see `_check_validity`
    for a board that withheld); integrity: every voted channel is a value some
    entry of the vector holds (the vote invents nothing); timeliness: a published
    line decided within the period (`decided_us`; `published_us` may exceed the
    period by design in the confirmed publication mode and is not judged);
    liveness: no tick missing while a board was up (a withheld line is decided).
    """
    bad = set(faulty)
    loyal = sorted(i for i in logs if i not in bad)
    res = CheckResult(loyal)
    ticks = sorted({t for i in loyal for t in logs[i].decisions})
    if window is not None:
        ticks = [t for t in ticks if window[0] <= t <= window[1]]
    for t in ticks:
        judge_tick(
            res, t, {i: logs[i].decisions[t] for i in loyal if t in logs[i].decisions}, period_us
        )
    for i in loyal:
        _check_liveness(res, logs[i], window)
    ledger = IsolationLedger(loyal)
    for i in loyal:
        for ev in logs[i].events:
            ledger.event(i, ev)
    res.judge_isolation(ledger, {i: max(logs[i].decisions) for i in loyal if logs[i].decisions})
    return res


def judge_tick(
    res: CheckResult, t: int, lines: Mapping[int, DecisionRecord], period_us: float | None
) -> None:
    """Every per-tick property of tick `t` over the loyal lines decided there (in board order).

    Shared by `check` and the streaming checker (`hil.streamcheck`), so the two judge alike.
    """
    published = {i: line for i, line in lines.items() if line.published}
    res.ticks_checked += 1
    res.decisions += len(lines)
    res.published += len(published)
    for i, line in lines.items():
        reason = line.withheld
        if reason is not None:
            per_board = res.withheld.setdefault(i, {})
            per_board[reason] = per_board.get(reason, 0) + 1
    _check_agreement(res, t, published)
    _check_validity(res, t, lines, published)
    for i, line in published.items():
        bad_out = _invented(line)
        if bad_out is not None:
            res.add(Violation("integrity", t, [i], bad_out))
        decided = line.timing["decided_us"]
        if period_us is not None and isinstance(decided, int | float) and decided > period_us:
            res.add(Violation("timeliness", t, [i], f"decided {decided:.0f} us after t0"))


def _check_agreement(res: CheckResult, t: int, published: Mapping[int, DecisionRecord]) -> None:
    vectors: dict[str, list[int]] = {}
    for i, line in published.items():
        vectors.setdefault(json.dumps(line.vector), []).append(i)
    if len(vectors) > 1:
        groups = sorted(vectors.values())
        res.add(
            Violation(
                "agreement",
                t,
                sorted(published),
                f"{len(vectors)} different published vectors: groups {groups}",
            )
        )


def _check_validity(
    res: CheckResult,
    t: int,
    lines: Mapping[int, DecisionRecord],
    published: Mapping[int, DecisionRecord],
) -> None:
    """Entry j of every published loyal vector must be loyal board j's own reading.

    j's reading comes from j's line even when j withheld its decision: withholding
    is about j's output, and its reading is still its own. A board that withheld
    has, however, declared its tick untrustworthy (it may have sent late or not at
    all), so for such a j an empty entry (null: ERROR, no value) is an omission the
    protocol is allowed; a *value* other than its reading is still a violation.
    """
    for j, line_j in lines.items():
        local = line_j.local
        omission_ok = line_j.withheld is not None
        wrong = [
            i
            for i, line in published.items()
            if _entry(line, j) != local and not (omission_ok and _entry(line, j) is None)
        ]
        if wrong:
            why = " (withheld its own decision)" if omission_ok else ""
            res.add(
                Violation(
                    "validity", t, wrong, f"entry {j} differs from board {j}'s own reading{why}"
                )
            )


def _check_liveness(res: CheckResult, log: NodeLog, window: tuple[int, int] | None) -> None:
    """No tick missing while up; also counts the ticks up and published for availability."""
    i = log.node
    res.ticks_up.setdefault(i, 0)
    res.published_up.setdefault(i, 0)
    for start, end in log.up_intervals():
        lo, hi = start, end
        if window is not None:
            lo, hi = max(lo, window[0]), min(hi, window[1])
        if hi < lo:
            continue
        res.ticks_up[i] += hi - lo + 1
        res.published_up[i] += sum(1 for t in range(lo, hi + 1) if log.published(t) is not None)
        runs = res.outages.setdefault(i, [])
        first: int | None = None
        for t in range(lo, hi + 2):
            dark = t <= hi and log.published(t) is None
            if dark and first is None:
                first = t
            elif not dark and first is not None:
                if len(runs) < 20:
                    runs.append((first, t - first))
                first = None
        skipped = log.skipped()
        missing = [t for t in range(lo, hi + 1) if t not in log.decisions and t not in skipped]
        for t in missing[:5]:
            res.add(Violation("liveness", t, [i], "no decision while up"))
        res.counts["liveness"] += max(0, len(missing) - 5)
        res.violation_ticks["liveness"].update(missing[5:])


def timing_trouble(
    logs: Mapping[int, NodeLog],
    faulty: Iterable[int] = (),
    window: tuple[int, int] | None = None,
) -> dict[int, list[str]]:
    """Per tick, the timing trouble the loyal boards' logs show there (empty ticks left out).

    "late" (a line counted late frames: marks its tick and the one before, since a
    frame is counted late by the tick it arrives in), "withheld:REASON", "skip" (a board skipped
    the tick: {"event": "skip", "tick": T, "to": U} covers T..U-1), "stall" and
    "clock-step" (events a board writes when it is frozen or its clock jumps). Used
    to tell a user whether a violation came from timing (fix the rate or the host)
    or from the protocol (a bug).
    """
    bad = set(faulty)
    out: dict[int, set[str]] = {}

    def mark(t: int, what: str) -> None:
        if t >= 0 and (window is None or window[0] <= t <= window[1]):
            out.setdefault(t, set()).add(what)

    for i, log in logs.items():
        if i in bad:
            continue
        for t, line in log.decisions.items():
            if line.late > 0:
                # a late frame is counted by the tick it arrives in, often the next one
                mark(t, "late")
                mark(t - 1, "late")
            if line.withheld is not None:
                mark(t, f"withheld:{line.withheld}")
        for e in log.events:
            tick = e.get("tick")
            if not isinstance(tick, int):
                continue
            kind = e.get("event")
            if kind == "skip":
                to = e.get("to")
                end = to if isinstance(to, int) and to > tick else tick + 1
                for t in range(tick, min(end, tick + 100_000)):
                    mark(t, "skip")
            elif kind in ("stall", "clock-step"):
                mark(tick, str(kind))
    return {t: sorted(v) for t, v in sorted(out.items())}


def _entry(line: DecisionRecord, j: int) -> Any:
    vector = line.vector
    if isinstance(vector, list) and 0 <= j < len(vector):
        return vector[j]
    return "missing"


def _invented(line: DecisionRecord) -> str | None:
    """Why the voted output holds a value no vector entry has, or None."""
    vector, output = line.vector, line.output
    if not isinstance(vector, list) or not isinstance(output, list):
        return "vector or output missing"
    for ch, out in enumerate(output):
        if out is None:
            continue
        seen = [e[ch] for e in vector if isinstance(e, list) and ch < len(e)]
        if out not in seen:
            return f"output channel {ch} = {out} is in no entry of the vector"
    return None
