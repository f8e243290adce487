"""The cluster configuration file (TOML): strict loading, dataclasses, and writing it back.

`load_cluster` turns a cluster.toml into frozen `ClusterConfig`/`NodeConfig` values or raises
`ConfigFileError` with one line naming the file and the offending key. Unknown keys are errors,
because a typo that silently falls back to a default is exactly the kind of divergence between
boards that this project exists to rule out. `dump_cluster` is a small hand-written TOML emitter
for this schema only (no extra dependency) with `load(dump(x)) == x`.

This module must not read key files (only their paths are kept), open serial ports or sockets,
or log: it parses and checks, the daemon and CLIs act.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from voter.core.diagnosis import (
    CONFIG_KEYS,
    DEFAULT_PROBATION_TICKS,
    DIAGNOSED,
    DiagnosisConfig,
    config_toml,
    pr_problem,
)
from voter.core.driver import Publish, parse_publish
from voter.core.mode import DegradeConfig, parse_degrade
from voter.core.protocol import ALGORITHMS, Algorithm, fault_bound
from voter.core.validity import LIMIT_KEYS, WINDOW_MAX, ChannelLimits
from voter.keys import KeyFileError, parse_public_key
from voter.textfile import TextFileError, read_text

MIN_NODES, MAX_NODES = 2, 16
MAX_M = 6
MAX_TICK_HZ = 1000.0
MAX_CHANNELS = 32
MAX_BAUD = 16_000_000
DEFAULT_BAUD = 921600
DEFAULT_LOG_DIR = "logs"
SENSOR_KINDS = ("sim", "csv", "socket", "iio", "mavlink")
#: the real sources' keys besides `kind` (required, optional); checked strictly, since a typo
#: in e.g. stale_ms would silently change how a board reads its sensor
_SENSOR_KEYS = {
    "iio": (("device", "channels"), ("root", "scale", "stale_ms")),
    "mavlink": (("port", "channels"), ("baud", "scale", "stale_ms", "sysid")),
}

_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")

_CLUSTER_REQUIRED = ("id", "algorithm", "m", "tick_hz", "channels")
_CLUSTER_OPTIONAL = (
    "baud",
    "log_dir",
    "output_socket",
    "publish",
    "precision_ms",
    "fail_silent",
)

_NODE_REQUIRED = ("id", "public_key", "key_file", "links")
_NODE_OPTIONAL = ("control", "sensor", "output")

_REPLICATION_REQUIRED = ("protocol",)
_REPLICATION_OPTIONAL = ("bytes_per_tick", "timeout_ticks", "checkpoint_every", "socket")
REPLICATION_PROTOCOLS = ("pbft", "paxos")
#: boards a command-log protocol needs to tolerate one fault: 3f+1 (Byzantine), 2f+1 (crash)
REPLICATION_NODES_MIN = {"pbft": 4, "paxos": 3}
#: a command-log slot's bounds in wire bytes per link per tick (voter.core.smr_port)
SMR_SLOT_BYTES = (64, 4096)

#: MAVLink's NAMED_VALUE_FLOAT holds a name of at most 10 characters
MAVLINK_NAME_MAX = 10


class ConfigFileError(Exception):
    """The cluster file is unreadable or invalid; the message is one line naming file and key."""


@dataclass(frozen=True)
class OutputConfig:
    """Opt-in network outputs of the voted value and the board's health (docs/deploy.md).

    Empty strings mean off: a board publishes on the network only when asked to,
    and the shipped systemd unit keeps it off the network until a drop-in lifts that.
    """

    #: "HOST:PORT": one JSON datagram per decided tick (voter.output_udp)
    udp: str = ""
    #: "udp:HOST:PORT" or "serial:PORT": MAVLink messages (voter.output_mavlink)
    mavlink: str = ""
    mavlink_baud: int = 57600
    #: values sent per second at most (every k-th tick): a 57600-baud radio carries ~5 kB/s
    mavlink_hz: float = 10.0
    mavlink_system: int = 1
    #: 191 = MAV_COMP_ID_ONBOARD_COMPUTER; give each board its own where streams meet
    mavlink_component: int = 191
    #: the channels' names on MAVLink (<= 10 characters each); () = the channel names
    mavlink_names: tuple[str, ...] = ()


_OUTPUT_KEYS = tuple(f.name for f in fields(OutputConfig))


@dataclass(frozen=True)
class NodeConfig:
    """One board: its identity, key file location, HIL control port, sensor and links."""

    id: int
    public_key: bytes
    key_file: Path
    control: str = ""
    # Dicts are not hashable; leave them out of the hash so a NodeConfig stays usable as a key.
    sensor: dict[str, Any] = field(default_factory=dict, hash=False)
    links: dict[int, str] = field(default_factory=dict, hash=False)
    #: this board's [node.output] keys, over the cluster-wide [output] table
    output: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ReplicationConfig:
    """[replication]: the replicated command log beside the per-tick agreement (issue 14).

    `bytes_per_tick` is the command-log slot after the agreement rounds, in wire
    bytes per link per tick (0 = half the wire time the decide phase leaves,
    `voter.budget.smr_slot_bytes`); `timeout_ticks` the view-change timer (0 =
    scaled to the slot, `voter.budget.view_timeout_ticks`); `socket` the unix
    socket `voter command send` talks to ({node} substituted; "" = cmd{node}.sock
    in log_dir).
    """

    protocol: str = "pbft"
    bytes_per_tick: int = 0
    timeout_ticks: int = 0
    checkpoint_every: int = 16
    socket: str = ""


@dataclass(frozen=True)
class ClusterConfig:
    """The whole cluster as every board must see it (identical file on every board)."""

    id: str
    algorithm: Algorithm
    m: int
    tick_hz: float
    channels: tuple[str, ...]
    baud: int
    log_dir: Path
    output_socket: str
    nodes: tuple[NodeConfig, ...]
    path: Path
    #: "confirmed": tick k is published once tick k+1's digests confirm it; "immediate": at once
    publish: Publish = "confirmed"
    #: the clock precision a board must keep to vouch for its timing (0 = slot / 8)
    precision_ms: float = 0.0
    #: debug only: false publishes every decision (no self-checks, no clique avoidance)
    fail_silent: bool = True
    #: the cluster-wide [output] table (each node may override keys)
    output: OutputConfig = OutputConfig()
    #: [diagnosis]: SM evidence / OM p/r counts, isolation and probation (None: off)
    diagnosis: DiagnosisConfig | None = None
    #: [validity]: per channel, the checks each board runs on its own reading; () = none
    validity: tuple[ChannelLimits, ...] = ()
    #: [degrade]: switch OM -> SM when one more fault would break OM's bound (None: off)
    degrade: DegradeConfig | None = None
    #: [replication]: the replicated command log; None = agreement only
    replication: ReplicationConfig | None = None

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    @property
    def wire_channels(self) -> int:
        """Channels of a commanded value: the readings, plus diagnosis' accusation channel."""
        return len(self.channels) + (self.diagnosis is not None)

    @property
    def period_s(self) -> float:
        """Tick period in seconds."""
        return 1.0 / self.tick_hz

    @property
    def fault_bound(self) -> int:
        """Largest number of arbitrary faults this configuration is meant to tolerate."""
        return fault_bound(self.algorithm, self.n, self.m)

    def node(self, node_id: int) -> NodeConfig:
        """The node with this id; ConfigFileError naming the cluster if there is none."""
        if isinstance(node_id, int) and not isinstance(node_id, bool) and 0 <= node_id < self.n:
            return self.nodes[node_id]
        raise ConfigFileError(f"node {node_id} is not in cluster {self.id} (nodes 0-{self.n - 1})")

    def log_path(self, node_id: int) -> Path:
        """Where node `node_id` writes its decision log."""
        return self.log_dir / f"node{self.node(node_id).id}.jsonl"

    def command_socket_for(self, node_id: int) -> Path:
        """Where node `node_id` takes commands for the replicated log ([replication] socket)."""
        rep = self.replication or ReplicationConfig()
        nid = str(self.node(node_id).id)
        if rep.socket:
            return Path(rep.socket.replace("{node}", nid))
        return self.log_dir / f"cmd{nid}.sock"

    def output_socket_for(self, node_id: int) -> str:
        """The output socket path for a node with {node} substituted ("" = none)."""
        return self.output_socket.replace("{node}", str(self.node(node_id).id))

    def output_for(self, node_id: int) -> OutputConfig:
        """A node's network outputs: the [output] table with its own [node.output] keys on top."""
        return replace(self.output, **self.node(node_id).output)


