"""A throwaway cluster of real `voterd` processes on pty links (firmware-sim, the tests).

It generates keys and a cluster.toml whose links are the fabric's pty paths,
starts the link fabric as its own process, starts one `voterd --hil` per board
with a common start time (the shared power-on of a rig), and can send HIL
commands, kill and restart boards, and stop everything cleanly. Every process it
starts is in its own list and is reaped on `stop()`, also after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.fabric import KWORKER_PRIORITY, FabricError, start_process, stop_process, tell_tick0
from hil.scenario import CHANNELS
from voter.config import ClusterConfig, NodeConfig, ReplicationConfig, dump_cluster
from voter.core.diagnosis import DiagnosisConfig
from voter.core.driver import Publish
from voter.core.mode import DegradeConfig
from voter.core.protocol import Algorithm
from voter.core.record import parse_line
from voter.core.validity import ChannelLimits
from voter.faultmodel import LinkFault, to_table
from voter.keys import generate_key

#: Median one-way latency of a pty link beyond the wire time (board pty -> kernel -> fabric
#: -> kernel -> board pty) with the fabric's kworker boost on, as firmware-sim starts it.
#: Measured 2026-12-01 on the 2-vCPU VM (other jobs sharing it) by
#: `python -m bench.pty_delay --seconds 20 --repeats 4` (4 boards, 50 Hz, 3 ms CPU a tick,
#: 921600 baud): p50 0.64 ms, of which 0.445 ms is the wire time of a 41-byte frame
#: (193 µs beyond; 170 µs in an earlier run); without the boost 1.28 ms beyond. The boards
#: refine it at run time with their two-way exchange: this is the starting value.
PTY_LINK_LATENCY_US = 190.0
#: The same without the boost (VOTER_KWORKER_PRIORITY=off, or not root), same run: 1.28 ms.
PTY_LINK_LATENCY_UNBOOSTED_US = 1280.0
#: set to "off" (or a priority) to change the fabric's kworker boost; see kworker_priority
KWORKER_ENV = "VOTER_KWORKER_PRIORITY"
#: From "every board is ready" to tick 0: the `start` commands' delivery and each board's
#: wake-up (it waits in select, at real-time priority where allowed). Start-up itself is
#: not in it: boards are started first and tick 0 is chosen once all are ready (a fixed
#: 3 s from launch was not enough on a loaded host: boards joined 45-64 ticks late).
START_MARGIN_S = 1.0
#: how long one board may take to start up (Python, keys, the timing admission) and be ready
READY_TIMEOUT_S = 60.0
CONFIG_BAUD_UNLIMITED = 16_000_000


class ClusterError(Exception):
    """The simulated cluster could not be set up (one line for the user)."""


def kworker_priority() -> int | None:
    """The fabric's kworker boost: KWORKER_PRIORITY unless $VOTER_KWORKER_PRIORITY says otherwise.

    The kernel moves pty bytes in its unbound kworkers at normal priority, and the
    boards' SCHED_FIFO bursts starve them (one-way p99 ~5 ms, max ~50 ms). The fabric
    raises them above the boards while it runs, where it may (root); "off" or "0"
    leaves the kernel alone.
    """
    value = os.environ.get(KWORKER_ENV, "").strip().lower()
    if value in ("off", "0", "no", "none"):
        return None
    if value.isdigit():
        return min(99, int(value))
    return KWORKER_PRIORITY


def default_link_latency_us(kworker_priority: int | None) -> float:
    """The measured pty latency for the transport the fabric will give: boosted only as root."""
    boosted = kworker_priority is not None and os.geteuid() == 0
    return PTY_LINK_LATENCY_US if boosted else PTY_LINK_LATENCY_UNBOOSTED_US


@dataclass
class ProcessCluster:
    out: Path
    nodes: int = 4
    algorithm: Algorithm = Algorithm.OM
    m: int = 1
    tick_hz: float = 50.0
    baud: int = 921600
    seed: int = 0
    channels: tuple[str, ...] = CHANNELS
    link_faults: list[LinkFault] = field(default_factory=list)
    #: NaN = the measured figure for the transport this cluster will have (boosted or not)
    link_latency_us: float = math.nan
    realtime: bool = True
    #: the fabric raises the kernel's pty workers to this SCHED_FIFO priority (None = not)
    kworker_priority: int | None = field(default_factory=kworker_priority)
    output_socket: str = ""  # may contain {node}
    #: a board's sensor table as cluster.toml writes it (voter.config.check_sensor_table);
    #: boards not named read the simulated sensor
    sensors: dict[int, dict[str, Any]] = field(default_factory=dict)
    publish: Publish = "confirmed"
    fail_silent: bool = True
    #: [diagnosis] of the cluster file (None: off)
    diagnosis: DiagnosisConfig | None = None
    #: [degrade] of the cluster file (None: off)
    degrade: DegradeConfig | None = None
    #: [validity] of the generated cluster.toml (per channel; () = no checks)
    validity: tuple[ChannelLimits, ...] = ()
    #: [replication] of the generated cluster.toml (None = agreement only); its command
    #: sockets go next to the control sockets unless it names one
    replication: ReplicationConfig | None = None
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    fabric: subprocess.Popen[bytes] | None = None
    start_at: float | None = None
    cfg: ClusterConfig | None = None
    restarts: dict[int, int] = field(default_factory=dict)
    _sock_dir: Path | None = None

    def __post_init__(self) -> None:
        if math.isnan(self.link_latency_us):
            self.link_latency_us = default_link_latency_us(self.kworker_priority)

    @property
    def config_path(self) -> Path:
        return self.out / "cluster.toml"

    def control_path(self, node: int) -> Path:
        # AF_UNIX paths are limited to 107 bytes, so the sockets live in a short temp folder.
        if self._sock_dir is None:
            self._sock_dir = Path(tempfile.mkdtemp(prefix="voter-"))
        return self._sock_dir / f"ctl{node}.sock"

    def log_path(self, node: int) -> Path:
        return self.out / f"node{node}.jsonl"

    def _replication(self) -> ReplicationConfig | None:
        rep = self.replication
        if rep is None or rep.socket:
            return rep
        sock = str(self.control_path(0).parent / "cmd{node}.sock")
        return dataclasses.replace(rep, socket=sock)

    # -- set-up ------------------------------------------------------------------
    def setup(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in [
            *self.out.glob("node*.jsonl"),
            self.out / "fabric-ends.json",
        ]:
            stale.unlink(missing_ok=True)
        ends = self._start_fabric()
        keys = self.out / "keys"
        keys.mkdir(mode=0o700, exist_ok=True)
        nodes = []
        for i in range(self.nodes):
            key_file = keys / f"node{i}.key"
            key_file.unlink(missing_ok=True)
            vk = generate_key(key_file)
            links = {j: ends[f"{i}-{j}"] for j in range(self.nodes) if j != i}
            nodes.append(
                NodeConfig(
                    i,
                    bytes(vk),
                    key_file.resolve(),
                    "",
                    self.sensors.get(i, {"kind": "sim", "seed": self.seed}),
                    links,
                )
            )
        self.cfg = ClusterConfig(
            id=f"sim-{self.seed}",
            algorithm=Algorithm(self.algorithm),  # tests pass plain "om"/"sm"
            m=self.m,
            tick_hz=self.tick_hz,
            channels=self.channels,
            # baud 0 = the fabric does not limit; the boards then expect (almost) no wire time
            baud=self.baud or CONFIG_BAUD_UNLIMITED,
            log_dir=self.out.resolve(),
            output_socket=self.output_socket,
            nodes=tuple(nodes),
            path=self.config_path.resolve(),
            publish=self.publish,
            fail_silent=self.fail_silent,
            diagnosis=self.diagnosis,
            degrade=self.degrade,
            validity=self.validity,
            replication=self._replication(),
        )
        self.config_path.write_text(dump_cluster(self.cfg))

    def _start_fabric(self) -> dict[str, str]:
        spec = {
            "nodes": self.nodes,
            "baud": self.baud,
            "seed": self.seed,
            "faults": [to_table(f) for f in self.link_faults],
            "tick_s": 1.0 / self.tick_hz,
            "kworker_priority": self.kworker_priority,
        }
        try:
            self.fabric, ends = start_process(spec, self.out)
        except FabricError as e:
            raise ClusterError(str(e)) from None
        return ends

    # -- boards ------------------------------------------------------------------
    def voterd_cmd(self, node: int, *, common_start: bool, until_tick: int | None) -> list[str]:
        cmd = [
            str(Path(sys.executable).parent / "voterd"),
            "--config",
            str(self.config_path),
            "--node",
            str(node),
            "--hil",
            "--control",
            str(self.control_path(node)),
            "--seed",
            str(self.seed * 100 + node),
            "--link-latency-us",
            str(self.link_latency_us),
        ]
        if common_start:
            cmd.append("--start-when-told")
        else:
            cmd += ["--listen", str(max(0.3, 6 / self.tick_hz))]
        if until_tick is not None:
            cmd += ["--until-tick", str(until_tick)]
        if not self.realtime:
            cmd.append("--no-realtime")
        return cmd

    def start(self, until_tick: int | None = None) -> None:
        """Start every board, wait until each is ready, then tell all of them tick 0.

        A board is ready when its control socket exists: it has read its config and
        keys, passed the timing admission, opened its links and waits for `start`.
        """
        for i in range(self.nodes):
            self.start_node(i, common_start=True, until_tick=until_tick)
        self.tell_start()

    def tell_start(self) -> None:
        """Once every board started with `common_start` is ready, tell them all tick 0."""
        for i in range(self.nodes):
            self.wait_control(i, READY_TIMEOUT_S)
        self.start_at = time.monotonic() + START_MARGIN_S
        if self.fabric is not None:
            tell_tick0(self.fabric, self.start_at)  # link-fault windows count from tick 0
        for i in range(self.nodes):
            self.control(i, {"cmd": "start", "at": round(self.start_at, 6)})

    def start_node(self, node: int, *, common_start: bool, until_tick: int | None) -> None:
        err = (self.out / f"node{node}.stderr").open("ab")
        self.procs[node] = subprocess.Popen(
            self.voterd_cmd(node, common_start=common_start, until_tick=until_tick),
            stdout=err,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )

    def wait_control(self, node: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.control_path(node).exists():
            proc = self.procs[node]
            if proc.poll() is not None:
                raise ClusterError(
                    f"voterd {node} exited with {proc.returncode} "
                    f"(see {self.out / f'node{node}.stderr'})"
                )
            if time.monotonic() > deadline:
                raise ClusterError(f"voterd {node} did not open its control socket")
            time.sleep(0.01)

    def control(self, node: int, command: dict[str, Any]) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.sendto(json.dumps(command).encode(), str(self.control_path(node)))
        finally:
            sock.close()

    def kill(self, node: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.get(node)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=10)

    def restart(self, node: int, until_tick: int | None) -> None:
        """Start a board again the way systemd would: it must learn the tick from its peers."""
        self.control_path(node).unlink(missing_ok=True)
        self.restarts[node] = self.restarts.get(node, 0) + 1
        self.start_node(node, common_start=False, until_tick=until_tick)

    def last_tick(self, node: int) -> int | None:
        """The newest tick in node's decision log (cheap tail read)."""
        path = self.log_path(node)
        try:
            with path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 4096))
                tail = fh.read().decode(errors="replace").splitlines()
        except OSError:
            return None
        for line in reversed(tail):
            record = parse_line(line)
            if record is not None:
                return record.tick
        return None

    def running(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]

    def wait(self, timeout_s: float) -> dict[int, int | None]:
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        return {i: p.poll() for i, p in self.procs.items()}

    def stop(self) -> dict[str, Any]:
        """SIGTERM every board (they finish the tick and flush), then the fabric; reap all."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stats: dict[str, Any] = {}
        if self.fabric is not None:
            stop_process(self.fabric)
            with contextlib.suppress(OSError, ValueError):
                stats = json.loads((self.out / "fabric.json").read_text())
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
        return stats
