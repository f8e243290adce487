"""Agreement, validity and liveness, checked from the boards' decision logs (SPEC.md).

The checker reads only what the boards wrote: a board's lines are its word, so
the same checker serves simulated runs, pty runs and real boards. Faulty
(traitor) boards are left out of every property; a board that crashed is held
to liveness only while it was up (between its "joined" and its stop or crash).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class NodeLog:
    node: int
    decisions: dict[int, dict[str, Any]] = field(default_factory=dict)
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
        elif isinstance(obj.get("tick"), int):
            log.decisions[obj["tick"]] = obj
        else:
            log.bad_lines += 1
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


@dataclass
class CheckResult:
    loyal: list[int]
    ticks_checked: int = 0
    decisions: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "agreement": 0,
            "validity": 0,
            "liveness": 0,
            "integrity": 0,
            "timeliness": 0,
        }
    )
    violations: list[Violation] = field(default_factory=list)
    keep: int = 20

    def add(self, v: Violation) -> None:
        self.counts[v.prop] += 1
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
        return self.agreement and self.validity and self.integrity

    @property
    def holds(self) -> bool:
        """Every property: the run's outcome is "safe" exactly when this is true."""
        return self.safe and self.liveness and self.timeliness

    def to_json(self) -> dict[str, Any]:
        return {
            "loyal": self.loyal,
            "ticks_checked": self.ticks_checked,
            "decisions": self.decisions,
            "agreement": self.agreement,
            "validity": self.validity,
            "liveness": self.liveness,
            "violation_counts": self.counts,
            "violations": [v.to_json() for v in self.violations],
        }


def check(
    logs: Mapping[int, NodeLog],
    faulty: Iterable[int],
    window: tuple[int, int] | None = None,
    period_us: float | None = None,
) -> CheckResult:
    """Check every tick (inside `window`, if given) over the loyal boards that decided it.

    agreement: identical vectors; validity: entry j is loyal board j's own reading;
    integrity: every voted channel is a value some entry of the vector holds (the vote
    invents nothing); timeliness: decided within the period (when the log says when);
    liveness: no tick missing while a board was up.
    """
    bad = set(faulty)
    loyal = sorted(i for i in logs if i not in bad)
    res = CheckResult(loyal)
    ticks = sorted({t for i in loyal for t in logs[i].decisions})
    if window is not None:
        ticks = [t for t in ticks if window[0] <= t <= window[1]]
    for t in ticks:
        lines = {i: logs[i].decisions[t] for i in loyal if t in logs[i].decisions}
        res.ticks_checked += 1
        res.decisions += len(lines)
        vectors: dict[str, list[int]] = {}
        for i, line in lines.items():
            vectors.setdefault(json.dumps(line.get("vector")), []).append(i)
        if len(vectors) > 1:
            groups = sorted(vectors.values())
            res.add(
                Violation(
                    "agreement",
                    t,
                    sorted(lines),
                    f"{len(vectors)} different vectors: groups {groups}",
                )
            )
        for j, line_j in lines.items():
            local = line_j.get("local")
            wrong = [i for i, line in lines.items() if _entry(line, j) != local]
            if wrong:
                res.add(
                    Violation(
                        "validity", t, wrong, f"entry {j} differs from board {j}'s own reading"
                    )
                )
        for i, line in lines.items():
            bad_out = _invented(line)
            if bad_out is not None:
                res.add(Violation("integrity", t, [i], bad_out))
            decided = line.get("decided_us")
            if period_us is not None and isinstance(decided, int | float) and decided > period_us:
                res.add(Violation("timeliness", t, [i], f"decided {decided:.0f} us after t0"))
    for i in loyal:
        for start, end in logs[i].up_intervals():
            lo, hi = start, end
            if window is not None:
                lo, hi = max(lo, window[0]), min(hi, window[1])
            missing = [t for t in range(lo, hi + 1) if t not in logs[i].decisions]
            for t in missing[:5]:
                res.add(Violation("liveness", t, [i], "no decision while up"))
            res.counts["liveness"] += max(0, len(missing) - 5)
    return res


def _entry(line: Mapping[str, Any], j: int) -> Any:
    vector = line.get("vector")
    if isinstance(vector, list) and 0 <= j < len(vector):
        return vector[j]
    return "missing"


def _invented(line: Mapping[str, Any]) -> str | None:
    """Why the voted output holds a value no vector entry has, or None."""
    vector, output = line.get("vector"), line.get("output")
    if not isinstance(vector, list) or not isinstance(output, list):
        return "vector or output missing"
    for ch, out in enumerate(output):
        if out is None:
            continue
        seen = [e[ch] for e in vector if isinstance(e, list) and ch < len(e)]
        if out not in seen:
            return f"output channel {ch} = {out} is in no entry of the vector"
    return None
