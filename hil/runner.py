"""`hil campaign run` and `hil campaign merge`: scenarios in parallel or in shards, then reports."""

from __future__ import annotations

import collections
import json
import multiprocessing
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hil.campaign import (
    Campaign,
    CampaignError,
    ScenarioResult,
    load_campaign,
    run_scenario,
    scenario_to_json,
    scenario_toml,
    seeded_name,
    shrink,
)
from hil.faultspec import faulty_nodes, validate_run
from hil.progress import RateColumn
from hil.report import NO_PLOTS, drawn, fault_windows, plotting, run_metadata, write_all
from hil.rig import Rig, RigError, load_rig
from hil.scenario import Scenario
from voter.faultmodel import FaultSpecError
from voter.textfile import TextFileError, read_text

SHRINK_MAX_TICKS = 20_000  # beyond this, shrinking costs more than it tells


@dataclass
class Options:
    out: Path
    mode: str = "sim"
    jobs: int = 1
    seed: int | None = None
    #: run every scenario once per seed FIRST..LAST, as NAME-seedS (seed ranges: soaks)
    seeds: tuple[int, int] | None = None
    shard: tuple[int, int] | None = None
    only: Sequence[str] = ()
    ticks: int | None = None
    tick_hz: float | None = None
    shrink: bool = True
    progress: bool = True
    rig: Path | None = None
    #: the command line the report names (None: this process's sys.argv)
    command: Sequence[str] | None = None
    #: "local" (this machine: --jobs processes) or "dask" (a Dask scheduler's workers)
    engine: str = "local"
    #: dask: the scheduler to connect to (None: a LocalCluster of `workers` processes)
    scheduler: str | None = None
    workers: int | None = None
    #: called in this process as each scenario's result arrives (the progress bar's
    #: moment; the distributed engine's test kills a worker here)
    on_result: Callable[[ScenarioResult], None] | None = None


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise CampaignError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if not 0 <= i < n:
        raise CampaignError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def parse_seeds(text: str) -> tuple[int, int]:
    try:
        first, last = (int(x) for x in text.split(".."))
    except ValueError:
        raise CampaignError(f"--seeds {text!r}: expected FIRST..LAST, e.g. 1..100") from None
    if not 0 <= first <= last:
        raise CampaignError(f"--seeds {text!r}: need 0 <= FIRST <= LAST")
    return first, last


def select(c: Campaign, opts: Options) -> list[Scenario]:
    chosen = list(c.scenarios)
    if opts.only:
        unknown = sorted(set(opts.only) - {s.name for s in chosen})
        if unknown:
            raise CampaignError(f"--only: no scenario named {', '.join(unknown)}")
        chosen = [s for s in chosen if s.name in opts.only]
    if opts.seed is not None:
        chosen = [replace(s, seed=opts.seed) for s in chosen]
    if opts.seeds is not None:  # before sharding: a shard is a share of the seed range too
        first, last = opts.seeds
        chosen = [
            replace(s, name=seeded_name(s.name, k), seed=k)
            for s in chosen
            for k in range(first, last + 1)
        ]
    if opts.ticks is not None:
        chosen = [replace(s, ticks=opts.ticks) for s in chosen]
        for s in chosen:  # a fault past the shortened run would silently never fire
            try:
                validate_run(list(s.faults), s.ticks, s.tick_hz)
            except FaultSpecError as e:
                raise CampaignError(f"--ticks {opts.ticks}: scenario {s.name!r}: {e}") from None
    if opts.tick_hz is not None:
        chosen = [replace(s, tick_hz=min(s.tick_hz, opts.tick_hz)) for s in chosen]
    if opts.shard is not None:
        i, n = opts.shard
        chosen = [s for k, s in enumerate(chosen) if k % n == i]
    return chosen


