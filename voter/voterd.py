"""voterd: the board daemon's command line. Parse, check everything that can fail, build, run.

Every mistake in the input is found here, before the board ticks, and said in
one line: the command line (exit 2), then the configuration and the key (exit 78,
EX_CONFIG: systemd does not restart it) before any port is touched, then the
sensor and the ports (exit 69, EX_UNAVAILABLE: a device may come up later, so
systemd retries). What runs is `voter.daemon.Daemon`; the codes are in
`voter.exitcodes`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voter._cli_util import HelpFormatter, add_version, epilog, fail
from voter.agent import FaultAgent
from voter.budget import (
    ROUNDS_FRACTION,
    Budget,
    TimingBudget,
    admit_config,
    check_cluster,
    smr_slot_bytes,
)
from voter.commandlog import CommandLog, build_port
from voter.config import ClusterConfig, ConfigFileError, NodeConfig, load_cluster
from voter.core.adversary import Strategy
from voter.core.board import Board
from voter.core.crypto import KeyRing
from voter.core.diagnosis import make_diagnosis
from voter.core.driver import TickDriver, Timing
from voter.core.ic import ic_params
from voter.core.mode import sizing_algorithm
from voter.core.protocol import Params
from voter.core.validity import from_limits
from voter.core.values import ReadingDomain, Value
from voter.daemon import Daemon, Options, Parts
from voter.decision_log import DecisionLog
from voter.exitcodes import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    VOTERD_STATUSES,
    SetupError,
)
from voter.faults import FaultState
from voter.health import Health
from voter.join import Joiner
from voter.keys import KeyFileError, load_signing_key, parse_public_key
from voter.links import Link, LinkError
from voter.localclock import Clock
from voter.logsink import Log
from voter.output import Output, OutputError, open_outputs
from voter.peerlinks import PeerLinks
from voter.sdnotify import Notifier
from voter.sensors import SensorError, SensorSource, open_sensor
from voter.smr_faults import BoardTraitor


def _load(args: argparse.Namespace) -> tuple[ClusterConfig, NodeConfig, Budget]:
    """The cluster file, this board's entry, and the frame budget voterd can run."""
    try:
        cfg = load_cluster(Path(args.config))
        node = cfg.node(args.node)
    except ConfigFileError as e:
        fail(str(e), EXIT_CONFIG)
    try:
        budget = check_cluster(
            cfg.n, cfg.m, sizing_algorithm(cfg.algorithm, cfg.degrade), cfg.wire_channels
        )
    except ValueError as e:
        fail(f"{cfg.path}: {e}", EXIT_CONFIG)
    return cfg, node, budget


def _admit(cfg: ClusterConfig, latency_s: float, log: Log) -> TimingBudget:
    """This board's measured CPU per round, the wire, the link latency and the precision
    against the round slots. A rate that does not fit is not refused (the board withholds
    what it cannot vouch for), but it is said, once, with the rate that fits."""
    precision_s = cfg.precision_ms / 1000
    admission = admit_config(
        cfg,
        latency_s=latency_s,
        precision_s=precision_s,
        precision_fraction=0.0 if precision_s else 1 / 8,
    )
    if not admission.fits:
        log.warning(admission.message, **admission.as_dict())
    return admission


def _keys(cfg: ClusterConfig, node: NodeConfig) -> KeyRing:
    """Every board's public key, and this board's own signing key (checked against its entry)."""
    try:
        own = load_signing_key(node.key_file)
    except KeyFileError as e:
        fail(str(e), EXIT_CONFIG)
    if bytes(own.verify_key) != node.public_key:
        fail(
            f"{node.key_file} does not match node {node.id}'s public key in {cfg.path}",
            EXIT_CONFIG,
        )
    verify = {n.id: parse_public_key(n.public_key.hex()) for n in cfg.nodes}
    return KeyRing(verify_keys=verify, signing_keys={node.id: own})


def _open_io(cfg: ClusterConfig, node: NodeConfig) -> tuple[SensorSource, dict[int, Link]]:
    """The sensor and one link per peer; on any failure, what was opened is closed again."""
    try:
        sensor = open_sensor(node.sensor, len(cfg.channels), node.id, cfg.period_s, cfg.path.parent)
    except SensorError as e:
        fail(str(e), EXIT_UNAVAILABLE)
    links: dict[int, Link] = {}
    try:
        for peer, url in sorted(node.links.items()):
            links[peer] = Link.open(
                peer, url, cfg.baud, cfg.id, command_log=cfg.replication is not None
            )
    except LinkError as e:
        for link in links.values():
            link.close()
        sensor.close()
        fail(str(e), EXIT_UNAVAILABLE)
    return sensor, links