# --------------------------------------------------------------------------- loading


class _Checker:
    """Type checks that raise ConfigFileError prefixed with the file name and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, problem: str) -> ConfigFileError:
        return ConfigFileError(f"{self.path}: {key}: {problem}")

    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, got {_tname(value)}")
        return value

    def keys(
        self,
        table: Mapping[str, Any],
        key: str,
        required: tuple[str, ...],
        optional: tuple[str, ...],
    ) -> None:
        for k in table:
            if k not in required and k not in optional:
                allowed = ", ".join(required + optional)
                raise self.error(_join(key, k), f"unknown key (allowed: {allowed})")
        for k in required:
            if k not in table:
                raise self.error(_join(key, k), "missing")

    def integer(self, value: object, key: str, lo: int, hi: int) -> int:
        # bool is a subclass of int in Python; `m = true` must not mean m = 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"must be an integer, got {_tname(value)}")
        if not lo <= value <= hi:
            raise self.error(key, f"must be in {lo}..{hi}, got {value}")
        return value

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_tname(value)}")
        return value

    def number(self, value: object, key: str) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, got {_tname(value)}")
        return value

    def name(self, value: object, key: str) -> str:
        s = self.string(value, key)
        if not _NAME_RE.fullmatch(s):
            raise self.error(key, f"must be 1..64 characters of [A-Za-z0-9._-], got {s!r}")
        return s


def _tname(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def load_cluster(path: Path) -> ClusterConfig:
    """Read and check a cluster TOML file; ConfigFileError (one line) on any problem."""
    path = Path(path)
    try:
        text = read_text(path)
    except TextFileError as exc:
        raise ConfigFileError(str(exc)) from None
    return loads_cluster(text, path)


def loads_cluster(text: str, path: Path) -> ClusterConfig:
    """Parse cluster TOML text as if read from `path` (relative paths resolve from its folder)."""
    path = Path(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: invalid TOML: {exc}") from None
    return _parse(raw, path)


def _parse(raw: dict[str, Any], path: Path) -> ClusterConfig:
    c = _Checker(path)
    # Relative paths are anchored at the config's folder, not the daemon's working directory,
    # which under systemd is "/" and on a developer's shell is anything.
    abspath = path.resolve()
    base = abspath.parent
    c.keys(
        raw, "", ("cluster", "node"), ("output", "validity", "diagnosis", "degrade", "replication")
    )
    cl = c.table(raw["cluster"], "cluster")
    c.keys(cl, "cluster", _CLUSTER_REQUIRED, _CLUSTER_OPTIONAL)
    # Checked in file order: the first bad key is the one the message names.
    cluster_id = c.name(cl["id"], "cluster.id")
    algorithm = _algorithm(c, cl["algorithm"])
    m = c.integer(cl["m"], "cluster.m", 0, MAX_M)
    tick_hz = _tick_hz(c, cl["tick_hz"])
    channels = _channels(c, cl["channels"])
    baud = c.integer(cl.get("baud", DEFAULT_BAUD), "cluster.baud", 1, MAX_BAUD)
    log_dir = _log_dir(c, cl.get("log_dir", DEFAULT_LOG_DIR), base)
    output_socket = c.string(cl.get("output_socket", ""), "cluster.output_socket")
    _check_template(c, output_socket, "cluster.output_socket")
    publish = _publish(c, cl.get("publish", "confirmed"))
    precision_ms = _precision_ms(c, cl.get("precision_ms", 0.0))
    fail_silent = cl.get("fail_silent", True)
    if not isinstance(fail_silent, bool):
        raise c.error("cluster.fail_silent", f"must be true or false, got {_tname(fail_silent)}")
    output = _parse_output(c, raw.get("output", {}), "output")
    diagnosis = _diagnosis(c, raw.get("diagnosis"), algorithm, len(channels))
    validity = _parse_validity(c, raw.get("validity", {}), channels)
    degrade = _degrade(c, raw.get("degrade"), algorithm)
    replication = _parse_replication(c, raw.get("replication"))
    nodes = _parse_nodes(c, raw["node"], base)
    _check_replication_size(c, replication, len(nodes))
    _check_mavlink_names(c, channels, output, nodes)
    return ClusterConfig(
        id=cluster_id,
        algorithm=algorithm,
        m=m,
        tick_hz=tick_hz,
        channels=channels,
        baud=baud,
        log_dir=log_dir,
        output_socket=output_socket,
        nodes=_sensor_channels(c, nodes, len(channels)),
        path=abspath,
        publish=publish,
        precision_ms=precision_ms,
        fail_silent=fail_silent,
        output=OutputConfig(**output),
        diagnosis=diagnosis,
        validity=validity,
        degrade=degrade,
        replication=replication,
    )


def _degrade(c: _Checker, value: object, algorithm: Algorithm) -> DegradeConfig | None:
    """`[degrade] to = "sm"`: present = on (docs/deploy.md, "Planned degradation")."""
    if value is None:
        return None
    table = c.table(value, "degrade")
    c.keys(table, "degrade", ("to",), ())
    try:
        return parse_degrade(algorithm, table["to"])
    except ValueError as e:
        raise c.error("degrade", str(e)) from None


#: probation longer than a day at 1000 Hz is a typo, not a policy
MAX_PROBATION_TICKS = 86_400_000


def _diagnosis(
    c: _Checker, value: object, algorithm: Algorithm, channels: int
) -> DiagnosisConfig | None:
    """`[diagnosis]`: present = on. SM isolates on evidence, OM and OMH on a penalty/reward
    count; the accusation channel takes one of the MAX_CHANNELS a value may have."""
    if value is None:
        return None
    table = c.table(value, "diagnosis")
    c.keys(table, "diagnosis", (), CONFIG_KEYS)
    if str(algorithm) not in DIAGNOSED:
        raise c.error("diagnosis", f"needs algorithm sm, om or omh (got {str(algorithm)!r})")
    if channels + 1 > MAX_CHANNELS:
        raise c.error("diagnosis", f"needs one spare channel: at most {MAX_CHANNELS - 1} channels")
    probation = c.integer(
        table.get("probation_ticks", DEFAULT_PROBATION_TICKS),
        "diagnosis.probation_ticks",
        1,
        MAX_PROBATION_TICKS,
    )
    pr: dict[str, float] = {}
    for key in ("penalty_threshold", "reward_decay"):
        if key in table:
            problem = pr_problem(key, table[key])
            if problem is not None:
                raise c.error(f"diagnosis.{key}", problem.removeprefix(key + " "))
            pr[key] = float(table[key])
    return DiagnosisConfig(probation_ticks=probation, **pr)


def _parse_replication(c: _Checker, value: object) -> ReplicationConfig | None:
    """[replication]: protocol = "pbft" or "paxos" and the slot, timer and checkpoint bounds."""
    if value is None:
        return None
    t = c.table(value, "replication")
    c.keys(t, "replication", _REPLICATION_REQUIRED, _REPLICATION_OPTIONAL)
    protocol = c.string(t["protocol"], "replication.protocol")
    if protocol not in REPLICATION_PROTOCOLS:
        raise c.error("replication.protocol", f'must be "pbft" or "paxos", got {protocol!r}')
    slot = t.get("bytes_per_tick", 0)
    if not (type(slot) is int and slot == 0):
        slot = c.integer(slot, "replication.bytes_per_tick", *SMR_SLOT_BYTES)
    sock = c.string(t.get("socket", ""), "replication.socket")
    _check_template(c, sock, "replication.socket")
    return ReplicationConfig(
        protocol=protocol,
        bytes_per_tick=slot,
        timeout_ticks=_timeout_ticks(c, t.get("timeout_ticks", 0)),
        checkpoint_every=c.integer(
            t.get("checkpoint_every", 16), "replication.checkpoint_every", 1, 512
        ),
        socket=sock,
    )


def _check_replication_size(c: _Checker, rep: ReplicationConfig | None, n: int) -> None:
    """PBFT tolerates f faults of any kind with 3f+1 boards, crash-only Paxos f crashes with
    2f+1: fewer than 4 (3) boards tolerate none, which no one configures on purpose."""
    if rep is None or n >= REPLICATION_NODES_MIN[rep.protocol]:
        return
    need = REPLICATION_NODES_MIN[rep.protocol]
    bound = "3f+1" if rep.protocol == "pbft" else "2f+1"
    raise c.error(
        "replication.protocol",
        f"{rep.protocol} needs at least {need} boards (N = {bound}, f >= 1), the cluster has {n}",
    )


def _timeout_ticks(c: _Checker, value: object) -> int:
    """[replication] timeout_ticks: 0 (scaled to the slot) or 2..10**6 ticks."""
    if type(value) is int and value == 0:
        return 0
    return c.integer(value, "replication.timeout_ticks", 2, 10**6)


def _algorithm(c: _Checker, value: object) -> Algorithm:
    algorithm = c.string(value, "cluster.algorithm")
    if algorithm not in ALGORITHMS:
        raise c.error("cluster.algorithm", f'must be "om", "omh" or "sm", got {algorithm!r}')
    return Algorithm(algorithm)


def _tick_hz(c: _Checker, value: object) -> float:
    tick_hz = float(c.number(value, "cluster.tick_hz"))
    if not (math.isfinite(tick_hz) and 0.0 < tick_hz <= MAX_TICK_HZ):
        raise c.error("cluster.tick_hz", f"must be in (0, {MAX_TICK_HZ:g}], got {tick_hz:g}")
    return tick_hz


def _channels(c: _Checker, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise c.error("cluster.channels", f"must be an array of names, got {_tname(value)}")
    if not 1 <= len(value) <= MAX_CHANNELS:
        raise c.error("cluster.channels", f"must have 1..{MAX_CHANNELS} names, got {len(value)}")
    channels = tuple(c.name(ch, f"cluster.channels[{i}]") for i, ch in enumerate(value))
    if len(set(channels)) != len(channels):
        dup = next(ch for ch in channels if channels.count(ch) > 1)
        raise c.error("cluster.channels", f"duplicate channel {dup!r}")
    return channels


def _log_dir(c: _Checker, value: object, base: Path) -> Path:
    log_dir = c.string(value, "cluster.log_dir")
    if not log_dir:
        raise c.error("cluster.log_dir", "must not be empty")
    return (base / log_dir).resolve()


def _publish(c: _Checker, value: object) -> Publish:
    try:
        return parse_publish(c.string(value, "cluster.publish"))
    except ValueError as e:
        raise c.error("cluster.publish", str(e).removeprefix("publish ")) from None


def _precision_ms(c: _Checker, value: object) -> float:
    precision_ms = c.number(value, "cluster.precision_ms")
    if not (math.isfinite(precision_ms) and 0.0 <= precision_ms <= 1000.0):
        raise c.error("cluster.precision_ms", f"must be in [0, 1000], got {precision_ms:g}")
    return float(precision_ms)


def _parse_nodes(c: _Checker, value: object, base: Path) -> tuple[NodeConfig, ...]:
    if not isinstance(value, list):
        raise c.error("node", f"must be an array of tables ([[node]]), got {_tname(value)}")
    count = len(value)
    if not MIN_NODES <= count <= MAX_NODES:
        raise c.error("node", f"cluster must have {MIN_NODES}..{MAX_NODES} nodes, got {count}")
    ids = _node_ids(c, value)
    nodes: dict[int, NodeConfig] = {}
    seen_keys: dict[bytes, int] = {}
    for nd, nid in zip(value, ids, strict=True):
        nodes[nid] = _parse_node(c, nd, nid, count, base, seen_keys)
    return tuple(nodes[i] for i in range(count))


def _node_ids(c: _Checker, nodes_raw: list[Any]) -> list[int]:
    """First pass: ids, so that later messages can name nodes by id and links can be checked."""
    count = len(nodes_raw)
    ids: list[int] = []
    for i, nd in enumerate(nodes_raw):
        t = c.table(nd, f"node[{i}]")
        if "id" not in t:
            raise c.error(f"node[{i}].id", "missing")
        nid = c.integer(t["id"], f"node[{i}].id", 0, MAX_NODES - 1)
        if nid in ids:
            raise c.error(f"node[{i}].id", f"duplicate node id {nid}")
        ids.append(nid)
    if sorted(ids) != list(range(count)):
        missing = sorted(set(range(count)) - set(ids))
        raise c.error(
            "node.id",
            f"node ids must be exactly 0..{count - 1}; got {sorted(ids)} (missing {missing})",
        )
    return ids


def _parse_node(
    c: _Checker, nd: dict[str, Any], nid: int, count: int, base: Path, seen_keys: dict[bytes, int]
) -> NodeConfig:
    """One [[node]] table; `seen_keys` (public key -> node id) catches two boards with one key."""
    k = f"node[{nid}]"
    c.keys(nd, k, _NODE_REQUIRED, _NODE_OPTIONAL)
    pk_s = c.string(nd["public_key"], f"{k}.public_key")
    try:
        pk = bytes(parse_public_key(pk_s))
    except KeyFileError as exc:
        raise c.error(f"{k}.public_key", str(exc).removeprefix("public key: ")) from None
    if pk in seen_keys:
        raise c.error(f"{k}.public_key", f"same key as node {seen_keys[pk]}")
    seen_keys[pk] = nid
    key_file_s = c.string(nd["key_file"], f"{k}.key_file")
    if not key_file_s:
        raise c.error(f"{k}.key_file", "must not be empty")
    control = c.string(nd.get("control", ""), f"{k}.control")
    if control.startswith("serial:") and not control.removeprefix("serial:"):
        raise c.error(f"{k}.control", 'serial control needs a port, e.g. "serial:/dev/ttyAMA2"')
    return NodeConfig(
        id=nid,
        public_key=pk,
        key_file=(base / key_file_s).resolve(),
        control=control,
        sensor=_parse_sensor(c, nd.get("sensor", {"kind": "sim"}), f"{k}.sensor"),
        links=_parse_links(c, nd["links"], f"{k}.links", nid, count),
        output=_parse_output(c, nd.get("output", {}), f"{k}.output"),
    )


def _check_template(c: _Checker, template: str, key: str) -> None:
    """Only the {node} placeholder is allowed; anything else in braces is a typo."""
    rest = template.replace("{node}", "")
    if "{" in rest or "}" in rest:
        raise c.error(key, "only the {node} placeholder is allowed")


def _parse_sensor(c: _Checker, value: object, key: str) -> dict[str, Any]:
    t = c.table(value, key)
    if "kind" not in t:
        raise c.error(f"{key}.kind", "missing")
    kind = c.string(t["kind"], f"{key}.kind")
    if kind not in SENSOR_KINDS:
        raise c.error(f"{key}.kind", f"must be one of {', '.join(SENSOR_KINDS)}, got {kind!r}")
    if kind in ("csv", "socket"):
        if "path" not in t:
            raise c.error(f"{key}.path", f'missing (required for kind = "{kind}")')
        c.string(t["path"], f"{key}.path")
    if kind in _SENSOR_KEYS:
        _real_sensor(c, t, key, kind)
    # Passed through to the sensor source, but restricted to values dump_cluster can write back.
    for k, v in t.items():
        if isinstance(v, list):
            for i, item in enumerate(v):
                if not isinstance(item, bool | int | float | str):
                    raise c.error(f"{key}.{k}[{i}]", f"unsupported value {_tname(item)}")
        elif not isinstance(v, bool | int | float | str):
            raise c.error(f"{key}.{k}", f"unsupported value {_tname(v)}")
    return dict(t)


def _real_sensor(c: _Checker, t: dict[str, Any], key: str, kind: str) -> None:
    """iio and mavlink: strict keys, string places, an array of source channel names."""
    required, optional = _SENSOR_KEYS[kind]
    c.keys(t, key, ("kind", *required), optional)
    for k in ("device", "root", "port"):
        if k in t and not c.string(t[k], f"{key}.{k}"):
            raise c.error(f"{key}.{k}", "must not be empty")
    names = t["channels"]
    if not isinstance(names, list) or not names:
        raise c.error(f"{key}.channels", f"must be an array of names, got {_tname(names)}")
    for i, name in enumerate(names):
        if not c.string(name, f"{key}.channels[{i}]"):
            raise c.error(f"{key}.channels[{i}]", "must not be empty")
    scale = t.get("scale", [])
    if not isinstance(scale, list):
        raise c.error(f"{key}.scale", f"must be an array of numbers, got {_tname(scale)}")
    for i, k in enumerate(scale):
        if not math.isfinite(c.number(k, f"{key}.scale[{i}]")):
            raise c.error(f"{key}.scale[{i}]", f"must be finite, got {k}")
    if "stale_ms" in t:
        stale_ms = c.number(t["stale_ms"], f"{key}.stale_ms")
        if not (math.isfinite(stale_ms) and 0 < stale_ms <= 60_000):
            raise c.error(f"{key}.stale_ms", f"must be in (0, 60000], got {stale_ms:g}")
    if "baud" in t:
        c.integer(t["baud"], f"{key}.baud", 1, MAX_BAUD)
    if "sysid" in t:
        c.integer(t["sysid"], f"{key}.sysid", 0, 255)


def _sensor_channels(
    c: _Checker, nodes: tuple[NodeConfig, ...], count: int
) -> tuple[NodeConfig, ...]:
    """A real source gives exactly one value per cluster channel (and one scale each)."""
    for nd in nodes:
        real = nd.sensor.get("kind") in _SENSOR_KEYS
        for k in ("channels", "scale"):
            if real and len(nd.sensor.get(k, [0] * count)) != count:
                raise c.error(
                    f"node[{nd.id}].sensor.{k}",
                    f"has {len(nd.sensor[k])} entries, the cluster has {count} channels",
                )
    return nodes


def check_sensor_table(value: object, where: str, node: int, channels: int) -> dict[str, Any]:
    """One board's sensor table checked exactly as cluster.toml's is (firmware-sim --sensor).

    ConfigFileError, one line starting with `where`, on any problem.
    """
    c = _Checker(Path(where))
    sensor = _parse_sensor(c, value, "sensor")
    _sensor_channels(c, (NodeConfig(node, b"", Path(), "", sensor, {}),), channels)
    return sensor


# --------------------------------------------------------------------------- validity


def parse_validity(
    value: object, channels: tuple[str, ...], where: str
) -> tuple[ChannelLimits, ...]:
    """A [validity] table checked as cluster.toml's is (a campaign scenario's `validity`).

    ConfigFileError, one line starting with `where`, on any problem.
    """
    return _parse_validity(_Checker(Path(where)), value, channels)


def _parse_validity(
    c: _Checker, value: object, channels: tuple[str, ...]
) -> tuple[ChannelLimits, ...]:
    """[validity]: limit keys for every channel, and [validity.CHANNEL] tables over them.

    A table value is a channel, anything else a limit, so a channel may have any name.
    No table (or one naming no limit) gives (): the boards check nothing, as before.
    """
    t = c.table(value, "validity")
    common = {k: v for k, v in t.items() if not isinstance(v, dict)}
    _limits(c, common, "validity")
    per: dict[str, dict[str, Any]] = {}
    for name, sub in t.items():
        if not isinstance(sub, dict):
            continue
        if name not in channels:
            raise c.error(f"validity.{name}", f"not a channel (channels: {', '.join(channels)})")
        per[name] = {**common, **sub}
    limits = tuple(_limits(c, per.get(ch, common), f"validity.{ch}") for ch in channels)
    return limits if any(lim.active for lim in limits) else ()


def validity_inline(channels: tuple[str, ...], limits: tuple[ChannelLimits, ...]) -> str:
    """[validity] as one inline TOML table (a campaign's `validity = {...}`); "" for none."""
    table = {ch: lim.changed() for ch, lim in zip(channels, limits, strict=False) if lim.active}
    return _toml_value(table) if table else ""


def _limits(c: _Checker, t: dict[str, Any], key: str) -> ChannelLimits:
    c.keys(t, key, (), LIMIT_KEYS)
    out: dict[str, Any] = {}
    for k, v in t.items():
        kk = f"{key}.{k}"
        if k in ("min", "max", "max_rate"):
            x = float(c.number(v, kk))
            if not math.isfinite(x):
                raise c.error(kk, f"must be finite, got {x:g}")
            if k == "max_rate" and x <= 0:
                raise c.error(kk, f"must be > 0 (units per second), got {x:g}")
            out[k] = x
        else:
            lo = {"stale_samples": 2, "errors_max": 0}.get(k, 1)
            out[k] = c.integer(v, kk, lo, WINDOW_MAX)
    lim = ChannelLimits(**out)
    if lim.min is not None and lim.max is not None and lim.min > lim.max:
        raise c.error(f"{key}.min", f"{lim.min:g} is above max {lim.max:g}")
    if bool(lim.error_window) != ("errors_max" in t):
        raise c.error(key, "error_window and errors_max go together (errors in how many ticks)")
    if lim.error_window and lim.errors_max >= lim.error_window:
        raise c.error(
            f"{key}.errors_max",
            f"must be below error_window ({lim.error_window}), got {lim.errors_max}",
        )
    return lim


# --------------------------------------------------------------------------- outputs


def parse_host_port(text: str) -> tuple[str, int]:
    """ "HOST:PORT" with an IP address (IPv6 in brackets) or "localhost"; ValueError otherwise.

    No host names: resolving one is I/O this module must not do, and a name that does
    not resolve at boot (no DNS on a flight line, none in the unit's sandbox) would
    otherwise stop the board. The message is the part after the key.
    """
    host, sep, port_s = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"must be HOST:PORT (e.g. 127.0.0.1:14600), got {text!r}")
    if not (port_s.isascii() and port_s.isdigit()) or not 1 <= int(port_s) <= 65535:
        raise ValueError(f"port must be in 1..65535, got {port_s!r} in {text!r}")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if bare != "localhost":
        try:
            addr = ipaddress.ip_address(bare)
        except ValueError:
            raise ValueError(
                f"host must be an IP address or localhost (no DNS names), got {host!r}"
            ) from None
        if addr.version == 6 and bare == host:
            raise ValueError(f"an IPv6 address goes in brackets, e.g. [::1]:14600, got {text!r}")
    return bare, int(port_s)


