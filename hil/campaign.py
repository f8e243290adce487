"""Fault campaigns: a TOML of scenarios, each run in the simulator or on real processes, judged.

A scenario passes when its outcome ("safe" if every property held, else
"violation") is the one it expects; the seed's impossibility is a scenario that
expects the violation. A violation found in the simulator is shrunk (fewest
ticks, then fewest faults) and written out as a one-scenario campaign with the
command that reproduces it.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hil.checks import CheckResult, NodeLog, check, read_run, withheld_reason
from hil.faultspec import fault_budget, faulty_nodes, validate_run
from hil.rig import Rig, mismatch
from hil.sim import SimConfig, simulate
from voter.core.driver import Publish, parse_publish
from voter.core.protocol import Algorithm
from voter.faultmodel import Fault, FaultSpecError, fault_from_table, to_table

MODES = ("sim", "pty", "serial")
SCENARIO_KEYS = {
    "name",
    "nodes",
    "algorithm",
    "m",
    "expect",
    "fault",
    "tick_hz",
    "baud",
    "ticks",
    "seed",
    "publish",
    "fail_silent",
}


class CampaignError(ValueError):
    """A campaign file that cannot be run (one line for the user)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    nodes: int
    algorithm: Algorithm
    m: int
    expect: str
    faults: tuple[Fault, ...]
    ticks: int
    seed: int
    tick_hz: float = 50.0
    baud: int = 921600
    #: the boards' publication mode ("confirmed" | "immediate", docs/design.md, Timing)
    publish: Publish = "confirmed"
    #: false: the raw algorithm's decisions, every one published (theorem demonstrations)
    fail_silent: bool = True

    @property
    def bound(self) -> int:
        limit = (self.nodes - 1) // 3 if self.algorithm == "om" else self.nodes - 2
        return max(0, min(self.m, limit))


@dataclass(frozen=True)
class Campaign:
    name: str
    seed: int
    ticks: int
    scenarios: tuple[Scenario, ...]
    path: Path


def load_campaign(path: Path) -> Campaign:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CampaignError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CampaignError(f"{path}: not valid TOML: {e}") from None
    return parse_campaign(data, path)


def parse_campaign(data: Mapping[str, Any], path: Path) -> Campaign:
    extra = set(data) - {"campaign", "scenario"}
    if extra:
        raise CampaignError(f"{path}: unknown key(s): {', '.join(sorted(extra))}")
    head = data.get("campaign", {})
    if not isinstance(head, dict):
        raise CampaignError(f"{path}: [campaign] must be a table")
    bad = set(head) - {"name", "ticks", "seed"}
    if bad:
        raise CampaignError(f"{path}: [campaign]: unknown key(s): {', '.join(sorted(bad))}")
    name = str(head.get("name", path.stem))
    try:
        ticks = int(head.get("ticks", 300))
        seed = int(head.get("seed", 0))
    except (TypeError, ValueError) as e:
        raise CampaignError(f"{path}: [campaign]: {e}") from None
    raw = data.get("scenario", [])
    if not isinstance(raw, list) or not raw:
        raise CampaignError(f"{path}: no [[scenario]] tables")
    scenarios: list[Scenario] = []
    for k, t in enumerate(raw):
        scenarios.append(_scenario(t, k, ticks, seed, path))
    names = [s.name for s in scenarios]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CampaignError(f"{path}: scenario name(s) used twice: {', '.join(dup)}")
    return Campaign(name, seed, ticks, tuple(scenarios), path)