def _output(cfg: ClusterConfig, node: int, log: Log) -> Output:
    """The output socket and the network outputs this board is configured with, opened."""
    try:
        sinks, warnings = open_outputs(cfg, node)
    except OutputError as e:
        fail(str(e), EXIT_UNAVAILABLE)  # a busy port, no socket allowed, no pymavlink
    for warning in warnings:
        log.warning(warning)
    return Output(cfg.output_socket_for(node), sinks)


def _timing(cfg: ClusterConfig, rounds: int, latency_s: float, budget: Budget) -> Timing:
    return Timing(
        cfg.period_s,
        rounds,
        cfg.n,
        ROUNDS_FRACTION,
        precision_s=cfg.precision_ms / 1000,
        latency_s=latency_s,
        # Round-1 frames carry the timing block on top of the budget's frames (<= 12 bytes).
        wire_s=(max(budget.round_bytes) + 12) * 10 / cfg.baud,
        publish=cfg.publish,
        fail_silent=cfg.fail_silent,
    )


def build(args: argparse.Namespace) -> Daemon:
    """Everything that can fail on bad input, each as one clear line (see the module doc)."""
    cfg, node, budget = _load(args)
    keys = _keys(cfg, node)  # the secret before the hardware: a bad key is not a port problem
    log = Log(args.node)
    latency_s = args.link_latency_us * 1e-6
    admission = _admit(cfg, latency_s, log)
    output = _output(cfg, args.node, log)
    sensor, links = _open_io(cfg, node)
    params = ic_params(cfg.n, cfg.m, cfg.algorithm, cfg.id)
    timing = _timing(cfg, params.rounds, latency_s, budget)
    seed = args.seed if args.seed is not None else args.node
    faults = FaultState(ReadingDomain(len(cfg.channels)), random.Random(seed), cfg.period_s)
    driver = _driver(cfg, args, keys, (params, timing), sensor.read, faults)
    clock = Clock()
    common = args.start_at is not None or args.start_when_told
    health = Health(driver, Notifier(), common_start=common)
    dlog = DecisionLog(cfg.log_path(args.node))
    agent = None
    if args.hil:
        agent = FaultAgent(
            args.node,
            faults,
            clock,
            dlog,
            log,
            health,
            control=args.control or node.control,
            control_baud=args.control_baud or cfg.baud,
            expects_start=args.start_when_told,
        )
    parts = Parts(
        cfg=cfg,
        me=args.node,
        driver=driver,
        clock=clock,
        links=PeerLinks(links),
        sensor=sensor,
        dlog=dlog,
        log=log,
        joiner=Joiner(args.node, timing, cfg.baud),
        health=health,
        output=output,
        agent=agent,
        commands=_commands(cfg, args.node, keys, dlog, faults if args.hil else None, seed),
    )
    return Daemon(parts, _options(args, admission))


def _driver(
    cfg: ClusterConfig,
    args: argparse.Namespace,
    keys: KeyRing,
    plan: tuple[Params, Timing],
    read: Callable[[int], Value],
    faults: FaultState,
) -> TickDriver:
    """The board's tick: its Board (with diagnosis when configured) under the tick driver."""
    params, timing = plan
    diagnosis = (
        None
        if cfg.diagnosis is None
        else make_diagnosis(cfg.diagnosis, params, args.node, len(cfg.channels))
    )
    driver = TickDriver(
        Board(params, args.node, len(cfg.channels), keys, diagnosis),
        timing,
        read,
        algorithm=cfg.algorithm,
        sabotage=faults if args.hil else None,
        cpu_clock=time.process_time,
        validity=from_limits(cfg.validity, cfg.channels, cfg.period_s),
        degrade=cfg.degrade,
    )
    driver.stop_after = args.until_tick
    return driver


