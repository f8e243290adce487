"""hil: the rig's command line (generals, verify, campaigns in sim, pty and serial mode)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from voter._cli_util import HelpFormatter, add_version, broken_pipe_exit, epilog, fail
from voter.core.protocol import ALGORITHMS
from voter.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from hil.hybrid import Mix


def _generals(args: argparse.Namespace) -> int:
    from hil.generals import ScenarioError, format_trace, load_scenario, run_generals

    try:
        scenario = load_scenario(Path(args.scenario))
    except ScenarioError as e:
        fail(str(e))
    result = run_generals(scenario)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_trace(result))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from hil.progress import counting_bar
    from hil.verify import format_result, search
    from voter.core.protocol import ConfigError

    mix = _hybrid_mix(args)
    if mix is None and (args.traitors < 0 or args.traitors > args.nodes):
        fail(f"--traitors must be 0..{args.nodes}")
    if args.max_runs < 0 or args.samples < 1:
        fail("--max-runs must be >= 0 and --samples >= 1")
    try:
        with counting_bar("verify", "cases") as progress:
            if mix is not None:
                from hil.hybrid import search_hybrid

                result = search_hybrid(
                    args.nodes,
                    args.m,
                    args.algorithm,
                    mix,
                    max_runs=args.max_runs,
                    samples=args.samples,
                    seed=args.seed,
                    progress=progress,
                )
            else:
                result = search(
                    args.nodes,
                    args.m,
                    args.algorithm,
                    args.traitors,
                    max_runs=args.max_runs,
                    samples=args.samples,
                    seed=args.seed,
                    progress=progress,
                )
    except (ConfigError, ValueError) as e:
        fail(str(e))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_result(result))
    # SPEC: exit 0 iff the property holds, so a script can tell (the counterexample is printed).
    return EXIT_OK if result.holds else EXIT_FAILED


def _cost_table(args: argparse.Namespace) -> int:
    from hil.cost_table import cost_table, format_table

    if not 1 <= args.commands <= 100_000:
        fail("--commands must be 1..100000")
    table = cost_table(args.commands, args.seed)
    print(json.dumps(table, indent=2) if args.json else format_table(table))
    return EXIT_OK


def _hybrid_mix(args: argparse.Namespace) -> Mix | None:
    """The hybrid classes asked for, or None for a plain `--traitors F` search."""
    from hil.hybrid import Mix

    classes = (args.asymmetric, args.symmetric, args.manifest)
    if all(c is None for c in classes):
        if args.traitors is None:
            fail("give --traitors F, or the hybrid classes --asymmetric/--symmetric/--manifest")
        return None
    if args.traitors is not None:
        fail("--traitors and --asymmetric/--symmetric/--manifest exclude each other")
    a, s, b = (0 if c is None else c for c in classes)
    if min(a, s, b) < 0 or a + s + b > args.nodes:
        fail(f"--asymmetric + --symmetric + --manifest must be 0..{args.nodes}, each >= 0")
    return Mix(a, s, b)


def _campaign_run(args: argparse.Namespace) -> int:
    from hil.campaign import CampaignError
    from hil.runner import Options, parse_seeds, parse_shard, run_campaign

    if args.jobs < 1 or (args.ticks is not None and args.ticks < 1):
        fail("--jobs and --ticks must be >= 1")
    if args.rig and args.mode != "serial":
        fail("--rig is for --mode serial (real boards)")
    _check_engine(args)
    try:
        shard = parse_shard(args.shard) if args.shard else None
        seeds = parse_seeds(args.seeds) if args.seeds else None
        if seeds is not None and args.seed is not None:
            fail("--seed and --seeds: give one")
        opts = Options(
            out=Path(args.out),
            mode=args.mode,
            jobs=args.jobs,
            seed=args.seed,
            seeds=seeds,
            shard=shard,
            only=args.only,
            ticks=args.ticks,
            tick_hz=args.max_tick_hz,
            shrink=not args.no_shrink,
            progress=not args.no_progress and sys.stderr.isatty(),
            rig=Path(args.rig) if args.rig else None,
            engine=args.engine,
            scheduler=args.scheduler,
            workers=args.workers,
        )
        code = run_campaign(Path(args.campaign), opts)
    except CampaignError as e:
        fail(str(e))
    print(f"report: {Path(args.out) / 'report.html'}")
    _print_summary(Path(args.out))
    return code


def _check_engine(args: argparse.Namespace) -> None:
    """The engine's options make sense together (one line each, before anything runs)."""
    if args.engine == "local":
        if args.scheduler is not None or args.workers is not None:
            fail("--scheduler and --workers are for --engine dask")
        return
    if args.mode != "sim":
        fail(f"--engine dask runs --mode sim campaigns only, not {args.mode}")
    if args.jobs != 1:
        fail("--jobs is the local engine's; with --engine dask use --workers N or --scheduler")
    if args.workers is not None and (args.workers < 1 or args.scheduler is not None):
        fail("--workers must be >= 1, and is for a local cluster (not with --scheduler)")


