"""firmware-sim: N real voterd processes on pty links through the HIL link fabric."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voter._cli_util import add_version, broken_pipe_exit, fail
from voter.core.driver import PUBLISH_MODES, parse_publish
from voter.core.protocol import ALGORITHMS
from voter.faultmodel import EXAMPLES, KINDS

if TYPE_CHECKING:
    from hil.scenario import Scenario
    from voter.budget import TimingBudget
    from voter.core.mode import DegradeConfig
    from voter.core.validity import ChannelLimits


def _run(args: argparse.Namespace) -> int:
    from firmware_sim.view import LiveView
    from hil.cluster import ClusterError
    from hil.pty_run import FeasibilityError, run
    from hil.scenario import CHANNELS
    from hil.verdict import summary

    spec = _scenario(args)
    sensors = _sensors(args.sensor, spec.nodes, len(CHANNELS))
    out = Path(args.out)
    realtime = not args.no_realtime
    view = LiveView(spec) if args.live or (args.live is None and sys.stdout.isatty()) else None
    try:
        if view is not None:
            with view:
                result = run(
                    spec,
                    out,
                    realtime=realtime,
                    watch=view.update,
                    on_admission=_warn_unless_fits,
                    sensors=sensors,
                )
        else:
            result = run(
                spec, out, realtime=realtime, on_admission=_warn_unless_fits, sensors=sensors
            )
    except FeasibilityError as e:
        fail(str(e))
    except ClusterError as e:
        fail(str(e), 1)
    except KeyboardInterrupt:
        print(f"interrupted: boards and fabric stopped; logs in {out}", file=sys.stderr)
        return 130
    print(summary(result))
    return 0 if result.ok else 1


def _sensors(given: list[str], nodes: int, channels: int) -> dict[int, dict[str, Any]]:
    """--sensor NODE=TABLE, each table checked as cluster.toml's (one line and exit 2)."""
    import tomllib

    from voter.config import ConfigFileError, check_sensor_table

    out: dict[int, dict[str, Any]] = {}
    for text in given:
        node_s, sep, table = text.partition("=")
        if not sep or not node_s.strip().isdigit() or not 0 <= int(node_s) < nodes:
            fail(f"--sensor {text!r}: expected NODE=TABLE with NODE in 0..{nodes - 1}")
        node = int(node_s)
        if node in out:
            fail(f"--sensor: board {node} is named twice")
        try:
            value = tomllib.loads(f"sensor = {table}")["sensor"]
            out[node] = check_sensor_table(value, f"--sensor {node}", node, channels)
        except tomllib.TOMLDecodeError as e:
            fail(f"--sensor {node}: not a TOML inline table: {e}")
        except ConfigFileError as e:
            fail(str(e))
    return out


def _scenario(args: argparse.Namespace) -> Scenario:
    """The run's options checked (one line and exit 2 on a bad one) and made a Scenario."""
    from hil.faultspec import validate_run
    from hil.scenario import CHANNELS, Scenario
    from voter.core.diagnosis import DiagnosisConfig
    from voter.faultmodel import FaultSpecError, SensorFault, parse_fault

    if not 2 <= args.nodes <= 16:
        fail("--nodes must be 2..16")
    if args.ticks < 1 or args.tick_hz <= 0 or args.tick_hz > 1000:
        fail("--ticks must be >= 1 and --tick-hz in (0, 1000]")
    if not 0 <= args.m <= 6:
        fail("--m must be 0..6")
    try:
        faults = [parse_fault(f, args.nodes) for f in args.fault]
        validate_run(faults, args.ticks, args.tick_hz)
    except FaultSpecError as e:
        fail(f"--fault: {e}")
    diagnosis = None
    if args.diagnosis is not None:
        if args.diagnosis < 1:
            fail("--diagnosis needs a probation of at least 1 tick")
        diagnosis = DiagnosisConfig(probation_ticks=args.diagnosis)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a directory")
    for f in faults:
        if isinstance(f, SensorFault) and (f.channel or 0) >= len(CHANNELS):
            fail(f"--fault: sensor: channel {f.channel} is not in 0..{len(CHANNELS) - 1}")
    return Scenario(
        name="firmware-sim",
        nodes=args.nodes,
        algorithm=args.algorithm,
        m=args.m,
        tick_hz=args.tick_hz,
        ticks=args.ticks,
        baud=args.baud,
        seed=args.seed,
        faults=tuple(faults),
        publish=parse_publish(args.publish),
        fail_silent=not args.no_fail_silent,
        diagnosis=diagnosis,
        degrade=_degrade(args),
        validity=_validity(args.validity),
    )