def _commands(
    cfg: ClusterConfig,
    node: int,
    keys: KeyRing,
    dlog: DecisionLog,
    faults: FaultState | None,
    seed: int,
) -> CommandLog | None:
    """The replicated command log, when cluster.toml has a [replication] table; under --hil
    the traitor the fault agent sets acts in it too (silent: its writes dropped; the
    others: `voter.smr_faults.BoardTraitor` rewrites its replica's sends)."""
    if cfg.replication is None:
        return None
    # request numbers from the wall clock: unique across this board's restarts
    port = build_port(cfg, node, keys, smr_slot_bytes(cfg), first_req=time.time_ns() // 1000)
    if faults is None:
        return CommandLog(port, cfg.command_socket_for(node), dlog)
    port.rewrite = BoardTraitor(node, cfg.n, cfg.id, keys, faults.traitor, random.Random(seed))
    silent = lambda tick: faults.traitor(tick) == Strategy.SILENT  # noqa: E731
    return CommandLog(port, cfg.command_socket_for(node), dlog, silent)


def _options(args: argparse.Namespace, admission: TimingBudget | None) -> Options:
    """How this run starts and ends, from the command line."""
    return Options(
        listen_s=args.listen,
        realtime=not args.no_realtime,
        start_at=args.start_at,
        start_when_told=args.start_when_told,
        start_timeout_s=args.start_timeout,
        max_ticks=args.ticks,
        admission=admission,
    )


EXAMPLES = (
    "voterd --config /etc/voter/cluster.toml --node 2   # as the systemd unit runs it",
    "voterd --config cluster.toml --node 0 --ticks 500 --no-realtime   # a bench run",
)


def _add_start_options(parser: argparse.ArgumentParser) -> None:
    """The HIL rig's ways to give every board the same tick 0."""
    parser.add_argument(
        "--start-at",
        type=float,
        default=None,
        help="HIL: common epoch on CLOCK_MONOTONIC instead of listening",
    )
    parser.add_argument(
        "--start-when-told",
        action="store_true",
        help="HIL: get ready, then wait for the rig's `start` command (a common tick 0 "
        "chosen once every board is ready)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="HIL: with --start-when-told, exit 69 after S seconds without `start`",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voterd",
        description="Board daemon: interactive consistency on serial links.\n"
        "It checks the command line, then the config and key, then opens the sensor\n"
        "and the ports (each mistake one line, see exit status), then ticks.",
        formatter_class=HelpFormatter,
        epilog=epilog(EXAMPLES, VOTERD_STATUSES),
    )
    add_version(parser)
    parser.add_argument("--config", required=True, help="cluster TOML (voter cluster init)")
    parser.add_argument("--node", required=True, type=int, help="this board's node id")
    parser.add_argument(
        "--hil", action="store_true", help="HIL mode: accept fault commands on the control socket"
    )
    parser.add_argument(
        "--control",
        default="",
        help="HIL control: a unix socket path, or serial:PORT (overrides the config's control)",
    )
    parser.add_argument(
        "--control-baud",
        type=int,
        default=None,
        help="baud of a serial:PORT control line (default: the cluster's baud)",
    )
    parser.add_argument(
        "--listen",
        type=float,
        default=None,
        help="seconds to listen for running peers before a cold start "
        "(default: 5 periods, at least 0.5)",
    )
    _add_start_options(parser)
    parser.add_argument("--ticks", type=int, default=None, help="stop after this many ticks")
    parser.add_argument(
        "--until-tick", type=int, default=None, help="stop after deciding this tick"
    )
    parser.add_argument("--seed", type=int, default=None, help="HIL: seed of injected faults")
    parser.add_argument("--no-realtime", action="store_true", help="do not ask for SCHED_FIFO")
    parser.add_argument(
        "--link-latency-us",
        type=float,
        default=0.0,
        help="fixed link latency beyond the wire time (USB adapter, pty forwarder)",
    )
    return parser


def main(argv: list[str] | None = None, exit_fn: Callable[[int], Any] = SystemExit) -> None:
    args = _parser().parse_args(argv)
    if args.start_at is not None and not args.hil:
        fail("--start-at is a HIL option (add --hil)")
    if args.start_when_told and not args.hil:
        fail("--start-when-told is a HIL option (add --hil)")
    if args.start_when_told and args.start_at is not None:
        fail("--start-at and --start-when-told are two ways to start: give one")
    if not args.start_timeout > 0:
        fail("--start-timeout must be a positive number of seconds")
    daemon = build(args)
    try:
        code = daemon.run()
    except KeyboardInterrupt:
        code = EXIT_OK
    except SetupError as e:
        fail(str(e), EXIT_UNAVAILABLE)
    raise exit_fn(code)