def _scenario(t: Any, k: int, ticks: int, seed: int, path: Path) -> Scenario:
    where = f"{path}: scenario {k + 1}"
    if not isinstance(t, dict):
        raise CampaignError(f"{where}: must be a table")
    bad = set(t) - SCENARIO_KEYS
    if bad:
        raise CampaignError(f"{where}: unknown key(s): {', '.join(sorted(bad))}")
    try:
        name = str(t["name"])
        nodes = int(t.get("nodes", 4))
        algorithm = str(t.get("algorithm", "om"))
        m = int(t.get("m", 1))
        expect = str(t.get("expect", "safe"))
        sc_ticks = int(t.get("ticks", ticks))
        tick_hz = float(t.get("tick_hz", 50.0))
        baud = int(t.get("baud", 921600))
        sc_seed = int(t.get("seed", seed))
        publish_raw = t.get("publish", "confirmed")
        fail_silent = t.get("fail_silent", True)
    except KeyError as e:
        raise CampaignError(f"{where}: missing key {e.args[0]}") from None
    except (TypeError, ValueError) as e:
        raise CampaignError(f"{where}: {e}") from None
    where = f"{path}: scenario {name!r}"
    if algorithm not in ("om", "sm"):
        raise CampaignError(f"{where}: algorithm must be 'om' or 'sm'")
    if expect not in ("safe", "violation"):
        raise CampaignError(f"{where}: expect must be 'safe' or 'violation'")
    try:
        publish = parse_publish(publish_raw)
    except ValueError as e:
        raise CampaignError(f"{where}: {e}") from None
    if not isinstance(fail_silent, bool):
        raise CampaignError(f"{where}: fail_silent must be true or false")
    if not 2 <= nodes <= 16 or not 0 <= m <= 6 or sc_ticks < 1 or not 0 < tick_hz <= 1000:
        raise CampaignError(f"{where}: nodes 2..16, m 0..6, ticks >= 1, tick_hz in (0, 1000]")
    faults_raw = t.get("fault", [])
    if not isinstance(faults_raw, list):
        raise CampaignError(f"{where}: fault must be an array of tables ([[scenario.fault]])")
    faults: list[Fault] = []
    for f in faults_raw:
        if not isinstance(f, dict):
            raise CampaignError(f"{where}: each [[scenario.fault]] must be a table")
        try:
            faults.append(fault_from_table(f, nodes))
        except FaultSpecError as e:
            raise CampaignError(f"{where}: {e}") from None
    try:
        validate_run(faults, sc_ticks, tick_hz)
    except FaultSpecError as e:
        raise CampaignError(f"{where}: {e}") from None
    alg: Algorithm = "om" if algorithm == "om" else "sm"
    return Scenario(
        name,
        nodes,
        alg,
        m,
        expect,
        tuple(faults),
        sc_ticks,
        sc_seed,
        tick_hz,
        baud,
        publish,
        fail_silent,
    )


# -- running one scenario ---------------------------------------------------------------
@dataclass
class ScenarioResult:
    scenario: Scenario
    mode: str
    check: CheckResult
    counters: dict[str, int]
    coverage: dict[str, int]
    timeline: dict[int, list[str]]
    duration_s: float
    history_hash: str | None = None
    shrunk: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: why the scenario was not run (serial mode: another cluster, a silent board)
    skipped: str | None = None

    @property
    def outcome(self) -> str:
        if self.skipped is not None:
            return "skipped"
        return "safe" if self.check.holds else "violation"

    @property
    def passed(self) -> bool:
        return self.outcome == self.scenario.expect


def run_scenario(
    sc: Scenario,
    mode: str,
    out: Path,
    progress: Callable[[int], None] | None = None,
    rig: Rig | None = None,
) -> ScenarioResult:
    import time

    started = time.monotonic()
    if mode == "sim":
        r = simulate(_sim_config(sc), progress)
        res = _judge(sc, r.logs)
        return ScenarioResult(
            sc,
            mode,
            res,
            dict(r.counters),
            r.coverage.to_json(),
            mark_withheld(r.timeline, r.logs),
            time.monotonic() - started,
            r.history_hash,
        )
    if mode == "pty":
        return _run_pty(sc, out, started)
    if rig is None:
        raise CampaignError("--mode serial needs --rig RIG.toml (the boards' ports; docs/hil.md)")
    return _run_serial(sc, rig, out, started)


def _sim_config(sc: Scenario) -> SimConfig:
    return SimConfig(
        nodes=sc.nodes,
        algorithm=sc.algorithm,
        m=sc.m,
        ticks=sc.ticks,
        tick_hz=sc.tick_hz,
        baud=sc.baud,
        seed=sc.seed,
        faults=list(sc.faults),
        publish=sc.publish,
        fail_silent=sc.fail_silent,
    )