def _campaign_merge(args: argparse.Namespace) -> int:
    from hil.campaign import CampaignError
    from hil.runner import merge

    try:
        code = merge(Path(args.out), [Path(p) for p in args.parts])
    except CampaignError as e:
        fail(str(e))
    _print_summary(Path(args.out))
    return code


def _print_summary(out: Path) -> None:
    report = json.loads((out / "report.json").read_text())
    for s in report["scenarios"]:
        mark = "PASS" if s["passed"] else "FAIL"
        log = s.get("command_log")
        size = f"{s['ticks']} ticks"
        if log:  # a command log: its ticks are a limit (docs/hil.md)
            size = f"{log['accepted']}/{log['commands']} commands in {log['ticks_run']} ticks"
            size += f", {log['view_changes']} view change(s)"
        print(
            f"{mark}  {s['name']}: expected {s['expect']}, got {s['outcome']} "
            f"({size}, seed {s['seed']})"
        )
        if not s["passed"]:
            print(f"      reproduce: {s['command']}")
        if s.get("shrunk"):
            print(f"      shrunk to {s['shrunk']['ticks']} ticks: {s['shrunk']['command']}")
    ok = sum(1 for s in report["scenarios"] if s["passed"])
    print(f"{ok}/{len(report['scenarios'])} scenarios passed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="hil", description="Hardware-in-the-loop rig: generals, adversary search, campaigns."
    )
    add_version(parser)
    sub = parser.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generals", help="run one Byzantine generals scenario (TOML)")
    g.add_argument("scenario", help="scenario TOML file")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.set_defaults(func=_generals)

    _add_verify(sub)

    c = sub.add_parser("campaign", help="fault campaigns: run, merge shards")
    csub = c.add_subparsers(dest="campaign_cmd", required=True)
    cr = csub.add_parser("run", help="run a campaign; writes report.json, report.html, junit.xml")
    _add_campaign_run_options(cr)
    cr.set_defaults(func=_campaign_run)
    cm = csub.add_parser("merge", help="merge shard report directories into one report")
    cm.add_argument("--out", required=True)
    cm.add_argument("parts", nargs="+", help="shard report directories")
    cm.set_defaults(func=_campaign_merge)

    ct = sub.add_parser(
        "cost-table",
        help="the seed's crash-vs-Byzantine table, measured (crash, OM(1), SM(1), PBFT)",
        description="Run crash-only Multi-Paxos, OM(1), SM(1) and PBFT on simulated boards\n"
        "and print, beside the seed's figures, what was counted (messages, rounds,\n"
        "signatures, verifies per decision) and measured (decisions/s, p50/p99 latency\n"
        "in process CPU time, no network), with the machine and the date.",
        formatter_class=HelpFormatter,
        epilog=epilog(
            ["hil cost-table", "hil cost-table --json --commands 200"],
            [(EXIT_OK, "the table was printed"), (EXIT_USAGE, "bad options (one line)")],
        ),
    )
    ct.add_argument("--json", action="store_true", help="print the table as JSON (SPEC keys)")
    ct.add_argument("--commands", type=int, default=1000, help="commands per command-log run")
    ct.add_argument("--seed", type=int, default=0, help="seed of the simulated runs")
    ct.set_defaults(func=_cost_table)
    _add_soak(sub)

    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = _interrupted(args)
    except BrokenPipeError:  # `hil verify --json | head`
        code = broken_pipe_exit()
    raise SystemExit(code)


