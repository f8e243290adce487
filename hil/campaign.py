"""Fault campaigns: a TOML of scenarios, each run in the simulator or on real processes, judged.

A scenario passes when its outcome ("safe" if every property held, else
"violation") is the one it expects; the seed's impossibility is a scenario that
expects the violation. A violation found in the simulator is shrunk (fewest
ticks, then fewest faults) and written out as a one-scenario campaign with the
command that reproduces it.
"""

from __future__ import annotations

import json
import shlex
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hil.checks import CheckResult
from hil.cluster import START_MARGIN_S
from hil.faultspec import (
    fault_budget,
    faulty_nodes,
    inside_bound,
    manifest_count,
    validate_run,
)
from hil.outcome import MODES, Runner, RunnerError, invalid_counts, judge, timeline
from hil.rig import Rig, mismatch
from hil.scenario import CHANNELS, Scenario
from hil.sim import SimRunner
from hil.smr_sim import SmrConfig, SmrConfigError
from hil.verdict import finish, missed_start, missed_start_text
from voter.config import ConfigFileError, parse_validity, validity_inline
from voter.core.diagnosis import (
    CONFIG_KEYS,
    DEFAULT_PROBATION_TICKS,
    DIAGNOSED,
    DiagnosisConfig,
    config_toml,
    pr_problem,
)
from voter.core.driver import parse_publish
from voter.core.mode import DegradeConfig, parse_degrade
from voter.core.protocol import ALGORITHMS, Algorithm
from voter.faultmodel import Fault, FaultSpecError, SensorFault, fault_from_table, to_table
from voter.textfile import TextFileError, read_text

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
    "diagnosis",
    "degrade",
    "validity",
    "replication",
    "commands",
}


class CampaignError(ValueError):
    """A campaign file that cannot be run (one line for the user)."""


@dataclass(frozen=True)
class Campaign:
    name: str
    seed: int
    ticks: int
    scenarios: tuple[Scenario, ...]
    path: Path


def load_campaign(path: Path) -> Campaign:
    try:
        data = tomllib.loads(read_text(path))
    except TextFileError as e:
        raise CampaignError(str(e)) from None
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


def _check_ranges(
    where: str, algorithm: str, expect: str, fail_silent: object, sizes: tuple[int, int, int, float]
) -> None:
    """One line for a scenario value out of its range (before anything is built from it)."""
    nodes, m, ticks, tick_hz = sizes
    if algorithm not in ALGORITHMS:
        raise CampaignError(f"{where}: algorithm must be one of {', '.join(ALGORITHMS)}")
    if expect not in ("safe", "violation"):
        raise CampaignError(f"{where}: expect must be 'safe' or 'violation'")
    if not isinstance(fail_silent, bool):
        raise CampaignError(f"{where}: fail_silent must be true or false")
    if not 2 <= nodes <= 16 or not 0 <= m <= 6 or ticks < 1 or not 0 < tick_hz <= 1000:
        raise CampaignError(f"{where}: nodes 2..16, m 0..6, ticks >= 1, tick_hz in (0, 1000]")


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
        replication = t.get("replication")
        commands = int(t.get("commands", 1000 if replication is not None else 0))
    except KeyError as e:
        raise CampaignError(f"{where}: missing key {e.args[0]}") from None
    except (TypeError, ValueError) as e:
        raise CampaignError(f"{where}: {e}") from None
    where = f"{path}: scenario {name!r}"
    _check_ranges(where, algorithm, expect, fail_silent, (nodes, m, sc_ticks, tick_hz))
    try:
        publish = parse_publish(publish_raw)
    except ValueError as e:
        raise CampaignError(f"{where}: {e}") from None
    faults = _scenario_faults(t.get("fault", []), where, nodes, sc_ticks, tick_hz)
    try:
        validity = parse_validity(t.get("validity", {}), CHANNELS, where)
    except ConfigFileError as e:
        raise CampaignError(str(e)) from None
    _check_replication(replication, commands, faults, nodes, where)
    alg = Algorithm(algorithm)
    diagnosis = _diagnosis(t.get("diagnosis"), where, alg)
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
        validity,
        replication=replication,
        commands=commands,
        diagnosis=diagnosis,
        degrade=_degrade(t.get("degrade"), where, alg),
    )