def _judge(sc: Scenario, logs: Mapping[int, NodeLog]) -> CheckResult:
    return check(
        logs, faulty_nodes(list(sc.faults)), window=(0, sc.ticks - 1), period_us=1e6 / sc.tick_hz
    )


def _run_pty(sc: Scenario, out: Path, started: float) -> ScenarioResult:
    import time

    from hil.pty_run import RunSpec, run

    run_dir = out / "runs" / sc.name
    spec = RunSpec(
        out=run_dir,
        nodes=sc.nodes,
        algorithm=sc.algorithm,
        m=sc.m,
        tick_hz=sc.tick_hz,
        ticks=sc.ticks,
        baud=sc.baud,
        seed=sc.seed,
        faults=list(sc.faults),
        publish=sc.publish,
        fail_silent=sc.fail_silent,
    )
    result = run(spec)
    logs = read_run(run_dir, sc.nodes)
    res = _judge(sc, logs)
    boards = result.run_json["boards"]
    counters = {
        "frames_dropped": sum(b["dropped"] for b in boards.values()),
        "late": sum(b["late"] for b in boards.values()),
        "corrected": sum(b["corrected"] for b in boards.values()),
        "stops": sum(b["stops"] for b in boards.values()),
        "restarts": sum(result.restarts.values()),
        **result.injected,
    }
    coverage = {"link_corrupted": result.injected["corrupted_frames"]}
    return ScenarioResult(
        sc,
        "pty",
        res,
        counters,
        coverage,
        timeline_from_logs(logs, sc.ticks),
        time.monotonic() - started,
        extra={"run_dir": str(run_dir)},
    )


def _skipped(sc: Scenario, rig: Rig, why: str, started: float) -> ScenarioResult:
    import time

    return ScenarioResult(
        sc,
        "serial",
        CheckResult([]),
        {},
        {},
        {i: ["down"] * sc.ticks for i in range(sc.nodes)},
        time.monotonic() - started,
        extra={"rig": str(rig.path)},
        skipped=why,
    )


def _run_serial(sc: Scenario, rig: Rig, out: Path, started: float) -> ScenarioResult:
    import time

    from hil.serial_run import RigRunError, run_on_rig

    why = mismatch(sc.nodes, sc.algorithm, sc.m, rig)
    if why is not None:
        return _skipped(sc, rig, why, started)
    # The boards tick at their cluster's rate and baud, whatever the scenario asked for.
    sc = replace(sc, tick_hz=rig.cluster.tick_hz, baud=rig.cluster.baud)
    run_dir = out / "runs" / sc.name
    try:
        result = run_on_rig(rig, run_dir, list(sc.faults), sc.ticks, sc.seed)
    except RigRunError as e:
        return _skipped(sc, rig, str(e), started)
    logs = read_run(run_dir, sc.nodes)
    res = _judge(sc, logs)
    run_json = result.run_json
    run_json["check"] = res.to_json()
    (run_dir / "run.json").write_text(json.dumps(run_json, indent=1))
    lines = [d for log in logs.values() for d in log.decisions.values()]
    counters = {
        "frames_dropped": sum(int(x.get("dropped", 0)) for x in lines),
        "late": sum(int(x.get("late", 0)) for x in lines),
        "corrected": sum(int(x.get("corrected", 0)) for x in lines),
        "stops": sum(
            1
            for log in logs.values()
            for e in log.events
            if e.get("event") == "stop" and e.get("code") not in (0, None)
        ),
        **result.counters,
        **result.injected,
    }
    return ScenarioResult(
        sc,
        "serial",
        res,
        counters,
        {"link_corrupted": result.injected["corrupted_frames"]},
        timeline_from_logs(logs, sc.ticks),
        time.monotonic() - started,
        extra={"run_dir": str(run_dir), "rig": str(rig.path)},
    )


