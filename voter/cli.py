"""voter: the operator's CLI for keys and the cluster configuration (keygen, cluster init/show).

Everything here is argument handling and printing around voter.keys and voter.config. User
errors (bad options, existing files, bad permissions, invalid config) end in one stderr line
and exit status 2 via `fail()`, never a traceback. It must not touch serial ports, and must
never print private key material. The one protocol it runs is in memory: `cluster init`
measures this host's tick budget (voter.budget) so that a rate the boards cannot keep is
named before anyone flies it, with the highest rate that fits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from voter._cli_util import add_version, fail
from voter.config import (
    DEFAULT_BAUD,
    DEFAULT_LOG_DIR,
    MAX_BAUD,
    MAX_CHANNELS,
    MAX_M,
    MAX_NODES,
    MAX_TICK_HZ,
    MIN_NODES,
    REPLICATION_PROTOCOLS,
    SENSOR_KINDS,
    ClusterConfig,
    ConfigFileError,
    NodeConfig,
    OutputConfig,
    ReplicationConfig,
    dump_cluster,
    load_cluster,
    loads_cluster,
)
from voter.core.protocol import ALGORITHMS
from voter.exitcodes import EXIT_FAILED, EXIT_UNAVAILABLE
from voter.keys import KeyFileError, generate_key, public_key_hex

if TYPE_CHECKING:
    from voter.budget import TimingBudget

DEFAULT_CHANNELS = "altitude_m,airspeed_mps,pitch_deg"
DEFAULT_LINK_TEMPLATE = "/dev/voter-link{peer}"
#: Timing-check defaults for a real serial link (USB adapters and UART FIFOs add well under
#: a millisecond) and a synced cluster; pty links on a laptop need more (--latency-ms).
DEFAULT_LATENCY_MS = 0.5
DEFAULT_PRECISION_MS = 0.5


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and a pointer to --help), like other errors."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see: {self.prog} --help)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="voter", description="Keys and cluster configuration for voterd.")
    add_version(parser)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=_Parser)

    kg = sub.add_parser(
        "keygen",
        help="write one Ed25519 key file (mode 0600) and print its public key",
        description="Write a new Ed25519 key (64 hex chars, mode 0600; never overwrites) and "
        "print its public key in hex, as it goes into cluster.toml.",
    )
    kg.add_argument("--out", required=True, type=Path, metavar="FILE", help="key file to create")

    cluster = sub.add_parser(
        "cluster", help="cluster configuration", description="Create or inspect a cluster.toml."
    )
    csub = cluster.add_subparsers(
        dest="cluster_cmd", required=True, metavar="SUBCOMMAND", parser_class=_Parser
    )
    init = csub.add_parser(
        "init",
        help="write DIR/cluster.toml and one key per node",
        description="Write DIR/cluster.toml and DIR/keys/node<i>.key (0600, DIR/keys 0700) with "
        "every node's public key in the TOML. Copy cluster.toml to every board, and each key "
        "only to its own board.",
    )
    _add_init_options(init)
    show = csub.add_parser(
        "show",
        help="summarise a cluster.toml",
        description="Check a cluster.toml and print its nodes, algorithm, fault bound and links.",
    )
    show.add_argument("config", type=Path, metavar="CLUSTER.toml")
    status = csub.add_parser(
        "status",
        help="each board's health from the end of its decision log",
        description="Read the end of each board's decision log (the config's log_dir, or --logs "
        "for logs collected from the boards) and print, per board: state (ok, withholding, "
        "out-of-sync, stale, stopped, missing), last tick, published/decided and why ticks were "
        "withheld, ticks in clock sync, precision, last event; with two or more logs, whether "
        "their published vectors agree. Exit 0 when every board found is ok and the vectors "
        "agree, 1 otherwise.",
    )
    status.add_argument("config", type=Path, metavar="CLUSTER.toml")
    status.add_argument(
        "--logs", type=Path, default=None, metavar="DIR", help="node<ID>.jsonl files are here"
    )
    _add_command_parser(sub)
    return parser


def _add_command_parser(sub: Any) -> None:
    """`voter command send`: a command for the replicated log ([replication] in cluster.toml)."""
    command = sub.add_parser(
        "command",
        help="the replicated command log",
        description="Commands for the replicated command log (cluster.toml [replication]).",
    )
    csub = command.add_subparsers(
        dest="command_cmd", required=True, metavar="SUBCOMMAND", parser_class=_Parser
    )
    send = csub.add_parser(
        "send",
        help="submit a command through a board and wait for f+1 matching replies",
        description="Submit COMMAND through board --node (its command socket): the board sends "
        "the signed request to every replica, and the result is printed once f+1 replicas "
        "replied alike. Exit 0 with the result; 1 with one line if no such answer came within "
        "--timeout; 69 if the board is not running.",
    )
    send.add_argument("--config", required=True, type=Path, metavar="CLUSTER.toml")
    send.add_argument("--node", required=True, type=int, help="the board to submit through")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    send.add_argument("--json", action="store_true", help="print the answer as one JSON line")
    send.add_argument("op", nargs="+", metavar="COMMAND", help="the command (words joined)")


def _add_init_options(init: argparse.ArgumentParser) -> None:
    """`cluster init`: the cluster's shape, its ports and logs, and the timing check."""
    init.add_argument("--nodes", type=int, required=True, metavar="N", help="number of boards")
    init.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    init.add_argument("--algorithm", choices=ALGORITHMS, default="om", help="default: om")
    init.add_argument("--m", type=int, default=1, metavar="M", help="rounds - 1 (default: 1)")
    init.add_argument(
        "--tick-hz", type=float, default=50.0, metavar="H", help="ticks per second (default: 50)"
    )
    init.add_argument("--id", default="voter", metavar="NAME", help="cluster id (default: voter)")
    init.add_argument(
        "--baud", type=int, default=DEFAULT_BAUD, metavar="B", help=f"default: {DEFAULT_BAUD}"
    )
    init.add_argument(
        "--channels",
        default=DEFAULT_CHANNELS,
        metavar="a,b,c",
        help=f"comma-separated channel names (default: {DEFAULT_CHANNELS})",
    )
    init.add_argument(
        "--link-template",
        default=DEFAULT_LINK_TEMPLATE,
        metavar="URL",
        help="port of each link; {peer} and {node} are substituted "
        f"(default: {DEFAULT_LINK_TEMPLATE})",
    )
    init.add_argument(
        "--log-dir",
        default=DEFAULT_LOG_DIR,
        metavar="DIR",
        help="decision log folder, relative to the config's folder (default: logs)",
    )
    _add_timing_check_options(init)
    _add_sensor_options(init)
    init.add_argument(
        "--output-socket",
        default="",
        metavar="PATH",
        help="unix datagram socket for the voted output; may contain {node} (default: none)",
    )
    _add_output_options(init)
    init.add_argument(
        "--replication",
        choices=REPLICATION_PROTOCOLS,
        default=None,
        help="also run a replicated command log ([replication], `voter command send`)",
    )