def _degrade(raw: object, where: str, algorithm: Algorithm) -> DegradeConfig | None:
    """`degrade = { to = "sm" }`: the cluster file's [degrade]."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"to"}:
        raise CampaignError(f'{where}: degrade must be {{ to = "sm" }}')
    try:
        return parse_degrade(algorithm, raw["to"])
    except ValueError as e:
        raise CampaignError(f"{where}: degrade: {e}") from None


def _diagnosis(raw: object, where: str, algorithm: Algorithm) -> DiagnosisConfig | None:
    """`diagnosis = true` or `{ probation_ticks = N, penalty_threshold = P, reward_decay = K }`:
    the cluster file's [diagnosis] (the same keys and limits)."""
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, dict) or set(raw) - set(CONFIG_KEYS):
        raise CampaignError(
            f"{where}: diagnosis must be true or a table of {', '.join(CONFIG_KEYS)}"
        )
    if str(algorithm) not in DIAGNOSED:
        raise CampaignError(f"{where}: diagnosis needs algorithm sm, om or omh")
    probation = raw.get("probation_ticks", DEFAULT_PROBATION_TICKS)
    if not isinstance(probation, int) or isinstance(probation, bool) or probation < 1:
        raise CampaignError(f"{where}: diagnosis.probation_ticks must be an integer >= 1")
    pr: dict[str, float] = {}
    for key in ("penalty_threshold", "reward_decay"):
        if key in raw:
            problem = pr_problem(key, raw[key])
            if problem is not None:
                raise CampaignError(f"{where}: diagnosis.{problem}")
            pr[key] = float(raw[key])
    return DiagnosisConfig(probation_ticks=probation, **pr)


def _check_replication(
    replication: object, commands: int, faults: list[Fault], nodes: int, where: str
) -> None:
    """A command-log scenario (docs/hil.md): its protocol, its command count, faults it knows."""
    if replication is None:
        if commands:
            raise CampaignError(f"{where}: commands needs replication = 'pbft' or 'crash'")
        return
    if not isinstance(replication, str):
        raise CampaignError(f"{where}: replication must be 'pbft' or 'crash'")
    try:
        SmrConfig(replication, nodes, commands, faults=tuple(faults)).check()
    except SmrConfigError as e:
        raise CampaignError(f"{where}: {e}") from None


def _scenario_faults(
    faults_raw: object, where: str, nodes: int, ticks: int, tick_hz: float
) -> list[Fault]:
    """A scenario's [[scenario.fault]] tables, each parsed and the set checked against the run."""
    if not isinstance(faults_raw, list):
        raise CampaignError(f"{where}: fault must be an array of tables ([[scenario.fault]])")
    faults: list[Fault] = []
    for f in faults_raw:
        if not isinstance(f, dict):
            raise CampaignError(f"{where}: each [[scenario.fault]] must be a table")
        try:
            fault = fault_from_table(f, nodes)
        except FaultSpecError as e:
            raise CampaignError(f"{where}: {e}") from None
        if isinstance(fault, SensorFault) and (fault.channel or 0) >= len(CHANNELS):
            raise CampaignError(
                f"{where}: sensor: channel {fault.channel} is not in 0..{len(CHANNELS) - 1}"
            )
        faults.append(fault)
    try:
        validate_run(faults, ticks, tick_hz)
    except FaultSpecError as e:
        raise CampaignError(f"{where}: {e}") from None
    return faults