def timeline_from_logs(logs: Mapping[int, NodeLog], ticks: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for i, log in logs.items():
        row = []
        stops = {
            e.get("tick")
            for e in log.events
            if e.get("event") == "stop" and e.get("code") not in (0, None)
        }
        for t in range(ticks):
            line = log.decisions.get(t)
            if line is None:
                row.append("stop" if t in stops else "down")
            elif withheld_reason(line) is not None:
                row.append("withheld")
            elif all(v is not None for v in line.get("vector", [])):
                row.append("ok")
            else:
                row.append("error")
        out[i] = row
    return out


def mark_withheld(
    timeline: Mapping[int, list[str]], logs: Mapping[int, NodeLog]
) -> dict[int, list[str]]:
    """`timeline` with every tick a board decided but withheld shown as "withheld".

    The simulator paints its own timeline from what it ran; whether a decision was
    published is the board's word in its log, so it is taken from there.
    """
    out = {i: list(row) for i, row in timeline.items()}
    for i, row in out.items():
        log = logs.get(i)
        if log is None:
            continue
        for t, line in log.decisions.items():
            if 0 <= t < len(row) and withheld_reason(line) is not None:
                row[t] = "withheld"
    return out


# -- shrinking -------------------------------------------------------------------------
def shrink(sc: Scenario) -> Scenario:
    """The smallest tick count, then the fewest faults, that still violate (simulator only)."""

    def violates(s: Scenario) -> bool:
        return not _judge(s, simulate(_sim_config(s)).logs).holds

    lo, hi = 1, sc.ticks
    while lo < hi:  # smallest ticks that still violate (a violation never un-happens)
        mid = (lo + hi) // 2
        if violates(replace(sc, ticks=mid)):
            hi = mid
        else:
            lo = mid + 1
    best = replace(sc, ticks=hi)
    changed = True
    while changed:
        changed = False
        for k in range(len(best.faults)):
            trial = replace(best, faults=best.faults[:k] + best.faults[k + 1 :])
            if violates(trial):
                best, changed = trial, True
                break
    return best


def scenario_toml(sc: Scenario, campaign: str) -> str:
    """A one-scenario campaign file for `sc` (the reproduction of a shrunk violation)."""
    lines = [
        "[campaign]",
        f'name = "{campaign}-repro-{sc.name}"',
        f"ticks = {sc.ticks}",
        f"seed = {sc.seed}",
        "",
        "[[scenario]]",
        f'name = "{sc.name}"',
        f"nodes = {sc.nodes}",
        f'algorithm = "{sc.algorithm}"',
        f"m = {sc.m}",
        f'expect = "{sc.expect}"',
        f"tick_hz = {sc.tick_hz}",
        f"baud = {sc.baud}",
        f'publish = "{sc.publish}"',
        f"fail_silent = {'true' if sc.fail_silent else 'false'}",
    ]
    for f in sc.faults:
        lines.append("  [[scenario.fault]]")
        lines += [f"  {key} = {json.dumps(value)}" for key, value in to_table(f).items()]
    return "\n".join(lines) + "\n"


def scenario_to_json(r: ScenarioResult, campaign: Campaign, out: Path) -> dict[str, Any]:
    sc = r.scenario
    counted, reasons = fault_budget(list(sc.faults))
    checked = r.check.to_json()
    return {
        "name": sc.name,
        "expect": sc.expect,
        "outcome": r.outcome,
        "passed": r.passed,
        "mode": r.mode,
        "nodes": sc.nodes,
        "algorithm": sc.algorithm,
        "m": sc.m,
        "ticks": sc.ticks,
        "tick_hz": sc.tick_hz,
        "seed": sc.seed,
        "faults": [f.describe() for f in sc.faults],
        "inside_bound": counted <= sc.bound,
        "fault_budget": {"counted": counted, "bound": sc.bound, "reasons": reasons},
        "properties": {p: r.check.counts[p] == 0 for p in r.check.counts},
        "violation_counts": r.check.counts,
        "availability": checked["availability"],
        "withheld": checked["withheld"],
        "undetected": checked["undetected"],
        "undetected_from_tick": checked["undetected_from_tick"],
        "violations": [v.to_json() for v in r.check.violations[:10]],
        "counters": r.counters,
        "coverage": r.coverage,
        "history_hash": r.history_hash,
        "duration_s": round(r.duration_s, 3),
        "command": (
            f"hil campaign run {campaign.path} --out {out} --mode {r.mode} --only {sc.name}"
            + (f" --rig {r.extra['rig']}" if "rig" in r.extra else "")
        ),
        "shrunk": r.shrunk,
        **({"skipped": r.skipped} if r.skipped is not None else {}),
        **r.extra,
    }