def _add_timing_check_options(init: argparse.ArgumentParser) -> None:
    """What `cluster init` needs to judge the tick rate against this host's budget."""
    init.add_argument(
        "--latency-ms",
        type=float,
        default=DEFAULT_LATENCY_MS,
        metavar="MS",
        help="fixed link latency beyond wire time, for the timing check "
        f"(default: {DEFAULT_LATENCY_MS:g})",
    )
    init.add_argument(
        "--precision-ms",
        type=float,
        default=DEFAULT_PRECISION_MS,
        metavar="MS",
        help="bound on two boards' clock offset, for the timing check "
        f"(default: {DEFAULT_PRECISION_MS:g})",
    )
    init.add_argument(
        "--check-rate",
        action="store_true",
        help="refuse (exit 2, nothing written) when the tick rate does not fit this host's "
        "measured budget; without it that is a warning",
    )


#: `cluster init --sensor-X` options: (dest, sensor table key, the kinds it applies to)
_SENSOR_OPTIONS = (
    ("sensor_path", "path", ("csv", "socket")),
    ("sensor_device", "device", ("iio",)),
    ("sensor_root", "root", ("iio",)),
    ("sensor_port", "port", ("mavlink",)),
    ("sensor_baud", "baud", ("mavlink",)),
    ("sensor_channels", "channels", ("iio", "mavlink")),
    ("sensor_scale", "scale", ("iio", "mavlink")),
    ("sensor_stale_ms", "stale_ms", ("iio", "mavlink")),
)
_SENSOR_REQUIRED = {
    "csv": ("sensor_path",),
    "socket": ("sensor_path",),
    "iio": ("sensor_device", "sensor_channels"),
    "mavlink": ("sensor_port", "sensor_channels"),
}