# -- running one scenario ---------------------------------------------------------------
@dataclass
class ScenarioResult:
    scenario: Scenario
    mode: str
    check: CheckResult
    counters: dict[str, int | None]
    coverage: dict[str, int | None]
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


def runner_for(mode: str, rig: Rig | None = None, sc: Scenario | None = None) -> Runner:
    """The runner of a mode: the same interface, the same result type (hil.outcome)."""
    if mode == "sim":
        return SimRunner()
    if mode == "pty" and sc is not None and sc.replication is not None:
        from hil.pty_smr import SmrPtyRunner

        return SmrPtyRunner()
    if mode == "pty":
        from hil.pty_run import PtyRunner

        return PtyRunner()
    if mode != "serial":
        raise CampaignError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if rig is None:
        raise CampaignError("--mode serial needs --rig RIG.toml (the boards' ports; docs/hil.md)")
    from hil.serial_run import SerialRunner

    return SerialRunner(rig)


def run_scenario(
    sc: Scenario,
    mode: str,
    out: Path,
    progress: Callable[[int], None] | None = None,
    rig: Rig | None = None,
) -> ScenarioResult:
    """Run one scenario in `mode`, judge it and count it, the same way in every mode."""
    started = time.monotonic()
    if sc.replication is not None and mode != "sim":
        from hil.pty_smr import unsupported

        log_why = unsupported(sc) if mode == "pty" else "command-log scenarios: sim or pty mode"
        if log_why is not None:
            return _skipped(sc, mode, rig, f"{log_why} (docs/hil.md)", started)
    runner = runner_for(mode, rig, sc)
    if rig is not None and mode == "serial":
        why = mismatch(sc.nodes, sc.algorithm, sc.m, rig, sc.validity, sc.degrade)
        if why is not None:
            return _skipped(sc, mode, rig, why, started)
        # The boards tick at their cluster's rate and baud, whatever the scenario asked for.
        sc = replace(sc, tick_hz=rig.cluster.tick_hz, baud=rig.cluster.baud)
    run_dir = None if mode == "sim" else out / "runs" / sc.name
    try:
        outcome = runner.run(sc, run_dir or out, progress)
    except RunnerError as e:
        return _skipped(sc, mode, rig, str(e), started)
    late = missed_start(outcome.logs)
    if late:  # the same rule the serial runner applies as soon as it sees a late join
        margin = rig.start_in_s if rig is not None else START_MARGIN_S
        remedy = "raise start_in_s in the rig file" if rig else "the host is too loaded"
        why = missed_start_text({int(k): t for k, t in late.items()}, margin, remedy)
        return _skipped(sc, mode, rig, why, started)
    result = finish(sc, outcome, run_dir)
    invalid = invalid_counts(outcome.logs)
    return ScenarioResult(
        sc,
        mode,
        result.check,
        result.counters.to_json(),
        result.counters.coverage(),
        outcome.timeline or timeline(outcome.logs, sc.ticks, faulty_nodes(sc.faults)),
        time.monotonic() - started,
        outcome.history_hash,
        extra={
            **{
                k: v
                for k, v in outcome.extra.items()
                if k in ("run_dir", "rig", "stream", "command_log")
            },
            # the validity checks' voids per board, channel and reason (scenarios that had any)
            **({"invalid": invalid} if invalid else {}),
        },
    )


def _skipped(sc: Scenario, mode: str, rig: Rig | None, why: str, started: float) -> ScenarioResult:
    return ScenarioResult(
        sc,
        mode,
        CheckResult([]),
        {},
        {},
        {i: ["down"] * sc.ticks for i in range(sc.nodes)},
        time.monotonic() - started,
        extra={"rig": str(rig.path)} if rig is not None else {},
        skipped=why,
    )


