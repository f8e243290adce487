"""hil: the rig's command line (generals, verify; campaigns come with the HIL issue)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from voter._cli_util import fail, not_implemented


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
    from hil.verify import format_result, search
    from voter.core.protocol import ConfigError

    if args.traitors < 0 or args.traitors > args.nodes:
        fail(f"--traitors must be 0..{args.nodes}")
    if args.max_runs < 0 or args.samples < 1:
        fail("--max-runs must be >= 0 and --samples >= 1")

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty() and not args.json:
            print(f"\r  {done:,}/{total:,} cases", end="", file=sys.stderr, flush=True)

    try:
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
    except ConfigError as e:
        fail(str(e))
    if sys.stderr.isatty() and not args.json:
        print("\r", end="", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_result(result))
    # The command answers a question; finding a violation is an answer, not an error.
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="hil", description="Hardware-in-the-loop rig: generals, adversary search, campaigns."
    )
    sub = parser.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generals", help="run one Byzantine generals scenario (TOML)")
    g.add_argument("scenario", help="scenario TOML file")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.set_defaults(func=_generals)

    v = sub.add_parser("verify", help="search every traitor placement and message choice")
    v.add_argument("--nodes", type=int, required=True)
    v.add_argument("--m", type=int, required=True)
    v.add_argument("--algorithm", choices=("om", "sm"), required=True)
    v.add_argument("--traitors", type=int, required=True)
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
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)

    c = sub.add_parser("campaign", help="fault campaigns (not implemented yet)")
    c.add_argument("rest", nargs=argparse.REMAINDER)
    c.set_defaults(func=lambda a: not_implemented("hil campaign"))

    args = parser.parse_args(argv)
    raise SystemExit(args.func(args))