def _add_output_options(init: argparse.ArgumentParser) -> None:
    """The [output] table's network outputs (docs/deploy.md), off unless given."""
    init.add_argument(
        "--output-udp",
        default="",
        metavar="HOST:PORT",
        help="[output] udp: one JSON datagram per decided tick (docs/deploy.md; default: off)",
    )
    init.add_argument(
        "--output-mavlink",
        default="",
        metavar="TARGET",
        help="[output] mavlink: serial:PORT or udp:HOST:PORT (needs pymavlink; default: off)",
    )
    init.add_argument(
        "--output-mavlink-names",
        default="",
        metavar="a,b,c",
        help="[output] mavlink_names: each channel's name on MAVLink, at most 10 characters "
        "(default: the channel names, if they fit)",
    )


def _add_sensor_options(init: argparse.ArgumentParser) -> None:
    """`cluster init`: every board's sensor table (docs/deploy.md, Sensors)."""
    g = init.add_argument_group(
        "sensor", "where each board's reading comes from; {node} in a name is the board's id"
    )
    g.add_argument(
        "--sensor",
        choices=SENSOR_KINDS,
        default="sim",
        help="sim is simulated readings, for trying things out (default: sim)",
    )
    g.add_argument("--sensor-device", metavar="NAME", help="iio: device name, label or folder")
    g.add_argument("--sensor-root", metavar="DIR", help="iio: sysfs folder of IIO devices")
    g.add_argument("--sensor-port", metavar="PORT", help="mavlink: the flight controller's port")
    g.add_argument("--sensor-baud", type=int, metavar="B", help="mavlink: line rate (57600)")
    g.add_argument("--sensor-path", metavar="PATH", help="csv: file to replay; socket: to bind")
    g.add_argument(
        "--sensor-channels",
        metavar="a,b,c",
        help="iio: channels (e.g. pressure,temp); mavlink: MESSAGE.field (e.g. ATTITUDE.pitch),"
        " one per cluster channel",
    )
    g.add_argument("--sensor-scale", metavar="k1,k2", help="iio, mavlink: factor per channel")
    g.add_argument(
        "--sensor-stale-ms", type=float, metavar="MS", help="iio, mavlink: older is missing"
    )


def _sensor_spec(args: argparse.Namespace, node: int) -> dict[str, Any]:
    """One board's sensor table from the --sensor options (checked by _check_sensor_args)."""
    if args.sensor == "sim":
        return {"kind": "sim", "seed": node}
    spec: dict[str, Any] = {"kind": args.sensor}
    for dest, key, _ in _SENSOR_OPTIONS:
        value = getattr(args, dest)
        if value is None:
            continue
        if key in ("channels", "scale"):
            items = [x.strip() for x in value.split(",")]
            value = [float(x) for x in items] if key == "scale" else items
        elif isinstance(value, str):
            value = value.replace("{node}", str(node))
        spec[key] = value
    return spec


def _check_sensor_args(args: argparse.Namespace, channels: int) -> None:
    """Options that do not fit the kind, or that it needs, before anything is written."""
    for dest, _, kinds in _SENSOR_OPTIONS:
        if getattr(args, dest) is not None and args.sensor not in kinds:
            opt = "--" + dest.replace("_", "-")
            fail(f"{opt} is for --sensor {' or '.join(kinds)}, not --sensor {args.sensor}")
    for dest in _SENSOR_REQUIRED.get(args.sensor, ()):
        if getattr(args, dest) is None:
            fail(f"--sensor {args.sensor} needs --{dest.replace('_', '-')}")
    if args.sensor_scale is not None:
        try:
            [float(x) for x in args.sensor_scale.split(",")]
        except ValueError:
            fail(f"--sensor-scale must be comma-separated numbers, got {args.sensor_scale!r}")
    for opt in ("channels", "scale"):
        value = getattr(args, f"sensor_{opt}")
        if value is not None and len(value.split(",")) != channels:
            got = len(value.split(","))
            fail(f"--sensor-{opt} has {got} entries, one per cluster channel ({channels}) needed")


def main(argv: list[str] | None = None) -> None:
    args = _build_parser().parse_args(argv)
    try:
        if args.cmd == "keygen":
            _keygen(args)
        elif args.cmd == "command":
            _command_send(args)
        elif args.cluster_cmd == "init":
            _cluster_init(args)
        elif args.cluster_cmd == "status":
            raise SystemExit(_cluster_status(args))
        else:
            _cluster_show(args)
    except (KeyFileError, ConfigFileError) as exc:
        fail(str(exc))