def _degrade(args: argparse.Namespace) -> DegradeConfig | None:
    """`--degrade sm`: the cluster file's [degrade] (one line and exit 2 if it cannot apply)."""
    from voter.core.mode import parse_degrade
    from voter.core.protocol import Algorithm

    if args.degrade is None:
        return None
    try:
        return parse_degrade(Algorithm(args.algorithm), args.degrade)
    except ValueError as e:
        fail(f"--degrade: {e}")


def _validity(text: str | None) -> tuple[ChannelLimits, ...]:
    """--validity TABLE, checked as cluster.toml's [validity] (one line and exit 2)."""
    import tomllib

    from hil.scenario import CHANNELS
    from voter.config import ConfigFileError, parse_validity

    if text is None:
        return ()
    try:
        return parse_validity(tomllib.loads(f"v = {text}")["v"], CHANNELS, "--validity")
    except tomllib.TOMLDecodeError as e:
        fail(f"--validity: not a TOML inline table: {e}")
    except ConfigFileError as e:
        fail(str(e))


def _warn_unless_fits(budget: TimingBudget) -> None:
    if not budget.fits:
        print(
            f"firmware-sim: warning: {budget.message} (measured on this host; boards that "
            "cannot keep the schedule withhold their decisions: expect lower availability)",
            file=sys.stderr,
            flush=True,
        )


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help at spaces only: a fault kind split at its hyphen reads as two words."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="firmware-sim",
        description="Simulated boards on a laptop: real voterd processes on pty serial links.",
    )
    add_version(parser)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser(
        "run",
        help="run N boards for K ticks and check agreement and validity",
        formatter_class=_HelpFormatter,
    )
    r.add_argument("--nodes", type=int, default=4)
    r.add_argument("--algorithm", choices=ALGORITHMS, default="om")
    r.add_argument("--m", type=int, default=1)
    r.add_argument("--tick-hz", type=float, default=50.0)
    r.add_argument("--ticks", type=int, default=500)
    r.add_argument("--out", required=True, help="run directory (decision logs, run.json)")
    r.add_argument(
        "--baud", type=int, default=921600, help="emulated line rate of every link (0 = no limit)"
    )
    r.add_argument(
        "--fault",
        action="append",
        default=[],
        help=f"KIND:TARGET[:PARAM] (repeatable); KIND is one of {', '.join(KINDS)}; "
        f"e.g. {', '.join(EXAMPLES)}",
    )
    r.add_argument("--seed", type=int, default=0)
    _add_board_options(r)
    r.set_defaults(func=_run)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except BrokenPipeError:  # `firmware-sim run ... | head`: the boards are stopped by now
        code = broken_pipe_exit()
    raise SystemExit(code)


def _add_board_options(r: argparse.ArgumentParser) -> None:
    """What the boards run with: sensors, checks, view, publication, diagnosis, degradation."""
    r.add_argument(
        "--sensor",
        action="append",
        default=[],
        metavar="NODE=TABLE",
        help="board NODE reads a real sensor: TABLE is its cluster.toml sensor table, e.g. "
        '\'1={kind="iio", device="bmp280", channels=["in_pressure_input", ...]}\' '
        "(docs/deploy.md, Sensors; repeatable)",
    )
    r.add_argument(
        "--validity",
        metavar="TABLE",
        help="the boards' checks on their own readings: TABLE is cluster.toml's [validity] "
        "as an inline table, e.g. '{stale_samples = 5, altitude_m = {min = 0.0, max_rate = "
        "300.0}}' (docs/deploy.md, Sensor validity)",
    )
    r.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live terminal view (default: when stdout is a terminal)",
    )
    r.add_argument("--no-realtime", action="store_true", help="boards do not ask for SCHED_FIFO")
    r.add_argument(
        "--publish",
        choices=PUBLISH_MODES,
        default="confirmed",
        help="publish a tick once the next tick confirms it (default), or at once",
    )
    r.add_argument(
        "--diagnosis",
        type=int,
        metavar="PROBATION_TICKS",
        default=None,
        help="isolate by agreement (SM: proven equivocators; OM/OMH: a penalty/reward count), "
        "re-admit after this many clean ticks",
    )
    r.add_argument(
        "--degrade",
        choices=("sm",),
        default=None,
        help="OM/OMH: switch to SM at an agreed tick when one more fault would break the bound",
    )
    r.add_argument(
        "--no-fail-silent",
        action="store_true",
        help="debug: boards publish every decision (no self-checks, no clique avoidance)",
    )


if __name__ == "__main__":
    main()
