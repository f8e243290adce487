"""`firmware-sim run`: N real voterd processes on pty links for K ticks, then the verdict.

Writes the run directory (SPEC.md): node<ID>.jsonl decision logs, run.json
(nodes, algorithm, faulty, ticks, faults, the fabric's counters, the check), and
exits 0 only if agreement, validity, integrity, liveness and timeliness held for
the loyal boards' published decisions. When a run fails, the summary says
whether the violations sat on ticks with timing trouble (a host or rate problem)
or not (look for a bug).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.checks import CheckResult, NodeLog, check, read_run, timing_trouble, withheld_reason
from hil.cluster import CONFIG_BAUD_UNLIMITED, ProcessCluster
from hil.faultspec import fault_budget, faulty_nodes
from voter.budget import TimingBudget, admit, check_cluster, measure_tick_cpu
from voter.core.driver import Publish
from voter.core.protocol import Algorithm
from voter.faultmodel import ClockStep, Crash, Fault, Stall, is_board, is_link, to_command

RESTART_DELAY_S = 0.5  # systemd RestartSec in the shipped unit is 1 s; the sim is quicker


class FeasibilityError(ValueError):
    """The requested tick rate does not fit the links (one line, with the highest feasible rate)."""


@dataclass
class RunSpec:
    out: Path
    nodes: int = 4
    algorithm: Algorithm = "om"
    m: int = 1
    tick_hz: float = 50.0
    ticks: int = 500
    baud: int = 921600
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    realtime: bool = True
    publish: Publish = "confirmed"
    fail_silent: bool = True


@dataclass
class RunResult:
    spec: RunSpec
    check: CheckResult
    fabric: dict[str, Any]
    exit_codes: dict[int, int | None]
    restarts: dict[int, int]
    injected: dict[str, int]
    duration_s: float
    run_json: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.check.holds


def admission(spec: RunSpec, latency_s: float) -> TimingBudget:
    """The measured timing budget of this run on this host (CPU p99 + wire + latency +
    precision per round slot). The N boards share this machine's cores, so the CPU
    profile measured in-process is scaled by boards per core."""
    profile = measure_tick_cpu(spec.nodes, spec.m, spec.algorithm, 3)
    share = max(1.0, spec.nodes / (os.cpu_count() or 1))
    return admit(
        spec.nodes,
        spec.m,
        spec.algorithm,
        3,
        spec.baud or CONFIG_BAUD_UNLIMITED,
        spec.tick_hz,
        latency_s=latency_s,
        precision_s=0.0,
        precision_fraction=1 / 8,
        profile=profile.scaled(share),
    )


def check_feasible(spec: RunSpec, latency_s: float) -> None:
    """Refuse a rate whose frames cannot even cross the wire in their slots (one line)."""
    try:
        budget = check_cluster(spec.nodes, spec.m, spec.algorithm, 3)
    except ValueError as e:
        raise FeasibilityError(str(e)) from None
    if spec.baud <= 0:
        return
    best = budget.max_tick_hz(spec.baud, latency_s)
    if spec.tick_hz > best:
        raise FeasibilityError(
            f"{spec.tick_hz:g} Hz does not fit {spec.baud} baud: the largest frame is "
            f"{max(budget.round_bytes)} bytes ({budget.round_time_s(spec.baud) * 1e3:.2f} ms on "
            f"the wire) per round; the highest feasible rate is {best:.1f} Hz"
        )


Progress = Callable[[ProcessCluster, dict[int, int | None]], None]


def run(
    spec: RunSpec,
    progress: Progress | None = None,
    on_admission: Callable[[TimingBudget], None] | None = None,
) -> RunResult:
    """Set up, run K ticks with the faults, stop cleanly (also on Ctrl-C), check.

    `on_admission` hears the measured timing budget before the boards start (the
    CLI warns in one line when the rate does not fit; the run goes ahead, since a
    board that cannot keep its schedule withholds rather than publish).
    """
    cluster = ProcessCluster(
        spec.out,
        nodes=spec.nodes,
        algorithm=spec.algorithm,
        m=spec.m,
        tick_hz=spec.tick_hz,
        baud=spec.baud,
        seed=spec.seed,
        link_faults=[f for f in spec.faults if is_link(f)],
        realtime=spec.realtime,
        publish=spec.publish,
        fail_silent=spec.fail_silent,
    )
    check_feasible(spec, cluster.link_latency_us * 1e-6)
    budget = admission(spec, cluster.link_latency_us * 1e-6)
    if on_admission is not None:
        on_admission(budget)
    last = spec.ticks - 1
    crashes = {f.node: f.at_tick for f in spec.faults if isinstance(f, Crash)}
    crashed: set[int] = set()
    started = time.monotonic()
    exit_codes: dict[int, int | None] = {}
    fabric: dict[str, Any] = {}
    try:
        cluster.setup()
        cluster.start(until_tick=last)
        for f in spec.faults:
            if is_board(f):
                cluster.control(f.node, to_command(f))
        deadline = (cluster.start_at or time.monotonic()) + spec.ticks / spec.tick_hz + 15
        while time.monotonic() < deadline:
            ticks = {i: cluster.last_tick(i) for i in range(spec.nodes)}
            for node, at in crashes.items():
                if node not in crashed and (ticks[node] or -1) >= (at or 0):
                    cluster.kill(node)
                    crashed.add(node)
                    time.sleep(RESTART_DELAY_S)
                    cluster.restart(node, until_tick=last)
            if progress is not None:
                progress(cluster, ticks)
            if not cluster.running():
                break
            time.sleep(0.1)
        exit_codes = {i: p.poll() for i, p in cluster.procs.items()}
    finally:
        fabric = cluster.stop()
    logs = read_run(spec.out, spec.nodes)
    faulty = faulty_nodes(spec.faults)
    result = check(logs, faulty, window=(0, last), period_us=1e6 / spec.tick_hz)
    injected = {
        "flipped_bits": sum(d.get("flipped_bits", 0) for d in fabric.values()),
        "corrupted_frames": sum(d.get("corrupted_frames", 0) for d in fabric.values()),
        "dropped_frames": sum(d.get("dropped_frames", 0) for d in fabric.values()),
        "delayed_frames": sum(d.get("delayed_frames", 0) for d in fabric.values()),
    }
    counted, reasons = fault_budget(spec.faults)
    bound = (spec.nodes - 1) // 3 if spec.algorithm == "om" else spec.nodes - 2
    bound = min(bound, spec.m)
    node_totals = _node_totals(logs)
    diagnosis = diagnose(result, logs, spec, counted <= bound)
    run_json: dict[str, Any] = {
        "nodes": spec.nodes,
        "algorithm": spec.algorithm,
        "m": spec.m,
        "tick_hz": spec.tick_hz,
        "publish": spec.publish,
        "fail_silent": spec.fail_silent,
        "admission": {"fits": budget.fits, "message": budget.message, **budget.as_dict()},
        "ticks": spec.ticks,
        "baud": spec.baud,
        "seed": spec.seed,
        "faulty": faulty,
        "faults": [f.describe() for f in spec.faults],
        "fault_budget": {
            "counted": counted,
            "bound": bound,
            "inside_bound": counted <= bound,
            "reasons": reasons,
        },
        "restarts": cluster.restarts,
        "exit_codes": {str(k): v for k, v in exit_codes.items()},
        "fabric": fabric,
        "injected": injected,
        "boards": node_totals,
        "check": result.to_json(),
        "diagnosis": diagnosis,
        "missed_start": missed_start(logs),
    }
    (spec.out / "run.json").write_text(json.dumps(run_json, indent=1))
    return RunResult(
        spec,
        result,
        fabric,
        exit_codes,
        cluster.restarts,
        injected,
        time.monotonic() - started,
        run_json,
    )


def _node_totals(logs: dict[int, NodeLog]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for i, log in logs.items():
        lines = log.decisions.values()
        withheld = sum(1 for x in lines if withheld_reason(x) is not None)
        out[str(i)] = {
            "decided": len(log.decisions),
            "published": len(log.decisions) - withheld,
            "withheld": withheld,
            "dropped": sum(int(x.get("dropped", 0)) for x in lines),
            "late": sum(int(x.get("late", 0)) for x in lines),
            "corrected": sum(int(x.get("corrected", 0)) for x in lines),
            "stops": sum(
                1 for e in log.events if e.get("event") == "stop" and e.get("code") not in (0, None)
            ),
            "joins": sum(1 for e in log.events if e.get("event") == "joined"),
        }
    return out


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
    result: CheckResult, logs: dict[int, NodeLog], spec: RunSpec, inside_bound: bool
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


def missed_start(logs: dict[int, NodeLog]) -> dict[str, int]:
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


def summary(res: RunResult) -> str:
    c = res.check
    s = res.spec
    lines = [
        f"{s.nodes} boards, {s.algorithm.upper()}({s.m}), {s.tick_hz:g} Hz, {s.ticks} ticks, "
        f"{s.baud} baud, faults: {', '.join(f.describe() for f in s.faults) or 'none'}",
        f"loyal boards {c.loyal}: {c.decisions} decisions ({c.published} published) over "
        f"{c.ticks_checked} ticks",
        f"agreement: {'held' if c.agreement else 'VIOLATED'}   "
        f"validity: {'held' if c.validity else 'VIOLATED'}   "
        f"liveness: {'held' if c.liveness else 'VIOLATED'}   "
        f"integrity: {'held' if c.integrity else 'VIOLATED'}   "
        f"timeliness: {'held' if c.timeliness else 'VIOLATED'}",
        _availability_line(c),
        _withheld_line(c),
    ]
    # Outages before the last tick (the last one has no next tick to confirm it).
    outs = {i: [r for r in runs if r[0] + r[1] < s.ticks - 1] for i, runs in c.outages.items()}
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
    inj = res.injected
    boards = {int(k): v for k, v in res.run_json["boards"].items()}
    loyal = [boards[i] for i in c.loyal if i in boards]
    dropped = sum(b["dropped"] for b in loyal)
    corrected = sum(b["corrected"] for b in loyal)
    stops = sum(b["stops"] for b in loyal)
    lines.append(
        f"injected: {inj['flipped_bits']} bit flips in {inj['corrupted_frames']} frames, "
        f"{inj['dropped_frames']} frames dropped, {inj['delayed_frames']} delayed"
    )
    lines.append(
        f"loyal boards dropped {dropped} damaged or lying frames/entries, corrected {corrected} "
        f"memory errors, stopped themselves {stops} times"
        + (" — every fault masked" if c.safe and c.liveness else "")
    )
    budget = res.run_json["fault_budget"]
    lines.append(
        f"fault budget: {budget['counted']} counted, bound {budget['bound']} "
        f"({'inside' if budget['inside_bound'] else 'OUTSIDE'} the theory's bound)"
    )
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
    lines.append(f"run directory: {s.out}")
    return "\n".join(lines)