def _parse_output(c: _Checker, value: object, key: str) -> dict[str, Any]:
    """An [output] table (cluster-wide) or a node's output keys: only the keys given."""
    t = c.table(value, key)
    c.keys(t, key, (), _OUTPUT_KEYS)
    out: dict[str, Any] = {}
    for k, v in t.items():
        kk = f"{key}.{k}"
        if k == "udp":
            out[k] = _address(c, v, kk, "")
        elif k == "mavlink":
            out[k] = _mavlink_url(c, v, kk)
        elif k == "mavlink_names":
            out[k] = _mavlink_names(c, v, kk)
        elif k == "mavlink_hz":
            hz = float(c.number(v, kk))
            if not (math.isfinite(hz) and 0.0 < hz <= MAX_TICK_HZ):
                raise c.error(kk, f"must be in (0, {MAX_TICK_HZ:g}], got {hz:g}")
            out[k] = hz
        else:
            out[k] = c.integer(v, kk, 1, MAX_BAUD if k == "mavlink_baud" else 255)
    return out


def _address(c: _Checker, value: object, key: str, prefix: str) -> str:
    text = c.string(value, key)
    if text:
        try:
            parse_host_port(text.removeprefix(prefix))
        except ValueError as e:
            raise c.error(key, str(e)) from None
    return text