def _ignore_sigint() -> None:
    """A pool worker leaves Ctrl-C to the parent, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_one(args: tuple[Scenario, str, str]) -> ScenarioResult:
    sc, mode, out = args
    return run_scenario(sc, mode, Path(out))


def run_campaign(path: Path, opts: Options) -> int:
    campaign = load_campaign(path)
    rig: Rig | None = None
    if opts.mode == "serial":
        if opts.rig is None:
            raise CampaignError(
                "--mode serial needs --rig RIG.toml naming the boards' cluster file and the "
                "rig's control and link ports (docs/hil.md)"
            )
        try:
            rig = load_rig(opts.rig)
        except RigError as e:
            raise CampaignError(str(e)) from None
    scenarios = select(campaign, opts)
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    with _bar(opts.progress) as bar:
        task = bar.add_task(f"campaign {campaign.name} ({opts.mode})", total=len(scenarios))

        def arrived(r: ScenarioResult) -> None:
            bar.advance(task)
            if opts.on_result is not None:
                opts.on_result(r)

        if opts.engine == "dask":
            results = _run_dask(scenarios, opts, arrived)
        else:
            results = _run_local(
                scenarios, opts, rig, arrived, lambda d: bar.update(task, description=d)
            )
    report = _report(campaign, results, opts)
    write_all(out, report)
    _note_missing_plots()
    return 0 if all(s["passed"] for s in report["scenarios"]) else 1


def _run_local(
    scenarios: list[Scenario],
    opts: Options,
    rig: Rig | None,
    arrived: Callable[[ScenarioResult], None],
    describe: Callable[[str], None],
) -> list[ScenarioResult]:
    """This machine: one scenario at a time, or --jobs worker processes (sim mode)."""
    results: list[ScenarioResult] = []
    jobs = max(1, opts.jobs)
    if opts.mode != "sim" and jobs > 1:
        jobs = 1  # real processes on 2 cores: parallel runs would make their own timing faults
    if jobs > 1:
        # multiprocessing's Pool, not ProcessPoolExecutor: on Ctrl-C its `with` ends in
        # terminate() (the executor would first finish every queued scenario), and the
        # workers ignore SIGINT so a Ctrl-C to the terminal's group prints no traceback each.
        with multiprocessing.Pool(jobs, initializer=_ignore_sigint) as pool:
            for r in pool.imap(_run_one, [(s, opts.mode, str(opts.out)) for s in scenarios]):
                results.append(r)
                arrived(r)
    else:
        for s in scenarios:
            describe(f"{s.name} ({opts.mode})")
            results.append(run_scenario(s, opts.mode, opts.out, rig=rig))
            arrived(results[-1])
    return results


def _run_dask(
    scenarios: list[Scenario], opts: Options, arrived: Callable[[ScenarioResult], None]
) -> list[ScenarioResult]:
    """A Dask scheduler's workers (docs/hil.md, "On a cluster"): the simulator only.

    A pty run's timing is the host's, and a serial run's boards hang off one rig PC:
    neither is a task to hand to whichever machine is free."""
    from hil import dask_run

    if opts.mode != "sim":
        raise CampaignError(f"--engine dask runs --mode sim campaigns only, not {opts.mode}")
    # default: a worker per core, but no idle ones (each costs a second or two to start)
    workers = opts.workers or max(1, min(os.cpu_count() or 1, len(scenarios)))
    with dask_run.client(opts.scheduler, workers) as c:
        return dask_run.run_scenarios(c, scenarios, opts.mode, opts.out, arrived)


def _bar(enabled: bool) -> Progress:
    """The one progress bar of `hil campaign run`: done of total, rate, elapsed and ETA."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(digits=2),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def _note_missing_plots() -> None:
    if plotting() is None:
        print(f"hil: note: {NO_PLOTS}", file=sys.stderr)