def _command_send(args: argparse.Namespace) -> None:
    from voter.commandlog import CommandError, send_command

    cfg = load_cluster(args.config)
    if cfg.replication is None:
        fail(f"{cfg.path}: no [replication] table: the cluster runs no command log")
    if not args.timeout > 0:
        fail("--timeout must be > 0")
    try:
        answer = send_command(cfg.command_socket_for(args.node), " ".join(args.op), args.timeout)
    except CommandError as e:
        code = EXIT_UNAVAILABLE if e.unavailable else EXIT_FAILED
        fail(f"node {args.node}: {e}", code)
    if args.json:
        print(json.dumps(answer))
    else:
        print(f"committed at seq {answer['seq']}: result {answer['result']}")


def _keygen(args: argparse.Namespace) -> None:
    vk = generate_key(args.out)
    print(f"wrote {args.out} (mode 0600)", file=sys.stderr)
    print(public_key_hex(vk))


def _expand(template: str, node: int, peer: int) -> str:
    return template.replace("{node}", str(node)).replace("{peer}", str(peer))


def _check_init_args(args: argparse.Namespace) -> list[str]:
    """Validate options before anything is written; returns the channel names."""
    if not MIN_NODES <= args.nodes <= MAX_NODES:
        fail(f"--nodes must be {MIN_NODES}..{MAX_NODES}, got {args.nodes}")
    if not 0 <= args.m <= MAX_M:
        fail(f"--m must be 0..{MAX_M}, got {args.m}")
    if not 0 < args.tick_hz <= MAX_TICK_HZ:
        fail(f"--tick-hz must be in (0, {MAX_TICK_HZ:g}], got {args.tick_hz:g}")
    if not 1 <= args.baud <= MAX_BAUD:
        fail(f"--baud must be 1..{MAX_BAUD}, got {args.baud}")
    channels = [c.strip() for c in args.channels.split(",")]
    if not 1 <= len(channels) <= MAX_CHANNELS or not all(channels):
        fail(f"--channels must be 1..{MAX_CHANNELS} comma-separated names, got {args.channels!r}")
    rest = args.link_template.replace("{peer}", "").replace("{node}", "")
    if "{" in rest or "}" in rest:
        fail(f"--link-template may only use {{peer}} and {{node}}, got {args.link_template!r}")
    if "{peer}" not in args.link_template and args.nodes > 2:
        # Without {peer} every link of a board would name the same port.
        fail(f"--link-template must contain {{peer}}, got {args.link_template!r}")
    for opt, value in (("--latency-ms", args.latency_ms), ("--precision-ms", args.precision_ms)):
        if not 0 <= value < 1000:  # also refuses nan
            fail(f"{opt} must be in [0, 1000), got {value:g}")
    return channels


def _timing(args: argparse.Namespace, channels: list[str]) -> TimingBudget | str:
    """This host's verdict on the tick rate, or why there is none (frames over the limit).

    Measured in memory with real boards (about a quarter of a second), before
    anything is written, so that --check-rate can refuse without leaving files.
    Imported here: the protocol engine is not needed for --help, keygen or show.
    """
    from voter.budget import admit, smr_slot_bytes_for, with_command_log

    try:
        budget = admit(
            args.nodes,
            args.m,
            args.algorithm,
            len(channels),
            args.baud,
            float(args.tick_hz),
            latency_s=args.latency_ms / 1e3,
            precision_s=args.precision_ms / 1e3,
        )
    except ValueError as exc:
        return f"{exc}; voterd will refuse this cluster"
    if args.replication is None:
        return budget
    slot = smr_slot_bytes_for(args.baud, float(args.tick_hz))
    return with_command_log(budget, slot, args.baud, args.latency_ms / 1e3)


def _make_config(
    args: argparse.Namespace, channels: list[str], keys: list[bytes], out: Path
) -> ClusterConfig:
    n = args.nodes
    return ClusterConfig(
        id=args.id,
        algorithm=args.algorithm,
        m=args.m,
        tick_hz=float(args.tick_hz),
        channels=tuple(channels),
        baud=args.baud,
        log_dir=out / args.log_dir,
        output_socket=args.output_socket,
        output=OutputConfig(
            udp=args.output_udp,
            mavlink=args.output_mavlink,
            mavlink_names=tuple(n for n in args.output_mavlink_names.split(",") if n),
        ),
        nodes=tuple(
            NodeConfig(
                id=i,
                public_key=keys[i],
                key_file=out / "keys" / f"node{i}.key",
                control="",
                sensor=_sensor_spec(args, i),
                links={p: _expand(args.link_template, i, p) for p in range(n) if p != i},
            )
            for i in range(n)
        ),
        path=out / "cluster.toml",
        replication=None if args.replication is None else ReplicationConfig(args.replication),
    )