def _interrupted(args: argparse.Namespace) -> NoReturn:
    """Ctrl-C: by now the runners' `finally` stopped every board and the fabric (pty mode)
    and the pool's workers are terminated (sim --jobs): one line and 130, no traceback."""
    what = {"verify": "search stopped, nothing printed"}.get(args.cmd, "stopped")
    if args.cmd == "soak":
        what = f"soak stopped; the parts that finished are in {args.out}/report.json"
    if args.cmd == "campaign" and args.campaign_cmd == "run":
        what = f"campaign stopped, every board with it; no report written to {args.out}"
    fresh_line = "\n" if sys.stderr.isatty() else ""  # off a progress bar's line
    print(f"{fresh_line}hil: interrupted: {what}", file=sys.stderr)
    # Nothing is left to do, and the interpreter's exit runs library finalizers that can
    # hang: in CI a Dask `Client.__del__` waited for good on its stopped event loop after
    # this line (the watchdog that was here dumped that stack). End now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _add_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`verify`: the search's parameters, with defaults, examples and exit status in --help."""
    v = sub.add_parser(
        "verify",
        help="search every traitor placement and message choice",
        description="Run one Byzantine agreement instance for every placement of the\n"
        "traitors and every choice of their messages (a seeded random sample when\n"
        "there are more than --max-runs cases); print a minimal counterexample or\n"
        "that agreement and validity hold. On a terminal, stderr shows progress\n"
        "with the rate and the time left (stdout stays clean for --json).\n"
        "With --asymmetric/--symmetric/--manifest instead of --traitors, the\n"
        "hybrid fault space: manifest traitors send nothing, symmetric ones one\n"
        "value to all, asymmetric ones anything; the result says whether the mix\n"
        "is inside the algorithm's bound (OMH: N > 2a+2s+b+m, a <= m).",
        formatter_class=HelpFormatter,
        epilog=epilog(
            [
                "hil verify --nodes 4 --m 1 --algorithm om --traitors 1   # holds: exit 0",
                "hil verify --nodes 3 --m 1 --algorithm om --traitors 1   # the impossibility: 1",
                "hil verify --nodes 4 --m 2 --algorithm sm --traitors 2 --max-runs 0 --json",
                "hil verify --nodes 4 --m 1 --algorithm omh --manifest 2   # two crashes: holds",
                "hil verify --nodes 4 --m 1 --algorithm om --manifest 2    # plain OM: fails",
            ],
            [
                (EXIT_OK, "the property holds in every case checked"),
                (EXIT_FAILED, "a counterexample was found (and printed)"),
                (EXIT_USAGE, "impossible parameters (one line on stderr)"),
                (EXIT_INTERRUPTED, "Ctrl-C"),
            ],
        ),
    )
    v.add_argument("--nodes", type=int, default=4, help="N, the commander included")
    v.add_argument("--m", type=int, default=1, help="rounds of relaying (OM(m), OMH(m), SM(m))")
    v.add_argument("--algorithm", choices=ALGORITHMS, required=True)
    v.add_argument("--traitors", type=int, default=None, help="how many nodes lie (0..N)")
    v.add_argument(
        "--asymmetric", type=int, default=None, help="hybrid: traitors that may send anything"
    )
    v.add_argument(
        "--symmetric", type=int, default=None, help="hybrid: traitors that send one value to all"
    )
    v.add_argument(
        "--manifest", type=int, default=None, help="hybrid: traitors that send nothing (crashed)"
    )
    v.add_argument(
        "--max-runs",
        type=int,
        default=1_000_000,
        help="search exhaustively when the space has at most this many cases",
    )
    v.add_argument(
        "--samples", type=int, default=20_000, help="random cases to try when the space is larger"
    )
    v.add_argument("--seed", type=int, default=1, help="seed of the random sample")
    v.add_argument("--json", action="store_true", help="print the result as JSON (SPEC keys)")
    v.set_defaults(func=_verify)


def _add_campaign_run_options(cr: argparse.ArgumentParser) -> None:
    """`campaign run`: where the report goes, which mode runs it, and per-run overrides."""
    cr.add_argument("campaign", help="campaign TOML")
    cr.add_argument("--out", required=True, help="report directory")
    cr.add_argument(
        "--mode",
        choices=("sim", "pty", "serial"),
        default="sim",
        help="sim: in-process simulator; pty: real voterd processes on ptys; "
        "serial: real boards through a rig (needs --rig)",
    )
    cr.add_argument(
        "--rig", default=None, help="serial mode: rig TOML (boards' cluster file, rig ports)"
    )
    cr.add_argument("--jobs", type=int, default=1, help="scenarios in parallel (sim mode)")
    cr.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="local: this machine (--jobs); dask: a Dask scheduler's workers (sim mode; "
        "needs voter[dist])",
    )
    cr.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help="dask: the scheduler to use, e.g. tcp://head:8786 (default: start a local "
        "cluster of --workers processes)",
    )
    cr.add_argument(
        "--workers",
        type=int,
        default=None,
        help="dask without --scheduler: worker processes (default: the CPU count, at most "
        "one per scenario)",
    )
    cr.add_argument("--seed", type=int, default=None, help="override every scenario's seed")
    cr.add_argument(
        "--seeds",
        default=None,
        metavar="FIRST..LAST",
        help="run every scenario once per seed in FIRST..LAST (inclusive), as NAME-seedS",
    )
    cr.add_argument("--shard", default=None, help="run shard I/N of the scenarios (0 <= I < N)")
    cr.add_argument("--only", action="append", default=[], help="run only this scenario")
    cr.add_argument("--ticks", type=int, default=None, help="override every scenario's ticks")
    cr.add_argument(
        "--max-tick-hz",
        type=float,
        default=None,
        help="cap every scenario's tick rate (slow or loaded machines, --mode pty)",
    )
    cr.add_argument("--no-shrink", action="store_true", help="do not shrink violations")
    cr.add_argument("--no-progress", action="store_true")