def _mavlink_url(c: _Checker, value: object, key: str) -> str:
    text = c.string(value, key)
    if not text or text.startswith("udp:"):
        return _address(c, text, key, "udp:")
    if text.startswith("serial:") and text.removeprefix("serial:"):
        return text
    raise c.error(key, f'must be "udp:HOST:PORT" or "serial:PORT", got {text!r}')


def _mavlink_names(c: _Checker, value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise c.error(key, f"must be an array of names, got {_tname(value)}")
    names = tuple(c.name(x, f"{key}[{i}]") for i, x in enumerate(value))
    for i, name in enumerate(names):
        if len(name) > MAVLINK_NAME_MAX:
            raise c.error(f"{key}[{i}]", f"{name!r} is longer than {MAVLINK_NAME_MAX} characters")
    if len(set(names)) != len(names):
        raise c.error(key, "names must differ")
    return names


def _check_mavlink_names(
    c: _Checker, channels: tuple[str, ...], output: dict[str, Any], nodes: tuple[NodeConfig, ...]
) -> None:
    """Each channel goes out under a name of at most 10 characters (MAVLink's limit): the
    channel's own, or the one in mavlink_names. Checked when any board has MAVLink on."""
    for nd in nodes:
        merged = {**output, **nd.output}
        if not merged.get("mavlink"):
            continue
        key = "output.mavlink_names" if "mavlink_names" in output else f"node[{nd.id}].output"
        names = merged.get("mavlink_names", ())
        if names and len(names) != len(channels):
            raise c.error(key, f"has {len(names)} names for {len(channels)} channels")
        for i, ch in enumerate(channels):
            if not names and len(ch) > MAVLINK_NAME_MAX:
                raise c.error(
                    f"cluster.channels[{i}]",
                    f"{ch!r} is longer than the {MAVLINK_NAME_MAX} characters of a MAVLink "
                    "value name: give [output] mavlink_names",
                )


def _parse_links(c: _Checker, value: object, key: str, nid: int, count: int) -> dict[int, str]:
    t = c.table(value, key)
    links: dict[int, str] = {}
    for peer_s, url in t.items():
        if not (peer_s.isascii() and peer_s.isdigit()):
            raise c.error(f"{key}.{peer_s}", "link keys must be peer node ids")
        peer = int(peer_s)
        if peer in links:
            raise c.error(f"{key}.{peer_s}", f"second link to node {peer}")
        if peer == nid:
            raise c.error(f"{key}.{peer_s}", "a node has no link to itself")
        if peer >= count:
            raise c.error(f"{key}.{peer_s}", f"node {peer} is not in the cluster (0-{count - 1})")
        url_s = c.string(url, f"{key}.{peer_s}")
        if not url_s:
            raise c.error(f"{key}.{peer_s}", "port must not be empty")
        links[peer] = url_s
    missing = [p for p in range(count) if p != nid and p not in links]
    if missing:
        raise c.error(key, f"not a full mesh: no link to node(s) {missing}")
    return dict(sorted(links.items()))


# --------------------------------------------------------------------------- writing


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(k: str) -> str:
    return k if _BARE_KEY_RE.fullmatch(k) else _toml_str(k)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        # repr is the shortest string that round-trips, and always a valid TOML float.
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        inner = ", ".join(f"{_toml_key(str(k))} = {_toml_value(x)}" for k, x in v.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _rel(p: Path, base: Path) -> str:
    """A path relative to the config's folder when it lies beneath it (keeps the file portable)."""
    try:
        return str(p.relative_to(base)) or "."
    except ValueError:
        return str(p)


def dump_cluster(cfg: ClusterConfig) -> str:
    """The cluster as TOML text; loading it from `cfg.path` gives back an equal ClusterConfig."""
    base = cfg.path.parent
    lines = [
        "# voter cluster configuration: the same file goes on every board.",
        "[cluster]",
        f"id = {_toml_str(cfg.id)}",
        f"algorithm = {_toml_str(cfg.algorithm)}",
        f"m = {cfg.m}",
        f"tick_hz = {_toml_value(float(cfg.tick_hz))}",
        f"channels = {_toml_value(list(cfg.channels))}",
        f"baud = {cfg.baud}",
        f"log_dir = {_toml_str(_rel(cfg.log_dir, base))}",
        f"output_socket = {_toml_str(cfg.output_socket)}",
        f"publish = {_toml_str(cfg.publish)}",
        f"precision_ms = {_toml_value(float(cfg.precision_ms))}",
        f"fail_silent = {'true' if cfg.fail_silent else 'false'}",
    ]
    output = _changed_outputs(cfg.output, OutputConfig())
    if output:
        lines += ["", "[output]"] + [f"{k} = {_toml_value(v)}" for k, v in output.items()]
    if cfg.diagnosis is not None:
        lines += ["", "[diagnosis]", *config_toml(cfg.diagnosis)]
    if cfg.degrade is not None:
        lines += ["", "[degrade]", f"to = {_toml_str(cfg.degrade.to)}"]
    for ch, lim in zip(cfg.channels, cfg.validity, strict=False):
        if lim.active:
            lines += ["", f"[validity.{_toml_key(ch)}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in lim.changed().items()]
    if cfg.replication is not None:
        r = cfg.replication
        lines += [
            "",
            "[replication]",
            f"protocol = {_toml_str(r.protocol)}",
            f"bytes_per_tick = {r.bytes_per_tick}",
            f"timeout_ticks = {r.timeout_ticks}",
            f"checkpoint_every = {r.checkpoint_every}",
            f"socket = {_toml_str(r.socket)}",
        ]
    for nd in cfg.nodes:
        lines += [
            "",
            "[[node]]",
            f"id = {nd.id}",
            f"public_key = {_toml_str(nd.public_key.hex())}",
            f"key_file = {_toml_str(_rel(nd.key_file, base))}",
            f"control = {_toml_str(nd.control)}",
            f"sensor = {_toml_value(nd.sensor)}",
            *([f"output = {_toml_value(nd.output)}"] if nd.output else []),
            "[node.links]",
        ]
        lines += [f"{peer} = {_toml_str(url)}" for peer, url in sorted(nd.links.items())]
    return "\n".join(lines) + "\n"


def _changed_outputs(out: OutputConfig, default: OutputConfig) -> dict[str, Any]:
    """The [output] keys that differ from the defaults (a config without outputs stays so)."""
    return {k: getattr(out, k) for k in _OUTPUT_KEYS if getattr(out, k) != getattr(default, k)}