def shrink(sc: Scenario) -> Scenario:
    """The smallest tick count, then the fewest faults, that still violate (simulator only)."""

    def violates(s: Scenario) -> bool:
        return not judge(s, SimRunner().run(s).logs).holds

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
    if sc.diagnosis is not None:
        lines.append(f"diagnosis = {{ {', '.join(config_toml(sc.diagnosis))} }}")
    if sc.degrade is not None:
        lines.append(f'degrade = {{ to = "{sc.degrade.to}" }}')
    validity = validity_inline(CHANNELS, sc.validity)
    if validity:
        lines.append(f"validity = {validity}")
    if sc.replication is not None:
        lines += [f'replication = "{sc.replication}"', f"commands = {sc.commands}"]
    for f in sc.faults:
        lines.append("  [[scenario.fault]]")
        lines += [f"  {key} = {json.dumps(value)}" for key, value in to_table(f).items()]
    return "\n".join(lines) + "\n"


def seeded_name(name: str, seed: int) -> str:
    """A scenario's name when `--seeds` runs it once per seed."""
    return f"{name}-seed{seed}"


def reproduce_args(sc: Scenario, campaign: Campaign) -> list[str]:
    """The options that make `hil campaign run CAMPAIGN` run `sc` again: its name in the
    file, and the seed, ticks and rate the run overrode (`--seed`, `--seeds`, `--ticks`,
    `--max-tick-hz`); without them the command would run the file's scenario instead."""
    by_name = {s.name: s for s in campaign.scenarios}
    base = by_name.get(sc.name) or next(
        (s for s in campaign.scenarios if seeded_name(s.name, sc.seed) == sc.name), None
    )
    if base is None:  # not from this file (cannot happen from `select`): name it as it is
        return ["--only", sc.name]
    args = ["--only", base.name]
    if sc.seed != base.seed:
        args += ["--seed", str(sc.seed)]
    if sc.ticks != base.ticks:
        args += ["--ticks", str(sc.ticks)]
    if sc.tick_hz != base.tick_hz:
        args += ["--max-tick-hz", repr(sc.tick_hz)]
    return args


def _reproduce_command(r: ScenarioResult, campaign: Campaign, out: Path) -> str:
    """The command that runs this scenario again, into its own directory (so running it
    leaves this report as it is)."""
    sc = r.scenario
    return shlex.join(
        [
            *("hil", "campaign", "run", str(campaign.path)),
            *("--out", str(out / "repro" / sc.name), "--mode", r.mode),
            *reproduce_args(sc, campaign),
            *(["--rig", str(r.extra["rig"])] if "rig" in r.extra else []),
        ]
    )


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
        "inside_bound": inside_bound(sc),
        "fault_budget": {
            "counted": counted,
            "bound": sc.bound,
            "manifest": manifest_count(sc.faults),
            "reasons": reasons,
        },
        "properties": {p: r.check.counts[p] == 0 for p in r.check.counts},
        "violation_counts": r.check.counts,
        # diagnosis (SPEC: report.json per scenario): ticks from the first equivocation a
        # loyal board held evidence of (OM: the first penalised fault) to the agreed
        # isolation, and loyal boards isolated
        "detection_latency": checked["isolation"].get("detection_latency", {}),
        "false_isolations": checked["isolation"].get("false_isolations", 0),
        **({"isolation": checked["isolation"]} if sc.diagnosis is not None else {}),
        **({"modes": checked["isolation"].get("modes", [])} if sc.degrade is not None else {}),
        "availability": checked["availability"],
        "withheld": checked["withheld"],
        "undetected": checked["undetected"],
        "undetected_from_tick": checked["undetected_from_tick"],
        "violations": [v.to_json() for v in r.check.violations[:10]],
        "counters": r.counters,
        "coverage": r.coverage,
        "history_hash": r.history_hash,
        "duration_s": round(r.duration_s, 3),
        "command": _reproduce_command(r, campaign, out),
        "shrunk": r.shrunk,
        **({"skipped": r.skipped} if r.skipped is not None else {}),
        **r.extra,
    }