def _report(campaign: Campaign, results: list[ScenarioResult], opts: Options) -> dict[str, Any]:
    """Shrink the simulator's violations, plot every timeline, and gather report.json's rows.

    Shrinking re-runs a scenario many times; this phase gets its own bar so a long
    campaign is not silent after the runs' bar is full."""
    out = opts.out
    plots = plotting()
    rows = []
    with _bar(opts.progress) as bar:
        task = bar.add_task("report", total=len(results))
        for r in results:
            if (
                opts.shrink
                and r.mode == "sim"
                and r.outcome == "violation"
                and r.scenario.replication is None  # a command log's ticks: a limit, not a length
                and r.scenario.ticks <= SHRINK_MAX_TICKS
            ):
                bar.update(task, description=f"shrinking {r.scenario.name}")
                r.shrunk = _shrink(r.scenario, campaign, out)
            bar.update(task, description=f"plotting {r.scenario.name}")
            row = scenario_to_json(r, campaign, out)
            png = out / "plots" / f"{r.scenario.name}.png"
            png.unlink(missing_ok=True)  # no stale plot from an earlier run into this --out
            if plots is not None and drawn(row, len(results)):
                plots.timeline_png(
                    png,
                    r.scenario.name,
                    r.timeline,
                    fault_windows(row, r.scenario.faults),
                    row["violations"],
                    r.scenario.ticks,
                    faulty_nodes(list(r.scenario.faults)),
                    row.get("isolation"),
                    row.get("modes"),
                )
            rows.append(row)
            bar.advance(task)
        bar.update(task, description="report")
    report: dict[str, Any] = {
        "campaign": campaign.name,
        "seed": campaign.seed,
        "mode": opts.mode,
        "meta": run_metadata(opts.command),
        "scenarios": rows,
    }
    if opts.shard is not None:
        report["shard"] = f"{opts.shard[0]}/{opts.shard[1]}"
    return report


def _shrink(sc: Scenario, campaign: Campaign, out: Path) -> dict[str, Any]:
    """The smallest run that still violates, as a campaign file and the command that runs it.

    Its report goes to OUT/repro/NAME-shrunk: neither this report nor the full
    scenario's reproduction (OUT/repro/NAME) is overwritten by running it."""
    small = shrink(sc)
    repro = out / "repro" / f"{small.name}.toml"
    repro.parent.mkdir(parents=True, exist_ok=True)
    repro.write_text(scenario_toml(small, campaign.name))
    shrunk_out = out / "repro" / f"{small.name}-shrunk"
    return {
        "ticks": small.ticks,
        "faults": [f.describe() for f in small.faults],
        "file": str(repro),
        "command": shlex.join(
            ["hil", "campaign", "run", str(repro), "--out", str(shrunk_out), "--mode", "sim"]
        ),
    }


def _shard_report(part: Path) -> dict[str, Any]:
    """A shard's report.json, or one CampaignError line saying why it is not one."""
    path = part / "report.json"
    try:
        rep = json.loads(read_text(path))
    except TextFileError as e:
        raise CampaignError(f"{e} (is {part} a `hil campaign run` report directory?)") from None
    except ValueError as e:
        raise CampaignError(f"{path}: not valid JSON: {e}") from None
    rows = rep.get("scenarios") if isinstance(rep, dict) else None
    if (
        not isinstance(rep, dict)
        or "campaign" not in rep
        or not isinstance(rows, list)
        or not all(isinstance(r, dict) and {"name", "passed"} <= set(r) for r in rows)
    ):
        raise CampaignError(f"{path}: not a campaign report (campaign and scenarios expected)")
    return rep


def merge(out: Path, parts: Sequence[Path]) -> int:
    """Combine shard directories (each with report.json and plots/) into one report."""
    scenarios: list[dict[str, Any]] = []
    head: dict[str, Any] | None = None
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for part in parts:
        rep = _shard_report(part)
        head = head or rep
        if rep["campaign"] != head["campaign"]:
            raise CampaignError(
                f"{part}: campaign {rep['campaign']!r}, expected {head['campaign']!r}"
            )
        scenarios.extend(rep["scenarios"])
        for png in (part / "plots").glob("*.png"):
            if png.name != "coverage.png" and os.path.abspath(png.parent) != os.path.abspath(
                out / "plots"
            ):
                shutil.copy(png, out / "plots" / png.name)
    if head is None:
        raise CampaignError("nothing to merge")
    names = [s["name"] for s in scenarios]
    dup = sorted(n for n, k in collections.Counter(names).items() if k > 1)
    if dup:
        raise CampaignError(f"scenario(s) in more than one shard: {', '.join(dup)}")
    report = {
        "campaign": head["campaign"],
        "seed": head["seed"],
        "mode": head.get("mode"),
        "scenarios": scenarios,
        "merged_from": [str(p) for p in parts],
        "meta": run_metadata(),
    }
    write_all(out, report)
    _note_missing_plots()
    return 0 if all(s["passed"] for s in scenarios) else 1
