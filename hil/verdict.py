"""A run's verdict: the checker's result, its counters, run.json, and the lines a person reads.

Every runner's `RunOutcome` goes through `finish` (hil.outcome builds the
numbers); `summary` is what `firmware-sim run` prints, and `diagnose` says
whether a failed run's violations sat on ticks with timing trouble (the host
or the rate) or on clean ticks (look for a bug).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.checks import CheckResult, NodeLog, timing_trouble
from hil.isolation import describe
from hil.outcome import Counters, RunOutcome, counters, judge, run_json
from hil.scenario import Scenario
from voter.faultmodel import ClockStep, Stall


@dataclass
class RunResult:
    scenario: Scenario
    outcome: RunOutcome
    check: CheckResult
    counters: Counters
    run_json: dict[str, Any]
    #: the run directory (None: nothing was written, e.g. a simulated scenario)
    out: Path | None = None

    @property
    def ok(self) -> bool:
        return self.check.holds


def finish(sc: Scenario, outcome: RunOutcome, out: Path | None) -> RunResult:
    """Judge a run, build its run.json (written to `out` when given) and its counters."""
    result = judge(sc, outcome.logs)
    data = run_json(sc, outcome, result)
    data["diagnosis"] = diagnose(result, outcome.logs, sc, data["fault_budget"]["inside_bound"])
    data["missed_start"] = missed_start(outcome.logs)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(data, indent=1))
    return RunResult(sc, outcome, result, counters(outcome), data, out)


#: What each kind of timing trouble is called in the diagnosis line.
TROUBLE_NAMES = {
    "late": "late frames",
    "withheld": "withheld lines",
    "skip": "skipped ticks",
    "stall": "stalls",
    "clock-step": "clock steps",
    "timeliness": "decisions after the period",
}


def diagnose(
    result: CheckResult, logs: Mapping[int, NodeLog], spec: Scenario, inside_bound: bool
) -> str | None:
    """One line on a failed run: did its violations come from timing, and what to do.

    A tick with a violation "had timing trouble" when a loyal board's line there
    counted late frames or was withheld, a board skipped it, a stall or clock
    step was injected or logged there, or the violation is timeliness itself.
    Those point at the host or the rate; violations on clean ticks point at the
    protocol or the fault handling. None when every property held.
    """
    if result.holds:
        return None
    window = (0, spec.ticks - 1)
    faulty = [i for i in logs if i not in result.loyal]
    trouble = {t: set(v) for t, v in timing_trouble(logs, faulty, window).items()}
    period_s = 1.0 / spec.tick_hz
    for f in spec.faults:
        if isinstance(f, Stall | ClockStep) and f.at_tick is not None:
            # a stall covers the ticks it freezes; a step disturbs its tick and the next
            span = math.ceil(f.ms / 1000.0 / period_s) if isinstance(f, Stall) else 1
            for t in range(f.at_tick, f.at_tick + span + 1):
                trouble.setdefault(t, set()).add(f.kind)
    for t in result.violation_ticks.get("timeliness", ()):
        trouble.setdefault(t, set()).add("timeliness")
    bad = sorted(set().union(*result.violation_ticks.values()))
    timed = [t for t in bad if t in trouble]
    clean = [t for t in bad if t not in trouble]
    by_kind: dict[str, int] = {}
    for t in timed:
        for what in {x.split(":", 1)[0] for x in trouble[t]}:
            by_kind[what] = by_kind.get(what, 0) + 1
    parts = []
    if not inside_bound:
        parts.append("the faults exceed the theory's bound, so a violation is allowed")
    if timed:
        causes = ", ".join(f"{TROUBLE_NAMES.get(k, k)} at {n}" for k, n in sorted(by_kind.items()))
        parts.append(
            f"{len(timed)} of {len(bad)} violated ticks had timing trouble ({causes}): the "
            f"boards did not keep time at {spec.tick_hz:g} Hz on this host; lower --tick-hz "
            "or see docs/performance.md"
        )
    if clean:
        hint = (
            ": not explained by timing or by the bound, look at the decision logs there"
            if inside_bound
            else ""
        )
        parts.append(
            f"{len(clean)} of {len(bad)} violated ticks had no timing trouble (first at tick "
            f"{clean[0]}){hint}"
        )
    return "diagnosis: " + "; ".join(parts) if parts else None


def _availability_line(c: CheckResult) -> str:
    avail = c.availability()
    shown = [
        f"board {i} {'never up' if a is None else f'{a * 100:.1f} %'}" for i, a in avail.items()
    ]
    return "availability (published / ticks up): " + (", ".join(shown) or "no loyal board")


def _withheld_line(c: CheckResult) -> str:
    if not any(c.withheld.values()):
        return "withheld: none"
    per_board = [
        f"board {i}: " + ", ".join(f"{why} {n}" for why, n in sorted(reasons.items()))
        for i, reasons in sorted(c.withheld.items())
        if reasons
    ]
    return "withheld (decided, not published): " + "; ".join(per_board)


def missed_start(logs: Mapping[int, NodeLog]) -> dict[str, int]:
    """Boards whose first tick after the common start was not tick 0 (it came too soon for
    this host: they were still starting), by the tick they joined at."""
    out: dict[str, int] = {}
    for i, log in logs.items():
        first = next((e for e in log.events if e.get("event") == "joined"), None)
        if first is not None and first.get("how") == "common-start":
            tick = first.get("tick")
            if isinstance(tick, int) and tick > 0:
                out[str(i)] = tick
    return out


def missed_start_text(late: Mapping[int, int], margin_s: float, remedy: str) -> str:
    """Why a run that missed its common start is not judged, the same words in every mode.

    A board that joins at tick k > 0 ran none of the scenario's faults and checks
    before k: the run is not the scenario that was asked for, so it is skipped,
    never passed on what is left of it.
    """
    return (
        f"board(s) {sorted(late)} started at tick(s) {[late[i] for i in sorted(late)]}, not 0: "
        f"they were not ticking within the {margin_s:g} s start margin; {remedy}"
    )


def summary(res: RunResult) -> str:
    c = res.check
    s = res.scenario
    lines = [
        f"{s.nodes} boards, {s.algorithm.upper()}({s.m}), {s.tick_hz:g} Hz, {s.ticks} ticks, "
        f"{s.baud} baud, faults: {', '.join(f.describe() for f in s.faults) or 'none'}",
        f"loyal boards {c.loyal}: {c.decisions} decisions ({c.published} published) over "
        f"{c.ticks_checked} ticks",
        "   ".join(
            f"{prop}: {'held' if held else 'VIOLATED'}"
            for prop, held in (
                ("agreement", c.agreement),
                ("validity", c.validity),
                ("liveness", c.liveness),
                ("integrity", c.integrity),
                ("timeliness", c.timeliness),
            )
        ),
        _availability_line(c),
        _withheld_line(c),
        *_outage_lines(c, s.ticks),
        *_fault_lines(res),
        *_isolation_lines(res),
    ]
    for v in c.violations[:5]:
        lines.append(f"  {v.prop} violated at tick {v.tick} on {v.nodes}: {v.detail}")
    if res.run_json.get("diagnosis"):
        lines.append(res.run_json["diagnosis"])
    late = res.run_json.get("missed_start") or {}
    if late:
        lines.append(
            "missed the common start: "
            + ", ".join(f"board {i} joined at tick {t}" for i, t in sorted(late.items()))
            + " (the host took longer than the start margin to start the boards; their "
            "ticks before that are not checked)"
        )
    if res.out is not None:
        lines.append(f"run directory: {res.out}")
    return "\n".join(lines)


def _outage_lines(c: CheckResult, ticks: int) -> list[str]:
    """How each board came back after withholding, and how long a published split stood."""
    lines = []
    # Outages before the last tick (the last one has no next tick to confirm it).
    outs = {i: [r for r in runs if r[0] + r[1] < ticks - 1] for i, runs in c.outages.items()}
    if any(outs.values()):
        lines.append(
            "back to publishing after: "
            + "; ".join(
                f"board {i}: {len(r)} outage(s), longest {max(n for _, n in r)} tick(s) "
                f"from tick {max(r, key=lambda x: x[1])[0]}"
                for i, r in sorted(outs.items())
                if r
            )
        )
    longest, longest_at = c.undetected()
    if longest:
        lines.append(
            f"published disagreement stood for up to {longest} consecutive tick(s) "
            f"(from tick {longest_at})"
        )
    return lines


def _fault_lines(res: RunResult) -> list[str]:
    """What was injected, what the loyal boards did about it, and the fault budget."""
    c = res.check
    inj = res.counters
    boards = {int(k): v for k, v in res.run_json["boards"].items()}
    loyal = [boards[i] for i in c.loyal if i in boards]
    dropped = sum(b["dropped"] for b in loyal)
    corrected = sum(b["corrected"] for b in loyal)
    stops = sum(b["stops"] for b in loyal)
    budget = res.run_json["fault_budget"]
    hybrid = ""
    if res.run_json.get("algorithm") == "omh":
        hybrid = f"; {budget.get('manifest', 0)} manifest, OMH's N > 2a+2s+b+m"
    return [
        f"injected: {inj.flipped_bits} bit flips in {inj.link_corrupted} frames, "
        f"{inj.link_dropped} frames dropped, {inj.link_delayed} delayed",
        f"loyal boards dropped {dropped} damaged or lying frames/entries, corrected {corrected} "
        f"memory errors, stopped themselves {stops} times"
        + (" — every fault masked" if c.safe and c.liveness else ""),
        f"fault budget: {budget['counted']} counted, bound {budget['bound']}{hybrid} "
        f"({'inside' if budget['inside_bound'] else 'OUTSIDE'} the theory's bound)",
    ]


def _isolation_lines(res: RunResult) -> list[str]:
    """Diagnosis runs only: whom the loyal boards isolated (agreed), when, and how fast; and
    with planned degradation the algorithm switches."""
    modes = res.check.isolation.get("modes", [])
    switched = (
        [
            "mode switches (agreed by every loyal board): "
            + (", ".join(f"{x['algorithm']} from tick {x['tick']}" for x in modes) or "none")
        ]
        if res.scenario.degrade is not None
        else []
    )
    if res.scenario.diagnosis is None:
        return switched
    iso = res.check.isolation
    done, back = describe(iso)
    return [
        f"isolated (agreed by every loyal board): {', '.join(done) or 'none'}; "
        f"re-admitted: {', '.join(back) or 'none'}; "
        f"false isolations: {iso.get('false_isolations', 0)}",
        *switched,
    ]