def _soak(args: argparse.Namespace) -> int:
    from hil.soak import PARTS, SoakError, load_plan, run_soak

    if not args.scale > 0:
        fail("--scale must be > 0")
    try:
        plan = load_plan(Path(args.plan)).scaled(args.scale)
    except SoakError as e:
        fail(str(e))
    parts = tuple(p for p in PARTS if not args.only or p in args.only)
    bars = not args.no_progress and sys.stderr.isatty()
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    try:
        report = run_soak(plan, Path(args.out), parts, bars, log, resume=args.resume)
    except SoakError as e:
        fail(str(e))
    for name, part in report["parts"].items():
        print(f"{'PASS' if part['passed'] else 'FAIL'}  {name}: {_soak_line(name, part)}")
    print(f"report: {Path(args.out) / 'report.html'}")
    return EXIT_OK if report["passed"] else EXIT_FAILED


def _soak_line(name: str, p: dict[str, Any]) -> str:
    """One line per part: its count, what failed and the 95 % bound where there is one."""
    if name == "ticks":
        same = all(r["identical"] for r in p["replays"])
        return (
            f"{p['ticks']:,} ticks, {p['violations']} safety violations, replays identical: {same}"
        )
    if name == "frames":
        bound = p["undetected"]["high95"]
        return (
            f"{p['corrupted']:,} corrupted frames, {p['accepted_wrong']} accepted wrongly; "
            f"undetected rate < {bound:.2e} (95 %)"
        )
    if name == "fuzz":
        return f"{p['inputs']:,} inputs, {p['escaped']} exceptions escaped"
    t = p["total"]
    line = f"{p['injections']:,} injections: " + ", ".join(f"{c} {t[c]['k']:,}" for c in t)
    sdc = [
        f"{where} {row['sdc']['k']} ({row['sdc_bounded']} inside the loyal readings)"
        for where, row in p["by_location"].items()
        if row["sdc"]["k"]
    ]
    return line + ("; silent corruption in: " + ", ".join(sdc) if sdc else "")


def _add_soak(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser(
        "soak",
        help="the reliability figures at size: ticks, corrupted frames, memory, decoder fuzz",
        description="Run a soak plan (campaigns/soak/*.toml): simulated ticks with random\n"
        "faults inside the bound, corrupted frames, memory injections classified\n"
        "against golden runs, decoder fuzzing. Writes report.json and report.html.",
        formatter_class=HelpFormatter,
        epilog=epilog(
            [
                "hil soak campaigns/soak/full.toml --out runs/soak             # make soak",
                "hil soak campaigns/soak/full.toml --out runs/s --scale 0.001  # a small one",
                "hil soak campaigns/soak/full.toml --out runs/m --only memory",
                "hil soak campaigns/soak/full.toml --out runs/soak --resume   # after a stop",
            ],
            [
                (EXIT_OK, "every part passed"),
                (EXIT_FAILED, "a part failed (the report says which and why)"),
                (EXIT_USAGE, "a plan that cannot run (one line on stderr)"),
                (EXIT_INTERRUPTED, "Ctrl-C (finished parts are in the report)"),
            ],
        ),
    )
    s.add_argument("plan", help="soak plan TOML ([soak] counts)")
    s.add_argument("--out", required=True, help="report directory")
    s.add_argument("--scale", type=float, default=1.0, help="multiply every count (e.g. 0.01)")
    s.add_argument(
        "--only",
        action="append",
        default=[],
        choices=("ticks", "frames", "memory", "fuzz"),
        help="run only this part (repeatable)",
    )
    s.add_argument(
        "--no-progress", action="store_true", help="no bars (a line a minute goes to stderr)"
    )
    s.add_argument(
        "--resume",
        action="store_true",
        help="go on with the soak in --out: keep its finished parts and episodes",
    )
    s.set_defaults(func=_soak)