def _cluster_init(args: argparse.Namespace) -> None:
    channels = _check_init_args(args)
    _check_sensor_args(args, len(channels))
    out: Path = args.out.absolute()
    cfg_path = out / "cluster.toml"
    key_dir = out / "keys"
    # Check every option through the real loader before writing anything, with stand-in keys,
    # so a bad option cannot leave half a cluster behind.
    probe = _make_config(args, channels, [bytes([i + 1]) * 32 for i in range(args.nodes)], out)
    try:
        loads_cluster(dump_cluster(probe), cfg_path)
    except ConfigFileError as exc:
        fail(f"invalid option: {str(exc).split(': ', 1)[-1]}")

    if out.exists() and not out.is_dir():
        fail(f"{out} exists and is not a folder")
    if cfg_path.exists() and cfg_path.stat().st_size > 0:
        fail(f"{cfg_path} already exists; refusing to overwrite it")
    key_paths = [key_dir / f"node{i}.key" for i in range(args.nodes)]
    existing = [p for p in key_paths if p.exists()]
    if existing:
        fail(f"{existing[0]} already exists; refusing to overwrite a key")
    timing = _timing(args, channels)
    if args.check_rate and (isinstance(timing, str) or not timing.fits):
        fail(timing if isinstance(timing, str) else timing.message)

    try:
        out.mkdir(parents=True, exist_ok=True)
        if not key_dir.exists():
            key_dir.mkdir(mode=0o700)
            # mkdir's mode is filtered by the umask; state it exactly.
            os.chmod(key_dir, 0o700)
    except OSError as exc:
        fail(f"cannot create {exc.filename or out}: {exc.strerror}")

    public = [bytes(generate_key(p)) for p in key_paths]
    cfg = _make_config(args, channels, public, out)
    text = dump_cluster(cfg)
    tmp = cfg_path.with_name(".cluster.toml.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cfg_path)
    except OSError as exc:
        fail(f"cannot write {cfg_path}: {exc.strerror}")
    load_cluster(cfg_path)  # self-check: what we wrote is what the daemon will accept

    print(f"wrote {cfg_path}")
    print(
        f"  cluster {cfg.id}: {cfg.n} nodes, {cfg.algorithm.upper()}({cfg.m}), "
        f"{cfg.tick_hz:g} Hz, tolerates f <= {cfg.fault_bound}"
    )
    for p, pk in zip(key_paths, public, strict=True):
        print(f"wrote {p} (mode 0600)  public key {pk.hex()}")
    print("copy cluster.toml to every board; copy keys/node<i>.key only to board i")
    # One line either way; a rate that does not fit is a warning, not a failed init.
    if not isinstance(timing, str) and timing.fits:
        print(f"timing: {timing.message}")
    else:
        line = timing if isinstance(timing, str) else timing.message
        print(f"voter: warning: {line}", file=sys.stderr)


def _describe_outputs(out: OutputConfig) -> str:
    """The board's network outputs in one line ("none": only the local socket, if any)."""
    parts = []
    if out.udp:
        parts.append(f"UDP JSON to {out.udp}")
    if out.mavlink:
        parts.append(
            f"MAVLink to {out.mavlink} (system {out.mavlink_system}, component "
            f"{out.mavlink_component}, at most {out.mavlink_hz:g} Hz)"
        )
    return "; ".join(parts) or "none (network outputs are opt-in: docs/deploy.md, Outputs)"


def _cluster_status(args: argparse.Namespace) -> int:
    from voter.status import agreement, read_status, render

    cfg = load_cluster(args.config)
    logs = args.logs if args.logs is not None else cfg.log_dir
    boards = [read_status(logs / f"node{nd.id}.jsonl", nd.id) for nd in cfg.nodes]
    if not any(b.found for b in boards):
        fail(f"no decision log in {logs} (node<ID>.jsonl); on a ground machine, give --logs DIR")
    for line in render(boards):
        print(line)
    _, differ = agreement(boards)
    return 0 if not differ and all(b.state == "ok" for b in boards if b.found) else 1


def _cluster_show(args: argparse.Namespace) -> None:
    cfg = load_cluster(args.config)
    algo = cfg.algorithm.upper()
    if cfg.algorithm == "omh":
        rule = (
            f"OMH tolerates a asymmetric, s symmetric and b manifest (crashed, silent) faults "
            f"when N > 2a + 2s + b + m and a <= m: f <= {cfg.fault_bound} arbitrary"
        )
    elif cfg.algorithm == "om":
        rule = f"OM tolerates f < N/3 and f <= m: f <= {cfg.fault_bound}"
        if cfg.fault_bound < cfg.m:
            # Allowed on purpose: N <= 3m is how the impossibility result is demonstrated.
            rule += f" (OM({cfg.m}) needs N >= {3 * cfg.m + 1} to tolerate m={cfg.m} faults)"
    else:
        rule = f"SM tolerates f <= N-2 and f <= m: f <= {cfg.fault_bound}"
    print(f"cluster {cfg.id} ({cfg.path})")
    print(f"  nodes: {cfg.n}   algorithm: {algo}({cfg.m})   {rule}")
    print(f"  tick: {cfg.tick_hz:g} Hz ({cfg.period_s * 1000:g} ms)   baud: {cfg.baud}")
    print(f"  channels: {', '.join(cfg.channels)}")
    print(f"  sensor validity: {_describe_validity(cfg)}")
    print(f"  decision logs: {cfg.log_dir}/node<ID>.jsonl")
    if cfg.output_socket:
        print(f"  output socket: {cfg.output_socket}")
    if cfg.replication is not None:
        print(f"  command log: {_describe_replication(cfg)}")
    for nd in cfg.nodes:
        links = "  ".join(f"{p}={url}" for p, url in sorted(nd.links.items()))
        extra = f"   control: {nd.control}" if nd.control else ""
        print(f"  node {nd.id}: key {nd.public_key.hex()[:16]}...  links: {links}{extra}")
        print(f"    sensor: {_describe_sensor(nd.sensor)}")
        print(f"    outputs: {_describe_outputs(cfg.output_for(nd.id))}")
    simulated = [str(nd.id) for nd in cfg.nodes if nd.sensor.get("kind", "sim") == "sim"]
    if simulated:
        # A production config should not fly simulated readings; one line, exit 0.
        print(
            f"voter: warning: node{'s' if len(simulated) > 1 else ''} {', '.join(simulated)} "
            'read simulated sensors (kind = "sim");'
            " a board in service needs iio, mavlink, csv or socket (docs/deploy.md, Sensors)",
            file=sys.stderr,
        )


def _describe_replication(cfg: ClusterConfig) -> str:
    """[replication] in one line: protocol, its bound, the slot, the timer, the socket."""
    rep = cfg.replication
    assert rep is not None
    from voter.budget import smr_slot_bytes, view_timeout_ticks

    slot = smr_slot_bytes(cfg)
    timer = rep.timeout_ticks or view_timeout_ticks(slot)
    sock = rep.socket or str(cfg.log_dir / "cmd{node}.sock")
    if rep.protocol == "paxos":
        bound = f"crash-only Multi-Paxos (f <= {(cfg.n - 1) // 2} crashes, no signatures)"
    else:
        bound = f"PBFT (f <= {(cfg.n - 1) // 3} of any kind)"
    return (
        f"{bound}, "
        f"{slot} bytes per link per tick after the rounds, view-change timer {timer} ticks, "
        f"commands on {sock}"
    )


def _describe_validity(cfg: ClusterConfig) -> str:
    """Each channel's checks as `name (key=value, ...)`, or that there are none."""
    if not cfg.validity:
        return "off (no [validity] table)"
    parts = []
    for ch, lim in zip(cfg.channels, cfg.validity, strict=True):
        keys = ", ".join(f"{k}={v:g}" for k, v in lim.changed().items())
        parts.append(f"{ch} ({keys or 'none'})")
    return "; ".join(parts)


def _describe_sensor(spec: dict[str, Any]) -> str:
    """`iio  device=bmp280  channels=pressure,temp`: the kind, then its settings."""
    rest = [
        f"{k}={','.join(str(x) for x in v) if isinstance(v, list) else v}"
        for k, v in spec.items()
        if k != "kind"
    ]
    return "  ".join([str(spec.get("kind", "sim")), *rest])


if __name__ == "__main__":
    main()
